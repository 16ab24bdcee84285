# at-enable-reset: the seeds' queued reset lands inside the DSP's stream-enable. The TCG plugin
# holds the QMI worker in usb_offload_get (prepare_qmi_response, qdev_mutex held) for 8 s while
# the headset's HID endpoint fails every transaction, so usbhid queues a device reset; the reset
# worker's forced unbind reaches qc_usb_audio_offload_disconnect while the enable is still
# running. Checks: the disconnect started before the enable handler returned, from
# __usb_queue_reset_device; the DSP got the indication and released everything; the headset
# comes back and a new offloaded stream is bit-exact.
# expect-failure: fixture: the DSP's disable answering the reset's indication reaches usb_offload_put, which waits for the device lock the reset worker holds; hung task
#   evidence: report hung-task usb_offload_put
. /guest-tests/lib/offload.sh
. /guest-tests/lib/hid.sh
. /guest-tests/lib/trace.sh
. /guest-tests/lib/dmesg.sh
. /guest-tests/lib/at.sh

ktap_begin 9
if wait_for_headset 20 && wait_until 10 find_hid_input; then ktap_ok headset_and_buttons
else ktap_fail headset_and_buttons "no headset card with offload controls or no headset input device"; fi
pin_race_cpus || echo "# could not pin the worker and the xHCI interrupt to different CPUs"
trace_calls qc_usb_audio_offload_disconnect
trace_returns handle_uaudio_stream_req
# usbhid polls the buttons only while someone reads them.
cat "/dev/input/${event:-event0}" >/dev/null 2>&1 &
holder=$!
if at_arm usb_offload_get+1 "xact-errors 0x83 on; sleep 8000; xact-errors 0x83 off"; then
    ktap_ok trigger_armed
else
    ktap_fail trigger_armed "usb_offload_get not in /proc/kallsyms"
fi
sbctl stream-enable card=$card $OFFLOAD_FORMAT
echo "# stream-enable: $SB_ANSWER"
if trace_before qc_usb_audio_offload_disconnect ret_handle_uaudio_stream_req >/tmp/order; then
    ktap_ok reset_inside_enable
else
    ktap_fail reset_inside_enable "the disconnect did not start before the enable handler returned: $(cat /tmp/order)"
fi
ktap_recovered
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
ktap_walked_queued_reset
ktap_dmesg_clean
ktap_end
