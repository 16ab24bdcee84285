# fault-dsp-bye-in-disconnect: the headset is unplugged while the DSP streams, and the DSP answers
# the DISCONNECT indication with BYE instead of a disable. The session stop releases the stream,
# so the driver's wait for it should end at once; stock 7.3's qmi_stop_session never wakes the
# waiter, so the disconnect sits out its full 10 s (§5e).
# known-failure: stock, fixture: qmi_stop_session does not wake disconnect_wq; the disconnect waits its full 10 s (guide §5e)
#   evidence: ktap disconnect_prompt the disconnect took (9|1[0-9])\.[0-9]s after the DSP's BYE
. /guest-tests/lib/offload.sh
ktap_begin 7
ktap_offload_started
sbctl dsp-on-indication bye
t0=$(cut -d' ' -f1 /proc/uptime)
ktap_ask unplugged unplug 1
gone() { [ ! -e /sys/bus/usb/devices/1-1 ]; }
wait_until 30 gone
took=$(awk -v a="$t0" '{printf "%.1f", $1 - a}' /proc/uptime)
if awk -v t="$took" 'BEGIN {exit !(t < 5)}'; then ktap_ok disconnect_prompt
else ktap_fail disconnect_prompt "the disconnect took ${took}s after the DSP's BYE (want < 5 s)"; fi
sbctl dsp-on-indication disable
ktap_dsp_released
sbctl plug 1
ktap_headset_back
ktap_new_stream_exact
ktap_end
