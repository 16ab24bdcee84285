# bench-cpu: CPU cost of 5 s of 48 kHz/16-bit stereo audio, measured by the backend: first
# through the guest's ordinary snd-usb-audio path, then offloaded (the DSP streams, the guest
# sleeps). The figures are in the backend's answers to cpu-stop (console log, and `sideband run`
# style summaries with -v).
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/ctl.sh

card=""
ktap_begin 2
if wait_for_headset 20; then ktap_ok headset_ready; else ktap_fail headset_ready "no headset card with offload controls"; fi
# Not a synchronisation: one quiet second after the boot's last activity, before measuring.
sleep 1
# figures: the two CPU figures of a cpu-stop answer in $SB_ANSWER ("B Q": backend and QEMU CPU-s
# per second of audio), nothing when the answer has none.
figures() { echo "$SB_ANSWER" | sed -nE 's/.*: ([0-9.]+) CPU-s of the backend and ([0-9.]+) CPU-s of QEMU.*/\1 \2/p'; }
ordinary="" offloaded=""
sbctl cpu-start \
    && sb-pattern 480000 | aplay -q -D "hw:$card,0" -t raw -f S16_LE -r 48000 -c 2 \
    && sbctl cpu-stop ordinary 5 && ordinary=$(figures)
echo "# ordinary: $SB_ANSWER"
sbctl stream-enable card=$card pcm=0 dir=playback rate=48000 bits=16 ch=2 \
    && sbctl cpu-start && sbctl stream-play 480000 \
    && sbctl cpu-stop offloaded 5 && offloaded=$(figures)
echo "# offloaded: $SB_ANSWER"
sbctl stream-disable || echo "# stream-disable: $SB_ANSWER"
if [ -n "$ordinary" ] && [ -n "$offloaded" ]; then
    echo "# backend and QEMU CPU-s per second of audio: ordinary $ordinary, offloaded $offloaded"
    ktap_ok measured
else
    ktap_fail measured "no figures: ordinary '${ordinary}', offloaded '${offloaded}'"
fi
ktap_end
