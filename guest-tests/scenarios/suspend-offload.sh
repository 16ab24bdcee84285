# suspend-offload: system suspend to idle (s2idle) while the DSP streams, then a suspend with no stream.
# The virt machine's RTC has no wake alarm here, so each cycle is PM_DEBUG's pm_test=devices:
# every device suspends, then all resume 5 s later; the USB side is the same as a real s2idle.
# The DSP's link is the MHI function (qrtr-mhi, in the kernel), so the DSP answers the DISCONNECT
# indication the headset's suspend sends while user space is frozen, as a phone's GLINK link does.
# Correct behaviour: both suspends succeed, the DSP releases everything, a new stream works, and
# the suspend with no stream suspends the headset's port again. Stock 7.3 keeps the offload usage
# count across the first suspend (usb_offload_put returns -EAGAIN while offload_pm_locked, §5g), so
# the root hub counts as offloaded, skips its suspend, and xhci-pci fails every later suspend too.
# adsp-link: mhi
# known-failure: stock: usb_offload_put refuses while offload_pm_locked; the usage count outlives the stream, the root hub skips its suspend ("device offloaded") and xhci-pci fails system suspend with -EBUSY, now and at every later suspend (guide §5g)
#   evidence: ktap headset_suspended_again device offloaded, skip suspend
#   evidence: ktap suspended_and_resumed hcd_pci_suspend returns -16
. /guest-tests/lib/offload.sh
ktap_begin 9
suspends() { sbctl port-suspends 1 >/dev/null; echo "${SB_ANSWER%% *}"; }
# suspend_to_idle: one s2idle cycle up to the devices stage (pm_test), 5 s suspended. Its dmesg
# lines are kept in $SUSPEND_LOG for the evidence.
suspend_to_idle() {
    local mark rc
    mark=$(dmesg | wc -l)
    echo devices > /sys/power/pm_test && echo freeze > /sys/power/state 2>/dev/null
    rc=$?
    SUSPEND_LOG=$(dmesg | tail -n +"$((mark + 1))")
    return $rc
}
# The evidence a failed suspend left: the refusals and the USB core's offload decisions.
suspend_evidence() {
    echo "$SUSPEND_LOG" | grep -E 'offloaded, skip suspend|not suspended|failed to suspend|returns -' |
        sed 's/^\[ *[0-9.]*\] //' | head -6 | tr '\n' ';'
}
# Devices suspend one at a time, in the reverse of the order they appeared, so the headset (which
# sends the DISCONNECT indication and waits for the DSP's disable) suspends before the MHI function
# that carries the DSP's link goes to M3. With async suspend the link could sleep first and the
# driver would wait its 10 s for an answer stuck in the link, which a phone's GLINK link never does.
echo 0 > /sys/power/pm_async
# usb_suspend_both's "device offloaded, skip suspend" lines are the evidence of the kept count.
echo 'file drivers/usb/core/driver.c +p' > /sys/kernel/debug/dynamic_debug/control
wait_for_headset 20 >/dev/null
n0=$(suspends)
if suspend_to_idle && [ "$(suspends)" -gt "$n0" ]; then ktap_ok idle_suspend_suspends_headset
else ktap_fail idle_suspend_suspends_headset "before any offload, the suspend failed or left the headset's port awake ($n0 -> $(suspends)): $(suspend_evidence)"; fi
ktap_offload_started
if suspend_to_idle; then ktap_ok suspended_and_resumed
else ktap_fail suspended_and_resumed "system suspend with the DSP streaming failed: $(suspend_evidence)"; fi
ktap_indication_answered
ktap_dsp_released
ktap_headset_back
ktap_new_stream_exact
n1=$(suspends)
if suspend_to_idle && [ "$(suspends)" -gt "$n1" ]; then ktap_ok headset_suspended_again
else ktap_fail headset_suspended_again "with no stream left, the suspend failed or left the headset's port awake ($n1 -> $(suspends) suspends): $(suspend_evidence)"; fi
ktap_end
