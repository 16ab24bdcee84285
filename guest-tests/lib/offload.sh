# Offloaded streams for fault scenarios: start one, then check the guest and the DSP recovered.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/ctl.sh

OFFLOAD_FORMAT="pcm=0 dir=playback rate=48000 bits=16 ch=2"
card=""
# ktap_offload_started: 2 cases. The headset is offload-ready; the DSP enabled the stream and
# packets flow on the handed-over ring.
ktap_offload_started() {
    if wait_for_headset 20; then ktap_ok headset_ready
    else ktap_fail headset_ready "no headset card with offload controls"; fi
    if sbctl stream-enable card=$card $OFFLOAD_FORMAT && sbctl stream-start; then
        echo "# stream: $SB_ANSWER"; ktap_ok stream_started
    else
        ktap_fail stream_started "$SB_ANSWER"
    fi
}
# ktap_indication_answered: the guest sent the DISCONNECT indication and the DSP's disable came back.
ktap_indication_answered() { ktap_ask indication_answered expect-indication; }
# ktap_dsp_released: the DSP's stream stopped and the SMMU has no mapping left.
ktap_dsp_released() {
    # The release (unmaps, interrupter removal) follows the disable response, or the DSP's restart
    # after a crash (the guest re-announces its service up to ~10 s later): wait for it, bounded.
    if wait_until 20 sbctl expect-released; then ktap_ok dsp_released
    else ktap_fail dsp_released "$SB_ANSWER"; fi
}
# ktap_headset_back: the headset is enumerated again and the offload driver took it.
ktap_headset_back() {
    card=""
    if wait_for_headset 40; then ktap_ok headset_back
    else ktap_fail headset_back "no headset card with offload controls"; fi
}
# ktap_new_stream_exact: a new offloaded stream plays 0.5 s the headset hears bit for bit.
ktap_new_stream_exact() {
    _n=48000
    if sbctl stream-enable card=$card $OFFLOAD_FORMAT && sbctl stream-play $_n \
        && sbctl check-counter $_n && sbctl stream-disable; then
        echo "# new stream: $SB_ANSWER"; ktap_ok new_stream_bit_exact
    else
        ktap_fail new_stream_bit_exact "$SB_ANSWER"
    fi
}
# stat_of KEY: the first number after "KEY": in $SB_ANSWER (the JSON of `sbctl stats`), e.g.
# errors (the DSP's stream) or intervals_served (the headset); empty when there is none.
stat_of() { echo "$SB_ANSWER" | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
# primary_interrupts: the interrupts the controller raised on its primary interrupter (0, the
# guest's own event ring), from $SB_ANSWER (`sbctl stats`); empty when it has raised none yet.
primary_interrupts() {
    echo "$SB_ANSWER" | grep -o '{[^{}]*"interrupter":0[,}][^{}]*}' | grep -o '"interrupts":[0-9]*' | cut -d: -f2
}
# stream_progressed SERVED: `sbctl stats` shows the DSP's stream active and the headset served
# more than SERVED intervals (sets $served to the figure).
stream_progressed() {
    sbctl stats || return 1
    served=$(stat_of intervals_served)
    case "$SB_ANSWER" in *'"active":true'*) ;; *) return 1 ;; esac
    [ "${served:-0}" -gt "$1" ]
}
# ktap_recovered: the 4 recovery cases after a fault that made the driver tear the stream down.
ktap_recovered() {
    ktap_indication_answered
    ktap_dsp_released
    ktap_headset_back
    ktap_new_stream_exact
}
# headset_path: the headset's sysfs folder (1-1).
headset_path() { echo /sys/bus/usb/devices/1-1; }
# audio_interfaces: the sysfs names of the headset's audio interfaces (class 01).
audio_interfaces() {
    for _i in /sys/bus/usb/devices/1-1:1.*; do
        [ "$(cat "$_i/bInterfaceClass" 2>/dev/null)" = 01 ] && basename "$_i"
    done
}
# pin_race_cpus: the QMI worker (unbound work) runs on CPU 0, the xHCI interrupt, and with it the
# hub thread (per-CPU work, queued where the interrupt ran), on CPU 1. A vCPU held by the TCG
# plugin inside the worker then cannot delay the hub thread's disconnect.
pin_race_cpus() {
    echo 1 > /sys/devices/virtual/workqueue/cpumask || return 1
    for _irq in $(awk -F: '/xhci/ {gsub(/ /, "", $1); print $1}' /proc/interrupts); do
        echo 2 > /proc/irq/$_irq/smp_affinity || return 1
    done
}
