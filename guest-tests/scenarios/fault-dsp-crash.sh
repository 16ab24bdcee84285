# fault-dsp-crash: while the DSP streams, its link vanishes (the relay's qrtr-tun endpoint and
# node 5 go away) and the DSP comes back. The guest must stop the session, release everything,
# and serve the restarted DSP the same substream again. Stock 7.3 refuses the re-enable with
# -EBUSY until the device is re-enumerated (§5e: qmi_stop_session leaves subs->opened set).
# known-failure: stock, fixture: qmi_stop_session leaves the substream opened; re-enable gets -EBUSY until replug (guide §5e)
#   evidence: ktap new_stream_bit_exact internal status -16
. /guest-tests/lib/offload.sh
ktap_begin 6
ktap_offload_started
ktap_ask dsp_restarted dsp-crash
ktap_dsp_released
if wait_for_headset 5; then ktap_ok headset_kept; else ktap_fail headset_kept "the headset card went away"; fi
ktap_new_stream_exact
ktap_end
