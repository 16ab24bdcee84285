# The emulated headset as the guest sees it (vendor:product 1209:0001 for UAC2, 1209:0002 for
# UAC1, on root port 1-1).
. /guest-tests/lib/wait.sh
# find_card: sets $card to the headset's ALSA card index; false when there is none (yet).
find_card() {
    for _c in /proc/asound/card*; do
        case "$(cat "$_c/usbid" 2>/dev/null)" in
            1209:0001 | 1209:0002) card=${_c#/proc/asound/card}; return 0 ;;
        esac
    done
    return 1
}
# offload_ready: the offload driver took the headset (its controls exist on the card).
offload_ready() { amixer -c "$card" controls 2>/dev/null | grep -q 'USB Offload'; }
# usb_settled: every USB device the guest found is configured, the backend's loopback device
# (always on root port 1-2) included, so enumeration traffic is over. The loopback enumerates in
# parallel with the headset; a scenario that counts interrupts must not start before it is done.
usb_settled() {
    [ -e /sys/bus/usb/devices/1-2 ] || return 1
    for _d in /sys/bus/usb/devices/[0-9]*-[0-9]*; do
        case $_d in *:*) continue ;; esac
        [ -n "$(cat "$_d/bConfigurationValue" 2>/dev/null)" ] || return 1
    done
}
# wait_for_headset SECONDS: the card exists, the offload driver took it and enumeration is over.
wait_for_headset() {
    wait_until "$1" find_card && wait_until "$1" offload_ready && wait_until "$1" usb_settled
}
# ktap_capture_exact: arecord takes 1 s of the headset's counter source (48 kHz/16-bit stereo, a
# 1 s buffer) from card $card; one KTAP case, capture_counter_bit_exact (needs lib/ktap.sh).
ktap_capture_exact() {
    _out=$(arecord -D "hw:${card:-99},0" --buffer-time=1000000 -t raw -f S16_LE -r 48000 -c 2 -s 48000 2>/tmp/arecord.err | sb-pattern --check 96000)
    _rc=$?
    sed 's/^/# arecord: /' /tmp/arecord.err
    echo "# $_out"
    if [ $_rc = 0 ]; then ktap_ok capture_counter_bit_exact; else ktap_fail capture_counter_bit_exact "$_out"; fi
}
