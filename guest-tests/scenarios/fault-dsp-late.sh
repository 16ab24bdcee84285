# fault-dsp-late: the headset is unplugged while the DSP streams; the DSP stops at once but sends
# its disable 4 s late (well inside the driver's 10 s wait). The disable must be answered and
# must end the disconnect's wait then, not at its 10 s timeout; everything is released and a new
# offloaded stream is bit-exact.
. /guest-tests/lib/offload.sh
. /guest-tests/lib/dmesg.sh
ktap_begin 10
ktap_offload_started
sbctl dsp-on-indication hold
uptime_ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }
t0=$(uptime_ms)
ktap_ask unplugged unplug 1
sbctl sleep 4000 # the subject: the DSP holds its disable back for 4 s
if sbctl ! expect-streaming; then ktap_ok dsp_stopped_at_the_indication
else ktap_fail dsp_stopped_at_the_indication "$SB_ANSWER"; fi
ktap_ask late_disable_answered stream-disable
gone() { [ ! -e /sys/bus/usb/devices/1-1 ]; }
if wait_until 30 gone; then
    took=$(( $(uptime_ms) - t0 ))
    echo "# the disconnect took $took ms"
    if [ "$took" -lt 9000 ]; then ktap_ok disconnect_ended_by_the_disable
    else ktap_fail disconnect_ended_by_the_disable "the disconnect took $took ms: it sat out its 10 s wait"; fi
else
    ktap_fail disconnect_ended_by_the_disable "1-1 still present after 30 s"
fi
sbctl dsp-on-indication disable
ktap_dsp_released
sbctl plug 1
ktap_headset_back
ktap_new_stream_exact
ktap_dmesg_clean
ktap_end
