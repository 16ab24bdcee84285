# offload-matrix: the DSP streams each format the headset offers in offload and the driver
# accepts: 48 kHz/16-bit, 96 kHz/24-bit and 192 kHz/32-bit stereo, every one checked bit-exact,
# then starts and stops 20 times in a row, alternating formats (the backend fails the run if a
# stop leaves an SMMU mapping behind, faults, or a recording does not match).
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/ctl.sh

card=""
ktap_begin 2
if wait_for_headset 20; then ktap_ok headset_ready; else ktap_fail headset_ready "no headset card with offload controls"; fi
i=0
while [ $i -lt 20 ]; do
    case $((i % 3)) in
        0) fmt="rate=48000 bits=16"; samples=9600 ;;
        1) fmt="rate=96000 bits=24"; samples=19200 ;;
        2) fmt="rate=192000 bits=32"; samples=38400 ;;
    esac
    echo "SIDEBAND-CTL stream-enable card=$card pcm=0 dir=playback ch=2 $fmt"
    echo "SIDEBAND-CTL stream-play $samples"
    echo "SIDEBAND-CTL check-counter $samples"
    echo "SIDEBAND-CTL stream-disable"
    i=$((i + 1))
done
# The requests run on the host one after the other (a failed one fails the run); the answer to an
# asked request comes after all of them (bounded), and then the last disable has freed the PCM.
play_briefly() { sb-pattern 480 | aplay -q -D "hw:$card,0" -t raw -f S16_LE -r 48000 -c 2 >/dev/null 2>&1; }
if SB_CTL_TIMEOUT=120 sbctl stats && wait_until 30 play_briefly; then ktap_ok twenty_starts_and_stops
else ktap_fail twenty_starts_and_stops "hw:$card,0 stayed busy or the backend did not answer: $SB_ANSWER"; fi
ktap_end
