# fault-unbind: while the DSP streams, sysfs unbinds snd-usb-audio from the audio control
# interface, which holds the card (the driver core holds the parent USB device's lock, §5f).
# Recovery re-authorizes the headset, so every interface is probed afresh.
# expect-failure: fixture: usb_offload_put re-takes the USB device lock the unbind holds (seed 001); hung task
#   evidence: report hung-task usb_offload_put
. /guest-tests/lib/offload.sh
ktap_begin 7
ktap_offload_started
drv=/sys/bus/usb/drivers/snd-usb-audio
if echo 1-1:1.0 > $drv/unbind; then ktap_ok unbind; else ktap_fail unbind "write to $drv/unbind failed"; fi
ktap_indication_answered
ktap_dsp_released
echo 0 > /sys/bus/usb/devices/1-1/authorized; echo 1 > /sys/bus/usb/devices/1-1/authorized
ktap_headset_back
ktap_new_stream_exact
ktap_end
