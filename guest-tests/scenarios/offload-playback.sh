# offload-playback: the ADSP enables the headset's playback stream over QMI, then streams a
# counter pattern itself (sideband.seconds, default 1 s; format from sideband.rate, sideband.bits,
# sideband.ch on the kernel command line, default 48000/16/2): isochronous TDs on the handed-over transfer ring, events on the
# secondary event ring, doorbells and ERDP from the DSP, no guest CPU involved. The backend
# checks the headset heard every sample bit for bit, then the DSP stops and disables.
# sideband.host_stalls=N stops the whole controller for 60 ms once a second, N times, while the
# DSP streams: a host that does not schedule the backend must cost no sample and no interval.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/args.sh

RATE=$(arg rate 48000)
BITS=$(arg bits 16)
CH=$(arg ch 2)
SECONDS_OF_AUDIO=$(arg seconds 1)
# A transfer buffer of 16 KiB lets the DSP keep up to 16 ms of packets queued.
BUFFER=$(arg buffer 16384)
SAMPLES=$((RATE * CH * SECONDS_OF_AUDIO))
HOST_STALLS=$(arg host_stalls 0)
irqs() { awk '/xhci/ {n=0; for (i=2; i<=NF; i++) if ($i ~ /^[0-9]+$/) n+=$i; s+=n} END {print s+0}' /proc/interrupts; }

card=""
ktap_begin 3
if wait_for_headset 20; then
    ktap_ok headset_ready
else
    ktap_fail headset_ready "no headset card with offload controls"
fi
before=$(irqs)
echo "SIDEBAND-CTL stream-enable card=$card pcm=0 dir=playback rate=$RATE bits=$BITS ch=$CH buffer=$BUFFER"
[ "$HOST_STALLS" -gt 0 ] && echo "SIDEBAND-CTL host-stall 60 $HOST_STALLS 1000"
echo "SIDEBAND-CTL stream-play $SAMPLES"
echo "SIDEBAND-CTL check-counter $SAMPLES"
echo "SIDEBAND-CTL stream-disable"
# The requests above run on the host as it reads them (the stream lasts 1 s). The guest stays
# quiet meanwhile, so that any interrupt it takes during the stream would be the stream's
# fault; then it waits for the disable to take effect (its PCM becomes free again).
case $BITS in 24) FMT=S24_3LE; BYTES=3 ;; 32) FMT=S32_LE; BYTES=4 ;; *) FMT=S16_LE; BYTES=2 ;; esac
play_briefly() {
    sb-pattern --bytes "$BYTES" $((CH * 240)) | aplay -q -D "hw:$card,0" -t raw -f "$FMT" -r "$RATE" -c "$CH" >/dev/null 2>&1
}
sleep $((SECONDS_OF_AUDIO + 3))
if wait_until 30 play_briefly; then ktap_ok stream_released; else ktap_fail stream_released "hw:$card,0 stayed busy"; fi
after=$(irqs)
echo "# xhci interrupts on the guest during the offloaded stream: $((after - before))"
ktap_ok guest_stayed_responsive
ktap_end
