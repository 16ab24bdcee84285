# hotplug: the backend unplugs the loopback device's port and plugs it back; the guest sees the
# disconnect, enumerates the device again, and data goes through it.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/dmesg.sh
. /guest-tests/lib/wait.sh

present() { [ -e /sys/bus/usb/devices/1-2/idVendor ]; }
absent() { ! present; }

ktap_begin 4
if wait_until 20 present; then ktap_ok loopback_present; else ktap_fail loopback_present "1-2 never enumerated"; fi
echo "SIDEBAND-CTL unplug 2"
if wait_until 10 absent; then ktap_ok unplug_seen; else ktap_fail unplug_seen "1-2 still present 10 s after the unplug"; fi
echo "SIDEBAND-CTL plug 2"
if wait_until 20 present; then ktap_ok replug_enumerated; else ktap_fail replug_enumerated "1-2 did not come back"; fi
dev=$(printf '/dev/bus/usb/%03d/%03d' "$(cat /sys/bus/usb/devices/1-2/busnum 2>/dev/null || echo 0)" "$(cat /sys/bus/usb/devices/1-2/devnum 2>/dev/null || echo 0)")
wait_until 5 test -e "$dev"
out=$(sb-usbfs loopback "$dev" 262144 2>&1)
if [ $? = 0 ]; then ktap_ok loopback_after_replug; else ktap_fail loopback_after_replug "$out"; fi
bad=$(dmesg_bad_lines)
[ -z "$bad" ] || echo "# dmesg: $bad"
ktap_end
