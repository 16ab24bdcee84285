# ordinary-duplex: ordinary (not offloaded) playback then capture at 48 kHz/16-bit stereo with
# whatever headset profile the run chose (UAC1 full speed, UAC2, UAC2 with implicit feedback):
# aplay's counter pattern reaches the headset bit for bit, and arecord gets the headset's
# counter source without a missing or changed sample.
# known-race: stock, fixture, kasan: 7 in 80 (beside another guest): snd-usb-audio's low-latency playback takes a chunk from the ring buffer and submits its URB later with no lock shared by the start, ack and completion paths, so a completion on another CPU can submit a later chunk first (two URBs swapped at stream start); never with variant snd-usb-fixes
#   evidence: backend check-counter .*the counter pattern broke
# known-race: stock, fixture, kasan: 2 in 30: snd-usb-audio's retire_capture_urb moves hwptr_done past a packet before it copies the packet into the ring buffer, so a reader on another CPU can take the chunk unwritten (zeros just after a period boundary); never with variant snd-usb-fixes
#   evidence: ktap capture_counter_bit_exact break at sample
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh

card=""
wait_until 20 find_card
ktap_begin 3
if [ -n "$card" ]; then ktap_ok headset_card; else ktap_fail headset_card "no headset ALSA card"; fi
out=$(sb-pattern 96000 | aplay -D "hw:${card:-99},0" -t raw -f S16_LE -r 48000 -c 2 2>&1)
rc=$?
echo "$out" | sed 's/^/# aplay: /'
echo "SIDEBAND-CTL check-counter 96000"
if [ $rc = 0 ]; then ktap_ok aplay_48k_16bit; else ktap_fail aplay_48k_16bit "aplay exited $rc"; fi
ktap_capture_exact
ktap_end
