# fault-iso-drops: while the DSP streams, 50 of its isochronous OUT packets fail on the bus (USB
# Transaction Error: the headset never gets them). The DSP sees each failure on its event ring and
# streams on; the guest takes no part and must see nothing. The DSP's disable is answered, it
# holds nothing afterwards, and a new offloaded stream is bit-exact.
. /guest-tests/lib/offload.sh
. /guest-tests/lib/dmesg.sh
ktap_begin 10
ktap_offload_started
ktap_ask packets_dropped xact-errors 0x01 50
# The 50 failures take 50 intervals; wait (bounded) until the DSP and the headset count them all.
drops_counted() {
    sbctl stats || return 1
    errors=$(stat_of errors)
    missed=$(stat_of intervals_missed)
    [ "${errors:-0}" -ge 50 ] && [ "${missed:-0}" -ge 50 ]
}
wait_until 10 drops_counted
ktap_ask still_streaming expect-streaming
sbctl stats >/dev/null
errors=$(stat_of errors)
if [ "${errors:-0}" -eq 50 ]; then ktap_ok dsp_saw_50_errors
else ktap_fail dsp_saw_50_errors "the DSP's event ring reported ${errors:-no} transaction errors"; fi
missed=$(stat_of intervals_missed)
if [ "${missed:-0}" -eq 50 ]; then ktap_ok headset_missed_50_intervals
else ktap_fail headset_missed_50_intervals "the headset missed ${missed:-no} intervals"; fi
ktap_ask disabled stream-disable
ktap_dsp_released
ktap_new_stream_exact
ktap_dmesg_clean
ktap_end
