# offload-playback: the ADSP enables the headset's playback stream over QMI, then streams a
# counter pattern itself (sideband.seconds, default 1 s; format from sideband.rate, sideband.bits,
# sideband.ch on the kernel command line, default 48000/16/2): isochronous TDs on the handed-over transfer ring, events on the
# secondary event ring, doorbells and ERDP from the DSP, no guest CPU involved. The backend
# checks the headset heard every sample bit for bit, then the DSP stops and disables.
# sideband.host_stalls=N stops the whole controller for 60 ms once a second, N times, while the
# DSP streams: a host that does not schedule the backend must cost no sample and no interval.
. /guest-tests/lib/offload.sh
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
# At most this many xHCI interrupts, in the guest and on the controller's primary interrupter,
# while the DSP streams. A passing run takes none (the guest is idle, the DSP's events go to its
# own interrupter, which raises no guest interrupt); a guest that served the stream itself would
# take about one per millisecond.
IRQ_BOUND=10

card=""
ktap_begin 3
if wait_for_headset 20; then
    ktap_ok headset_ready
else
    ktap_fail headset_ready "no headset card with offload controls"
fi
# The backend runs requests in the order the guest prints them: the answer to an asked request
# (sbctl) comes once every request before it is done. Failed SIDEBAND-CTL requests fail the run.
echo "SIDEBAND-CTL stream-enable card=$card pcm=0 dir=playback rate=$RATE bits=$BITS ch=$CH buffer=$BUFFER"
sbctl stats
irqs0=$(irqs)
primary0=$(primary_interrupts)
[ "$HOST_STALLS" -gt 0 ] && echo "SIDEBAND-CTL host-stall 60 $HOST_STALLS 1000"
echo "SIDEBAND-CTL stream-play $SAMPLES"
# The guest stays quiet while the DSP streams (it waits for this answer, which comes when
# stream-play is done: bounded by twice the audio's length and a margin), so that any xHCI
# interrupt meanwhile is the stream's fault.
if SB_CTL_TIMEOUT=$((SECONDS_OF_AUDIO * 2 + 30)) sbctl stats; then played=1; else played=""; fi
irqs1=$(irqs)
primary1=$(primary_interrupts)
echo "SIDEBAND-CTL check-counter $SAMPLES"
echo "SIDEBAND-CTL stream-disable"
# Then the disable: once it is answered, the guest's PCM is free again.
case $BITS in 24) FMT=S24_3LE; BYTES=3 ;; 32) FMT=S32_LE; BYTES=4 ;; *) FMT=S16_LE; BYTES=2 ;; esac
play_briefly() {
    sb-pattern --bytes "$BYTES" $((CH * 240)) | aplay -q -D "hw:$card,0" -t raw -f "$FMT" -r "$RATE" -c "$CH" >/dev/null 2>&1
}
if SB_CTL_TIMEOUT=60 sbctl stats && wait_until 30 play_briefly; then ktap_ok stream_released
else ktap_fail stream_released "hw:$card,0 stayed busy or the backend did not answer: $SB_ANSWER"; fi
guest_irqs=$((irqs1 - irqs0))
primary_irqs=$((${primary1:-0} - ${primary0:-0}))
echo "# xhci interrupts during the offloaded stream: $guest_irqs in the guest, $primary_irqs on the primary interrupter"
if [ -z "$played" ]; then
    ktap_fail guest_stayed_responsive "no answer from the backend during or after the stream"
elif [ "$guest_irqs" -gt "$IRQ_BOUND" ] || [ "$primary_irqs" -gt "$IRQ_BOUND" ]; then
    ktap_fail guest_stayed_responsive "$guest_irqs guest / $primary_irqs primary-interrupter xHCI interrupts during the stream (at most $IRQ_BOUND)"
else
    ktap_ok guest_stayed_responsive
fi
ktap_end
