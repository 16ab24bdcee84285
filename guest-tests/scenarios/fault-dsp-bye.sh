# fault-dsp-bye: while the DSP streams, it says QRTR BYE (a clean restart on a link that stays up)
# and comes back. Same expectations as fault-dsp-crash; same known stock 7.3 defect.
# known-failure: stock, fixture: qmi_stop_session leaves the substream opened; re-enable gets -EBUSY until replug (guide §5e)
#   evidence: ktap new_stream_bit_exact internal status -16
. /guest-tests/lib/offload.sh
ktap_begin 6
ktap_offload_started
ktap_ask dsp_restarted dsp-bye
ktap_dsp_released
if wait_for_headset 5; then ktap_ok headset_kept; else ktap_fail headset_kept "the headset card went away"; fi
ktap_new_stream_exact
ktap_end
