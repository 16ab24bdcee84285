# Call chains without dump_stack: a kprobe event with a stacktrace trigger on each function.
TRACEFS=/sys/kernel/tracing
# trace_calls FUNC...: record the kernel stack every time one of FUNC (module functions too) runs.
trace_calls() {
    [ -e $TRACEFS/kprobe_events ] || mount -t tracefs nodev $TRACEFS 2>/dev/null
    for _f in "$@"; do
        echo "p:sb_$_f $_f" >> $TRACEFS/kprobe_events || return 1
        echo stacktrace > $TRACEFS/events/kprobes/sb_$_f/trigger || return 1
        echo 1 > $TRACEFS/events/kprobes/sb_$_f/enable || return 1
    done
}
# trace_returns FUNC...: record every return from FUNC (a kretprobe event sb_ret_FUNC, no stack).
trace_returns() {
    [ -e $TRACEFS/kprobe_events ] || mount -t tracefs nodev $TRACEFS 2>/dev/null
    for _f in "$@"; do
        echo "r:sb_ret_$_f $_f" >> $TRACEFS/kprobe_events || return 1
        echo 1 > $TRACEFS/events/kprobes/sb_ret_$_f/enable || return 1
    done
}
# trace_before A B: the first recorded event named A (sb_A, sb_ret_A) comes before the first one
# named B (the trace is in time order across CPUs).
trace_before() {
    _order=$(grep -v '^#' $TRACEFS/trace | grep -oE " (sb_$1|sb_$2):" | uniq | head -2 | tr -d ' :' | tr '\n' ' ')
    [ "$_order" = "sb_$1 sb_$2 " ] || { echo "events in order: ${_order:-none}"; return 1; }
}
# trace_stacks: the recorded events and stacks, one frame per line ("=> usb_reset_device"). A probe
# at a function's entry does not see its immediate caller (arm64 has not saved the link register
# in a frame record yet): the chain shows the caller's caller onwards.
trace_stacks() { grep -v '^#' $TRACEFS/trace; }
# trace_chain_has FUNC...: the recorded stacks name every FUNC (in any order).
trace_chain_has() {
    _stacks=$(trace_stacks)
    for _f in "$@"; do
        echo "$_stacks" | grep -Eq "=> $_f(\+|\$)" || { echo "no $_f in the recorded stacks"; return 1; }
    done
}
# ktap_walked_queued_reset: prints the recorded stacks, then one KTAP case: they show the seeds'
# queued reset (__usb_queue_reset_device -> usb_reset_device -> usb_forced_unbind_intf).
ktap_walked_queued_reset() {
    trace_stacks | sed 's/^/# /'
    if _why=$(trace_chain_has __usb_queue_reset_device usb_reset_device usb_forced_unbind_intf); then
        ktap_ok walked_the_queued_reset_path
    else
        ktap_fail walked_the_queued_reset_path "$_why"
    fi
}
