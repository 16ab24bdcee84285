# playback-30s: 30 s of ordinary playback at 48 kHz/16-bit stereo. Run it with a headset whose
# clock is off nominal (--headset headset-uac2:ppm=+100) to exercise snd-usb-audio's feedback
# handling: no xrun in aplay, and every sample recorded bit for bit, with no gap.
# known-race: stock, fixture, kasan: 7 in 80 (beside another guest): snd-usb-audio's low-latency playback takes a chunk from the ring buffer and submits its URB later with no lock shared by the start, ack and completion paths, so a completion on another CPU can submit a later chunk first (two URBs swapped at stream start); never with variant snd-usb-fixes
#   evidence: ktap recording_checked_by_backend the counter pattern broke
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/ctl.sh

SAMPLES=2880000
card=""
wait_until 20 find_card
ktap_begin 2
out=$(sb-pattern "$SAMPLES" | aplay -D "hw:${card:-99},0" -t raw -f S16_LE -r 48000 -c 2 2>&1)
rc=$?
echo "$out" | sed 's/^/# aplay: /'
if [ $rc = 0 ] && ! echo "$out" | grep -qi "underrun\|overrun\|xrun"; then ktap_ok aplay_30s_without_xrun
else ktap_fail aplay_30s_without_xrun "aplay exited $rc or reported an xrun"; fi
# The backend compares what the headset recorded with the counter pattern; its answer is the case.
ktap_ask recording_checked_by_backend check-counter "$SAMPLES"
ktap_end
