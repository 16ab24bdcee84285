# fault-hc-gone: while the DSP streams, the xHCI controller drops off the bus (every register
# reads all-ones, doorbells are lost). The guest finds out at its next transfer (a mixer read
# that times out), declares the controller dead, and the offload driver must tell the DSP and
# take everything back from it. The controller then comes back and the guest re-probes it
# (PCI remove and rescan): the headset returns and a new offloaded stream is bit-exact.
# expect-report: xhci-error xHCI host controller not responding, assume dead|HC died; cleaning up
. /guest-tests/lib/offload.sh
. /guest-tests/lib/dmesg.sh
ktap_begin 9
ktap_offload_started
pci=$(basename "$(readlink -f /sys/bus/usb/devices/usb1/..)")
echo "# xHCI PCI function: $pci"
ktap_ask controller_gone hc-error gone
# The mixer read's control transfer never completes; its timeout makes xhci-hcd look at USBSTS.
amixer -c "$card" contents >/dev/null 2>&1
died() { dmesg | grep -q 'HC died'; }
if wait_until 30 died; then ktap_ok guest_saw_controller_die; else ktap_fail guest_saw_controller_die "no 'HC died' in the kernel log"; fi
ktap_indication_answered
ktap_dsp_released
sbctl hc-revive
echo 1 > "/sys/bus/pci/devices/$pci/remove"
echo 1 > /sys/bus/pci/rescan
ktap_headset_back
ktap_new_stream_exact
ktap_dmesg_clean
ktap_end
