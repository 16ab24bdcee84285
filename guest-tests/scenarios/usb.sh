# usb: the emulated xHCI binds, both root hubs and both devices enumerate, the headset becomes a
# sound card with the offload driver's controls, and 1 MiB goes through the loopback device
# byte for byte.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/dmesg.sh

# usb_id PATH: vendor:product of a USB device in sysfs.
usb_id() { echo "$(cat "$1/idVendor" 2>/dev/null):$(cat "$1/idProduct" 2>/dev/null)"; }

ktap_begin 8
ktap_check xhci_bound "xhci_hcd did not bind 0000:00:03.0" test -e /sys/bus/pci/drivers/xhci_hcd/0000:00:03.0
if [ -e /sys/bus/usb/devices/usb1 ] && [ -e /sys/bus/usb/devices/usb2 ]; then ktap_ok root_hubs
else ktap_fail root_hubs "expected usb1 (USB 2) and usb2 (USB 3) root hubs"; fi

wait_until 20 test -e /sys/bus/usb/devices/1-1/idVendor
id=$(usb_id /sys/bus/usb/devices/1-1)
if [ "$id" = 1209:0001 ]; then ktap_ok headset_enumerated; else ktap_fail headset_enumerated "port 1-1 is '$id', not 1209:0001"; fi
wait_until 20 test -e /sys/bus/usb/devices/1-2/idVendor
id=$(usb_id /sys/bus/usb/devices/1-2)
if [ "$id" = 1209:0003 ]; then ktap_ok loopback_enumerated; else ktap_fail loopback_enumerated "port 1-2 is '$id', not 1209:0003"; fi
lsusb -t 2>&1 | sed 's/^/# lsusb: /'

card=""
wait_until 20 find_card
if [ -n "$card" ]; then ktap_ok headset_sound_card; else ktap_fail headset_sound_card "no ALSA card with usbid 1209:0001"; fi
cat /proc/asound/cards | sed 's/^/# cards: /'

# qc_audio_offload's connect callback adds these controls to the USB card when it takes the
# device for offload (xhci_sideband_register succeeded).
ctl=$(amixer -c "${card:-99}" controls 2>/dev/null | grep -c 'USB Offload')
if [ "${ctl:-0}" -gt 0 ]; then ktap_ok offload_controls; else ktap_fail offload_controls "no 'USB Offload' controls on card ${card:-?}"; fi

dev=$(printf '/dev/bus/usb/%03d/%03d' "$(cat /sys/bus/usb/devices/1-2/busnum 2>/dev/null || echo 0)" "$(cat /sys/bus/usb/devices/1-2/devnum 2>/dev/null || echo 0)")
out=$(sb-usbfs loopback "$dev" 1048576 2>&1)
if [ $? = 0 ]; then ktap_ok loopback_1mib; else ktap_fail loopback_1mib "$out"; fi

bad=$(dmesg_bad_lines)
if [ -z "$bad" ]; then ktap_ok dmesg_clean; else ktap_fail dmesg_clean "$(echo "$bad" | head -1)"; fi
ktap_end
