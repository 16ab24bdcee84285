# fault-usbfs-reset: while the DSP streams, a usbfs USBDEVFS_RESET of the headset. snd-usb-audio
# has no reset hooks, so the reset force-unbinds it under the device lock (guest-driver.md §5f):
# the offload driver sends DISCONNECT and waits for the DSP's disable. The guest must recover.
# expect-failure: fixture: usb_offload_put re-takes the USB device lock the unbind holds (seed 001); hung task
#   evidence: report hung-task usb_offload_put
. /guest-tests/lib/offload.sh
. /guest-tests/lib/trace.sh
ktap_begin 8
trace_calls qc_usb_audio_offload_disconnect
ktap_offload_started
dev=/dev/bus/usb/$(printf %03d "$(cat /sys/bus/usb/devices/1-1/busnum)")/$(printf %03d "$(cat /sys/bus/usb/devices/1-1/devnum)")
if out=$(sb-usbfs reset "$dev" 2>&1); then ktap_ok usbfs_reset; else ktap_fail usbfs_reset "$out"; fi
ktap_recovered
# The seeds' path, as the kernel recorded it (kprobe stack at the offload driver's disconnect).
trace_stacks | sed 's/^/# /'
if why=$(trace_chain_has usb_reset_device usb_forced_unbind_intf usbdev_ioctl); then ktap_ok walked_the_reset_path
else ktap_fail walked_the_reset_path "$why"; fi
ktap_end
