# fault-dsp-crash-aplay: the DSP's QRTR link vanishes and comes back while aplay plays on the
# platform card (kernel variants q6, q6-fixes); the stream was started by q6afe's USB port start.
# The guest must stop the session and release the stream; aplay runs on (the DSP renders into
# nothing) and ends by itself; a second aplay must start a new stream the headset hears. As with
# fault-dsp-crash, 7.3 refuses the DSP's enable with -EBUSY after the restart (guide §5e), so the
# second play reaches nobody: here user space cannot tell, aplay "succeeds" in silence.
# known-failure: q6: lockdep (q6usb_hw_params, see apr-q6-card), and qmi_stop_session leaves the substream opened (§5e)
#   evidence: report lockdep q6usb_hw_params
#   evidence: ktap second_stream_heard internal status -16
# known-failure: q6-fixes: qmi_stop_session leaves the substream opened; the second enable gets -EBUSY (guide §5e)
#   evidence: ktap second_stream_heard internal status -16
# expect-report: lockdep #1 \(&card->controls_rwsem\)
# allow-device: afe-stream
# adsp-apr: q6-card
. /guest-tests/lib/q6card.sh
q6card_begin "card_routed aplay_stream_started dsp_restarted dsp_released aplay_ended second_stream_heard"
q6card_ready card_routed
q6card_play_background 480000
sleep 0.5
ktap_ask dsp_restarted dsp-crash
if wait_until 20 sbctl expect-released; then ktap_ok dsp_released
else ktap_fail dsp_released "$SB_ANSWER"; fi
q6card_aplay_ended aplay_ended
# The restarted DSP needs the guest's service again before the next enable (bounded).
wait_for_headset 10 || echo "# the headset card is not offload-ready"
sleep 2
q6card_play 96000
sbctl stats >/dev/null
afe=$(echo "$SB_ANSWER" | sed -n 's/.*"afe_failed":"\([^"]*\)".*/\1/p')
if sbctl check-counter 96000; then echo "# $SB_ANSWER"; ktap_ok second_stream_heard
else ktap_fail second_stream_heard "$SB_ANSWER; the DSP's AFE-driven enable: ${afe:-no failure}"; fi
dmesg | grep -i 'q6asm\|q6afe\|q6usb\|qc-usb\|uaudio' | tail -n 8 | sed 's/^/# /'
ktap_end
