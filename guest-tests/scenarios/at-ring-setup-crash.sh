# at-ring-setup-crash: the DSP crashes exactly while the offload driver sets up the secondary
# event ring for the DSP's stream-enable. uaudio_event_ring_setup is inlined, so the TCG plugin
# holds the QMI worker where it calls xhci_sideband_create_interrupter, while the backend drops
# the QRTR link and the DSP restarts; the enable's answer then goes to a DSP that is gone. The
# guest must take back what it mapped for that enable and serve the restarted DSP: a new stream
# bit-exact.
# known-failure: stock, fixture: qmi_stop_session leaves the substream opened; re-enable gets -EBUSY until replug (guide §5e)
#   evidence: ktap new_stream_bit_exact internal status -16
# known-race: stock: 2 in 10: after the DSP's crash the guest never unmaps the 4 regions it mapped for the held enable (SMMU map 4, unmap 0 at the run's end), and the re-enable meets -EBUSY as well; observed, cause not yet located (perhaps the session stop running before the held enable has mapped)
#   evidence: ktap dsp_released 4 SMMU mapping.s. are left after the release
#   evidence: ktap new_stream_bit_exact internal status -16
. /guest-tests/lib/offload.sh
. /guest-tests/lib/dmesg.sh
. /guest-tests/lib/at.sh
ktap_begin 5
if wait_for_headset 20; then ktap_ok headset_ready
else ktap_fail headset_ready "no headset card with offload controls"; fi
if at_arm xhci_sideband_create_interrupter+1 dsp-crash; then ktap_ok trigger_armed
else ktap_fail trigger_armed "xhci_sideband_create_interrupter not in /proc/kallsyms"; fi
sbctl stream-enable card=$card $OFFLOAD_FORMAT
echo "# the enable that met the crash: $SB_ANSWER"
ktap_dsp_released
ktap_new_stream_exact
ktap_dmesg_clean
ktap_end
