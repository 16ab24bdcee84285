# fault-unplug-aplay: the headset is unplugged while aplay plays on the platform card (kernel
# variants q6, q6-fixes): the stream was started by q6afe's USB port start, not by the backend.
# The offload driver sends the DSP its DISCONNECT indication and the DSP lets the stream go;
# aplay on the platform card runs on (the DSP renders into nothing) and ends by itself; the
# offload jack reads unplugged; after the headset is plugged back, a second aplay starts a new
# stream the headset hears bit for bit. Skipped on a kernel without the sm8250 machine driver.
# known-failure: q6: lockdep, q6usb_hw_params against a USB audio probe (see apr-q6-card)
#   evidence: report lockdep q6usb_hw_params
# expect-report: lockdep #1 \(&card->controls_rwsem\)
# adsp-apr: q6-card
. /guest-tests/lib/q6card.sh
q6card_begin "card_routed aplay_stream_started unplugged indication_answered dsp_released aplay_ended jack_unplugged headset_back second_aplay_started"
q6card_ready card_routed
# Five seconds of the pattern, in the background.
q6card_play_background 480000
sleep 0.5
ktap_ask unplugged unplug 1
ktap_ask indication_answered expect-indication
if wait_until 20 sbctl expect-released; then ktap_ok dsp_released
else ktap_fail dsp_released "$SB_ANSWER"; fi
q6card_aplay_ended aplay_ended
jack=$(q6card_jack)
if [ "$jack" = off ]; then ktap_ok jack_unplugged
else ktap_fail jack_unplugged "the USB Offload Jack reads '$jack' with the headset gone"; fi
sbctl plug 1
card=""
if wait_for_headset 40; then ktap_ok headset_back
else ktap_fail headset_back "no headset card with offload controls"; fi
before=$(q6card_afe_starts)
q6card_play 96000
echo "SIDEBAND-CTL check-counter 96000"
after=$(q6card_afe_starts)
if [ "${after:-0}" -gt "${before:-0}" ] 2>/dev/null; then ktap_ok second_aplay_started
else ktap_fail second_aplay_started "AFE port starts ${before:-?} before the second aplay, ${after:-?} after"; fi
dmesg | grep -i 'q6asm\|q6adm\|q6afe\|q6usb\|qc-usb\|uaudio' | tail -n 12 | sed 's/^/# /'
ktap_end
