# smoke: the offload stack loaded, the q6usb platform device exists, and the kernel log is clean.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/dmesg.sh

MODULES="qrtr qrtr_tun xhci_hcd xhci_pci usbhid snd_usb_audio snd_usb_audio_qmi soc_usb q6usb q6afe apr qmi_helpers snd_soc_simple_card snd_soc_spdif_rx snd_soc_spdif_tx"
ktap_begin 6
missing=""
for m in $MODULES; do [ -d "/sys/module/$m" ] || missing="$missing $m"; done
if [ -z "$missing" ]; then ktap_ok offload_modules_loaded; else ktap_fail offload_modules_loaded "not loaded:$missing"; fi
ktap_check q6usb_platform_device "no /sys/bus/platform/devices/usbd" test -e /sys/bus/platform/devices/usbd
ktap_check virtio_iommu_builtin "CONFIG_VIRTIO_IOMMU is not =y" sh -c 'zcat /proc/config.gz | grep -qx CONFIG_VIRTIO_IOMMU=y'
ktap_check xhci_sideband_enabled "CONFIG_USB_XHCI_SIDEBAND is not =y" sh -c 'zcat /proc/config.gz | grep -qx CONFIG_USB_XHCI_SIDEBAND=y'
ktap_check hung_task_detector "no /proc/sys/kernel/hung_task_timeout_secs" test -e /proc/sys/kernel/hung_task_timeout_secs
bad=$(dmesg_bad_lines)
if [ -z "$bad" ]; then ktap_ok dmesg_clean; else ktap_fail dmesg_clean "$(echo "$bad" | head -1)"; fi
ktap_end
