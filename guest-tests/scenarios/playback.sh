# playback: ordinary (not offloaded) playback through snd-usb-audio: aplay sends a counter
# pattern to the emulated headset, which must record every sample bit for bit.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh

SAMPLES=${SAMPLES:-96000}   # 1 s of 48 kHz stereo
card=""
wait_until 20 find_card

ktap_begin 3
if [ -n "$card" ]; then ktap_ok headset_card; else ktap_fail headset_card "no ALSA card with usbid 1209:0001"; fi
out=$(sb-pattern "$SAMPLES" | aplay -D "hw:${card:-99},0" -t raw -f S16_LE -r 48000 -c 2 2>&1)
rc=$?
echo "$out" | sed 's/^/# aplay: /'
if [ $rc = 0 ]; then ktap_ok aplay_counter_pattern; else ktap_fail aplay_counter_pattern "aplay exited $rc"; fi
# The backend compares the recording with the pattern; a mismatch fails the scenario there.
echo "SIDEBAND-CTL check-counter $SAMPLES"
ktap_ok recording_checked_by_backend
ktap_end
