# fault-deauthorize: while the DSP streams, authorized=0 on the headset unbinds every interface
# under the device lock; authorized=1 brings it back.
# expect-failure: fixture: usb_offload_put re-takes the USB device lock the unbind holds (seed 001); hung task
#   evidence: report hung-task usb_offload_put
. /guest-tests/lib/offload.sh
ktap_begin 7
ktap_offload_started
if echo 0 > /sys/bus/usb/devices/1-1/authorized; then ktap_ok deauthorized; else ktap_fail deauthorized "write failed"; fi
ktap_indication_answered
ktap_dsp_released
echo 1 > /sys/bus/usb/devices/1-1/authorized
ktap_headset_back
ktap_new_stream_exact
ktap_end
