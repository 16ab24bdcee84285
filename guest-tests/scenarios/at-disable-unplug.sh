# at-disable-unplug: the DSP disables its stream, and the headset is unplugged exactly when the
# disable's release reaches usb_offload_put: the TCG plugin holds that vCPU until the backend has
# unplugged port 1 and given the hub thread 300 ms to start the disconnect. On the fixture kernel,
# where usb_offload_put takes the USB device lock, the QMI worker (holding qdev_mutex) waits for the
# device lock the disconnect holds, and the disconnect waits for qdev_mutex: an AB-BA deadlock,
# every run. Stock 7.3 takes no device lock there and recovers.
# expect-failure: fixture: usb_offload_put waits for the device lock the unplug's disconnect holds, which waits for qdev_mutex (AB-BA); hung task
#   evidence: report hung-task usb_offload_put
. /guest-tests/lib/offload.sh
. /guest-tests/lib/at.sh
ktap_begin 7
ktap_offload_started
pin_race_cpus || echo "# could not pin the worker and the xHCI interrupt to different CPUs"
if at_arm usb_offload_put+1 "unplug 1; sleep 300"; then ktap_ok trigger_armed
else ktap_fail trigger_armed "usb_offload_put not in /proc/kallsyms"; fi
sbctl stream-disable
echo "# stream-disable: $SB_ANSWER"
gone() { [ ! -e /sys/bus/usb/devices/1-1 ]; }
if wait_until 30 gone; then ktap_ok headset_removed; else ktap_fail headset_removed "1-1 still present"; fi
ktap_dsp_released
sbctl plug 1
ktap_headset_back
ktap_new_stream_exact
ktap_end
