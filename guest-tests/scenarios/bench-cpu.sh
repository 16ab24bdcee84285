# bench-cpu: CPU cost of 5 s of 48 kHz/16-bit stereo audio, measured by the backend: first
# through the guest's ordinary snd-usb-audio path, then offloaded (the DSP streams, the guest
# sleeps). The figures are in the backend's answers to cpu-stop (console log, and `sideband run`
# style summaries with -v).
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh

card=""
ktap_begin 2
if wait_for_headset 20; then ktap_ok headset_ready; else ktap_fail headset_ready "no headset card with offload controls"; fi
sleep 1
echo "SIDEBAND-CTL cpu-start"
sb-pattern 480000 | aplay -q -D "hw:$card,0" -t raw -f S16_LE -r 48000 -c 2
echo "SIDEBAND-CTL cpu-stop ordinary 5"
echo "SIDEBAND-CTL stream-enable card=$card pcm=0 dir=playback rate=48000 bits=16 ch=2"
echo "SIDEBAND-CTL cpu-start"
echo "SIDEBAND-CTL stream-play 480000"
echo "SIDEBAND-CTL cpu-stop offloaded 5"
echo "SIDEBAND-CTL stream-disable"
sleep 10
ktap_ok measured
ktap_end
