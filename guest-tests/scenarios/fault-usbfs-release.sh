# fault-usbfs-release: while the DSP streams, USBDEVFS_RELEASEINTERFACE on the streaming
# interface. usbfs releases only interfaces it claimed itself, so the ioctl must fail and the
# offloaded stream must not notice; then the DSP disables as usual and streams again.
. /guest-tests/lib/offload.sh
ktap_begin 6
ktap_offload_started
dev=/dev/bus/usb/$(printf %03d "$(cat /sys/bus/usb/devices/1-1/busnum)")/$(printf %03d "$(cat /sys/bus/usb/devices/1-1/devnum)")
if out=$(sb-usbfs release "$dev" 1 2>&1); then
    ktap_fail release_refused "usbfs released an interface snd-usb-audio owns"
else
    echo "# release: $out"; ktap_ok release_refused
fi
sleep 1
ktap_ask stream_unaffected expect-streaming
ktap_ask stream_disabled stream-disable
ktap_new_stream_exact
ktap_end
