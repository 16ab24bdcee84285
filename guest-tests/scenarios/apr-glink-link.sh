# apr-glink-link: the DSP's GLINK edge comes up (kernel variant q6): qcom_glink_rpm probes on the
# reserved message RAM, the guest's VERSION and the DSP's OPEN of apr_audio_svc complete both
# ways (each answer rung in by a DMA_WRITE to the GICv2m doorbell, SPI 111), APR binds to the
# channel and registers the core and AFE services; q6afe's probe asks the DSP's core service
# for its framework version over APR, and the DSP answers. On a kernel without qcom_glink_rpm
# every case is skipped.
# adsp-apr: glink
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/wait.sh
. /guest-tests/lib/ctl.sh
ktap_begin 6
if [ -z "$(find /lib/modules/"$(uname -r)" -name "qcom_glink_rpm.ko*" 2>/dev/null)" ]; then
    for c in glink_rpm_probed apr_bound_to_apr_audio_svc q6core_service_registered doorbell_interrupts_counted q6afe_bound core_answered_over_apr; do
        ktap_skip "$c" "this kernel has no qcom_glink_rpm (boot --kernel 7.3+q6)"
    done
    ktap_end
    exit 0
fi
modprobe qcom-apcs-ipc-mailbox
modprobe qcom_glink_rpm
modprobe apr
modprobe q6core
probed() { ls /sys/bus/platform/drivers/qcom_glink_rpm/ 2>/dev/null | grep -q adsp-glink; }
if wait_until 10 probed; then ktap_ok glink_rpm_probed
else ktap_fail glink_rpm_probed "qcom_glink_rpm did not bind the adsp-glink node: $(dmesg | grep -i -m3 'glink\|apcs')"; fi
bound() { ls /sys/bus/rpmsg/drivers/qcom,apr/ 2>/dev/null | grep -q apr_audio_svc; }
if wait_until 15 bound; then ktap_ok apr_bound_to_apr_audio_svc
else ktap_fail apr_bound_to_apr_audio_svc "no apr_audio_svc rpmsg device bound to APR: $(ls /sys/bus/rpmsg/devices/ 2>&1 | tr '\n' ' ')"; fi
core() { [ -e /sys/bus/aprbus/devices/aprsvc:service:4:3 ]; }
if wait_until 10 core; then ktap_ok q6core_service_registered
else ktap_fail q6core_service_registered "APR devices: $(ls /sys/bus/aprbus/devices/ 2>&1 | tr '\n' ' ')"; fi
# The handshake only advances in the interrupt handler; the doorbell's line says how often it ran.
irqs=$(awk '/glink-rpm/ { n = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) n += $i; else break; print n }' /proc/interrupts)
echo "# /proc/interrupts: $(grep glink-rpm /proc/interrupts)"
if [ "${irqs:-0}" -gt 0 ]; then ktap_ok doorbell_interrupts_counted
else ktap_fail doorbell_interrupts_counted "no glink-rpm interrupt counted in /proc/interrupts"; fi
modprobe q6afe
afe() { [ -e /sys/bus/aprbus/drivers/qcom-q6afe/aprsvc:service:4:4 ]; }
if wait_until 10 afe; then ktap_ok q6afe_bound
else ktap_fail q6afe_bound "q6afe did not bind aprsvc:service:4:4: $(dmesg | grep -i -m3 'q6afe\|apr')"; fi
answered() { sbctl stats && case "$SB_ANSWER" in *'"apr_core":0'*) false ;; *'"apr_core":'*) true ;; *) false ;; esac; }
if wait_until 10 answered; then echo "# $SB_ANSWER" | cut -c1-300; ktap_ok core_answered_over_apr
else ktap_fail core_answered_over_apr "the DSP's core service got no APR command: $SB_ANSWER"; fi
ktap_end
