# The emulated headset as the guest sees it (vendor:product 1209:0001, on root port 1-1).
. /guest-tests/lib/wait.sh
HEADSET_USBID=1209:0001
# find_card: sets $card to the headset's ALSA card index; false when there is none (yet).
find_card() {
    for _c in /proc/asound/card*; do
        [ "$(cat "$_c/usbid" 2>/dev/null)" = "$HEADSET_USBID" ] && card=${_c#/proc/asound/card} && return 0
    done
    return 1
}
# offload_ready: the offload driver took the headset (its controls exist on the card).
offload_ready() { amixer -c "$card" controls 2>/dev/null | grep -q 'USB Offload'; }
# wait_for_headset SECONDS: the card exists and the offload driver took it.
wait_for_headset() { wait_until "$1" find_card && wait_until "$1" offload_ready; }
