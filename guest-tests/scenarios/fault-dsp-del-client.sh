# fault-dsp-del-client: while the DSP streams, its client socket closes (QRTR DEL_CLIENT, then
# BYE) and the DSP comes back. Same expectations and known defect as fault-dsp-crash.
# known-failure: stock, fixture: qmi_stop_session leaves the substream opened; re-enable gets -EBUSY until replug (guide §5e)
#   evidence: ktap new_stream_bit_exact internal status -16
. /guest-tests/lib/offload.sh
ktap_begin 6
ktap_offload_started
ktap_ask dsp_restarted dsp-del-client
ktap_dsp_released
if wait_for_headset 5; then ktap_ok headset_kept; else ktap_fail headset_kept "the headset card went away"; fi
ktap_new_stream_exact
ktap_end
