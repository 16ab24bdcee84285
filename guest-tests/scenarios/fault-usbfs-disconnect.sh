# fault-usbfs-disconnect: while the DSP streams, USBDEVFS_IOCTL(USBDEVFS_DISCONNECT) on the audio
# control interface (the one that holds the card) releases snd-usb-audio in the caller's context,
# under the device lock (§5f). Recovery rebinds the driver by re-authorizing the headset.
# expect-failure: fixture: usb_offload_put re-takes the USB device lock the unbind holds (seed 001); hung task
#   evidence: report hung-task usb_offload_put
. /guest-tests/lib/offload.sh
ktap_begin 7
ktap_offload_started
dev=/dev/bus/usb/$(printf %03d "$(cat /sys/bus/usb/devices/1-1/busnum)")/$(printf %03d "$(cat /sys/bus/usb/devices/1-1/devnum)")
if out=$(sb-usbfs disconnect "$dev" 0 2>&1); then ktap_ok usbfs_disconnect; else ktap_fail usbfs_disconnect "$out"; fi
ktap_indication_answered
ktap_dsp_released
echo 0 > /sys/bus/usb/devices/1-1/authorized; echo 1 > /sys/bus/usb/devices/1-1/authorized
ktap_headset_back
ktap_new_stream_exact
ktap_end
