# adsp-dma-write: the path of the ADSP's future doorbell interrupt, short of the interrupt: once
# xhci-pci has enabled bus mastering, the backend writes into the ADSP's message RAM (a
# reserved no-map region) as the xHCI's bus master, a vfio-user DMA_WRITE that QEMU performs,
# and reads the value back through its own map of guest RAM.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/ctl.sh
. /guest-tests/lib/headset.sh
ktap_begin 2
card=""
if wait_until 20 find_card; then ktap_ok xhci_bus_master_on
else ktap_fail xhci_bus_master_on "no headset card within 20 s: xhci-pci did not come up"; fi
ktap_ask dma_write_reaches_guest_ram selftest-dma-write
ktap_end
