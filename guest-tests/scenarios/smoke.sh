# smoke: the offload stack loaded, the q6usb platform device exists (in a translated IOMMU group
# with its auxiliary device bound when the ADSP SMMU is served), and the kernel log is clean.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/dmesg.sh

MODULES="qrtr qrtr_tun xhci_hcd xhci_pci usbhid snd_usb_audio snd_usb_audio_qmi soc_usb q6usb q6afe apr qmi_helpers snd_soc_simple_card snd_soc_spdif_rx snd_soc_spdif_tx"
ktap_begin 8
missing=""
for m in $MODULES; do [ -d "/sys/module/$m" ] || missing="$missing $m"; done
if [ -z "$missing" ]; then ktap_ok offload_modules_loaded; else ktap_fail offload_modules_loaded "not loaded:$missing"; fi
ktap_check q6usb_platform_device "no /sys/bus/platform/devices/usbd" test -e /sys/bus/platform/devices/usbd
ktap_check virtio_iommu_builtin "CONFIG_VIRTIO_IOMMU is not =y" sh -c 'zcat /proc/config.gz | grep -qx CONFIG_VIRTIO_IOMMU=y'
ktap_check xhci_sideband_enabled "CONFIG_USB_XHCI_SIDEBAND is not =y" sh -c 'zcat /proc/config.gz | grep -qx CONFIG_USB_XHCI_SIDEBAND=y'
ktap_check hung_task_detector "no /proc/sys/kernel/hung_task_timeout_secs" test -e /proc/sys/kernel/hung_task_timeout_secs
# With the backend's ADSP SMMU (virtio-iommu) present, q6usb must sit in a translated (DMA)
# IOMMU group, and the card's q6usb component creates the auxiliary device the QMI driver binds.
if grep -q 'sideband.adsp_smmu=1' /proc/cmdline; then
    group=$(cat /sys/bus/platform/devices/usbd/iommu_group/type 2>/dev/null)
    if [ "$group" = DMA ]; then ktap_ok q6usb_iommu_domain; else ktap_fail q6usb_iommu_domain "usbd iommu group type is '${group:-none}', not DMA"; fi
    aux=/sys/bus/auxiliary/devices/q6usb.qc-usb-audio-offload.0
    drv=$(basename "$(readlink $aux/driver 2>/dev/null)" 2>/dev/null)
    if [ "$drv" = snd_usb_audio_qmi.qc-usb-audio-offload ]; then ktap_ok offload_aux_device_bound
    else ktap_fail offload_aux_device_bound "$aux driver is '${drv:-none}'"; fi
else
    ktap_skip q6usb_iommu_domain "booted without the ADSP SMMU"
    ktap_skip offload_aux_device_bound "booted without the ADSP SMMU"
fi
bad=$(dmesg_bad_lines)
if [ -z "$bad" ]; then ktap_ok dmesg_clean; else ktap_fail dmesg_clean "$(echo "$bad" | head -1)"; fi
ktap_end
