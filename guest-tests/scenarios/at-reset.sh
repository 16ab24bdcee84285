# at-reset: a fault at an exact kernel function. The scenario arms usb_reset_device (address from
# /proc/kallsyms); when the guest resets the loopback device through usbfs, the TCG plugin holds
# the vCPU at the function's first instruction while the backend unplugs port 2, so the reset
# always runs against a device that is already gone. The device leaves and comes back on replug.
# A first reset before the arming succeeds: usb_reset_device is then already translated, so the
# plugin has to flush QEMU's translation cache for the trigger to take.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/wait.sh
. /guest-tests/lib/at.sh

present() { [ -e /sys/bus/usb/devices/1-2/idVendor ]; }
absent() { ! present; }

ktap_begin 5
if wait_until 20 present; then ktap_ok loopback_present; else ktap_fail loopback_present "1-2 never enumerated"; fi
dev=$(printf '/dev/bus/usb/%03d/%03d' "$(cat /sys/bus/usb/devices/1-2/busnum 2>/dev/null || echo 0)" "$(cat /sys/bus/usb/devices/1-2/devnum 2>/dev/null || echo 0)")
out=$(sb-usbfs reset "$dev" 2>&1)
if [ $? = 0 ] && present; then ktap_ok plain_reset; else ktap_fail plain_reset "$out"; fi
if at_arm usb_reset_device+1 unplug 2; then ktap_ok trigger_armed; else ktap_fail trigger_armed "usb_reset_device not in kallsyms"; fi
out=$(sb-usbfs reset "$dev" 2>&1)
echo "# sb-usbfs reset: rc=$? $out"
if wait_until 10 absent; then ktap_ok unplugged_during_reset; else ktap_fail unplugged_during_reset "1-2 still present after the reset"; fi
echo "SIDEBAND-CTL plug 2"
if wait_until 20 present; then ktap_ok replug_enumerated; else ktap_fail replug_enumerated "1-2 did not come back"; fi
ktap_end
