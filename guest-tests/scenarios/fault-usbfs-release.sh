# fault-usbfs-release: while the DSP streams, USBDEVFS_RELEASEINTERFACE on the streaming
# interface. usbfs releases only interfaces it claimed itself, so the ioctl must fail and the
# offloaded stream must not notice; then the DSP disables as usual and streams again.
. /guest-tests/lib/offload.sh
ktap_begin 6
ktap_offload_started
dev=/dev/bus/usb/$(printf %03d "$(cat /sys/bus/usb/devices/1-1/busnum)")/$(printf %03d "$(cat /sys/bus/usb/devices/1-1/devnum)")
# usbfs did not claim interface 1, so releaseintf() refuses with -EINVAL; sb-usbfs then exits 1
# with the errno's text. Anything else (released, another errno, open failed, a crash) fails.
out=$(sb-usbfs release "$dev" 1 2>&1)
rc=$?
echo "# release: exit $rc: $out"
if [ $rc = 0 ]; then
    ktap_fail release_refused "usbfs released an interface snd-usb-audio owns"
elif [ $rc = 1 ] && [ "$out" = "sb-usbfs: release $dev: Invalid argument" ]; then
    ktap_ok release_refused
else
    ktap_fail release_refused "not refused with EINVAL: exit $rc: $out"
fi
# The stream goes on after the refusal: the headset is served another 4000 intervals (0.5 s at
# high speed) and the backend still sees the DSP streaming.
sbctl stats
served0=$(stat_of intervals_served)
if wait_until 10 stream_progressed $((${served0:-0} + 4000)) && sbctl expect-streaming; then
    echo "# intervals served: ${served0:-?} at the refusal, $served now; $SB_ANSWER"
    ktap_ok stream_unaffected
else
    ktap_fail stream_unaffected "intervals served: ${served0:-?} at the refusal, ${served:-?} after; $SB_ANSWER"
fi
ktap_ask stream_disabled stream-disable
ktap_new_stream_exact
ktap_end
