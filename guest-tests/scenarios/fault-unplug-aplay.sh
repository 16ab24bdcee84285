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
cases="card_routed aplay_stream_started unplugged indication_answered dsp_released aplay_ended jack_unplugged headset_back second_aplay_started"
ktap_begin 9
if ! q6card_available; then
    for c in $cases; do ktap_skip "$c" "this kernel has no snd-soc-sm8250 (boot --kernel 7.3+q6)"; done
    ktap_end
    exit 0
fi
card=""
wait_until 20 find_card || echo "# no USB headset card (usbid 1209:0001)"
if q6card_load && q6card_route; then ktap_ok card_routed
else ktap_fail card_routed "no sideband-q6 card with MultiMedia1 routed to USB_RX"; fi
# Five seconds of the pattern, in the background.
sb-pattern 480000 > /tmp/pattern.raw
aplay -D "hw:${q6card:-99},0" -f S16_LE -r 48000 -c 2 -t raw /tmp/pattern.raw >/tmp/aplay.log 2>&1 &
aplay_pid=$!
streaming() { sbctl expect-streaming; }
if wait_until 15 streaming; then ktap_ok aplay_stream_started
else ktap_fail aplay_stream_started "the DSP's stream did not start for aplay: $SB_ANSWER"; fi
sleep 0.5
ktap_ask unplugged unplug 1
ktap_ask indication_answered expect-indication
if wait_until 20 sbctl expect-released; then ktap_ok dsp_released
else ktap_fail dsp_released "$SB_ANSWER"; fi
ended() { ! kill -0 "$aplay_pid" 2>/dev/null; }
if wait_until 20 ended; then ktap_ok aplay_ended
else ktap_fail aplay_ended "aplay still runs 20 s after the unplug: $(cat /proc/$aplay_pid/wchan 2>/dev/null)"; kill -9 "$aplay_pid" 2>/dev/null; fi
sed 's/^/# aplay: /' /tmp/aplay.log
jack=$(q6card_jack)
if [ "$jack" = off ]; then ktap_ok jack_unplugged
else ktap_fail jack_unplugged "the USB Offload Jack reads '$jack' with the headset gone"; fi
sbctl plug 1
card=""
if wait_for_headset 40; then ktap_ok headset_back
else ktap_fail headset_back "no headset card with offload controls"; fi
before=$(q6card_afe_starts)
sb-pattern 96000 > /tmp/pattern.raw
timeout 30 aplay -D "hw:${q6card:-99},0" -f S16_LE -r 48000 -c 2 -t raw /tmp/pattern.raw 2>&1 | sed 's/^/# aplay: /'
echo "SIDEBAND-CTL check-counter 96000"
after=$(q6card_afe_starts)
if [ "${after:-0}" -gt "${before:-0}" ] 2>/dev/null; then ktap_ok second_aplay_started
else ktap_fail second_aplay_started "AFE port starts ${before:-?} before the second aplay, ${after:-?} after"; fi
dmesg | grep -i 'q6asm\|q6adm\|q6afe\|q6usb\|qc-usb\|uaudio' | tail -n 12 | sed 's/^/# /'
ktap_end
