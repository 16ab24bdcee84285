# fault-dsp-silent: the DSP stops but never answers the DISCONNECT indication of an unplug. The
# driver waits its 10 s ("timeout while waiting for dev_release") with the device lock held; the
# hung-task threshold (15 s) must not call that a hang, and everything must be released after.
. /guest-tests/lib/offload.sh
ktap_begin 7
ktap_offload_started
sbctl dsp-on-indication ignore
t0=$(cut -d. -f1 /proc/uptime)
ktap_ask unplugged unplug 1
gone() { [ ! -e /sys/bus/usb/devices/1-1 ]; }
if wait_until 30 gone; then
    echo "# the disconnect took about $(( $(cut -d. -f1 /proc/uptime) - t0 )) s"; ktap_ok disconnect_completed
else
    ktap_fail disconnect_completed "1-1 still present after 30 s"
fi
sbctl dsp-on-indication disable
ktap_dsp_released
sbctl plug 1
ktap_headset_back
ktap_new_stream_exact
ktap_end
