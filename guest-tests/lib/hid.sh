# The headset's HID buttons interface (interface 3 of 1-1 for the default profiles: after the
# audio function; interrupt IN 0x83) as the guest sees it.
. /guest-tests/lib/wait.sh
# find_hid_input: sets $event to the headset's event device name (eventN); false when none (yet).
find_hid_input() {
    for _e in /sys/class/input/event*; do
        case "$(cat "$_e/device/name" 2>/dev/null)" in
            sideband*headset*) event=${_e##*/}; return 0 ;;
        esac
    done
    return 1
}
# hid_bound: some interface of 1-1 is bound to usbhid.
hid_bound() {
    for _i in /sys/bus/usb/devices/1-1:1.*; do
        [ "$(basename "$(readlink "$_i/driver" 2>/dev/null)")" = usbhid ] && return 0
    done
    return 1
}
# read_events FILE COUNT: copies COUNT input events (24 bytes each on arm64) of /dev/input/$event
# into FILE in the background (dd writes each event as it comes, so a partial read survives
# the timeout); $reader is its pid.
read_events() {
    : >"$1"
    timeout 20 dd if="/dev/input/$event" of="$1" bs=24 count="$2" 2>/dev/null &
    reader=$!
}
# events_hex FILE: the events as one line of hex bytes.
events_hex() { od -An -tx1 -v "$1" | tr -s ' \n' '  '; }
# key_event FILE CODE VALUE: an EV_KEY event with key code CODE (2 hex digits, little-endian low
# byte) and VALUE (1 press, 0 release) is in FILE.
key_event() { events_hex "$1" | grep -q "01 00 $2 00 0$3 00 00 00"; }
# size_at_least FILE BYTES
size_at_least() { [ "$(wc -c <"$1")" -ge "$2" ]; }
