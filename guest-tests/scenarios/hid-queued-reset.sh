# hid-queued-reset: the headset's HID interrupt endpoint (0x83) answers every transfer with a
# transaction error; usbhid retries for about a second (hid_irq_in -> hid_io_error) and then
# queues a USB device reset (usb_queue_reset_device). snd-usb-audio has no pre/post_reset, so
# the reset force-unbinds it: __usb_queue_reset_device -> usb_reset_device ->
# usb_forced_unbind_intf -> usb_audio_disconnect -> qc_usb_audio_offload_disconnect. With the
# errors switched off the headset comes back: the card reappears and the buttons work again.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/dmesg.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/hid.sh

RESET='reset [a-z]+-speed USB device number'
reset_seen() { dmesg | grep -qE "$RESET"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
# control_inode: the inode of the card's control node; devtmpfs makes a new one when the card
# is freed and registered again, so a changed inode shows snd-usb-audio was unbound and rebound.
control_inode() { ls -i "/dev/snd/controlC$card" 2>/dev/null | awk '{print $1}'; }

ktap_begin 7
if wait_for_headset 30 && wait_until 10 find_hid_input; then
    ktap_ok headset_and_buttons
else
    ktap_fail headset_and_buttons "no headset card or no headset input device"
fi
inode_before=$(control_inode)
if reset_seen; then ktap_fail no_reset_before "the device was reset before any fault"; else ktap_ok no_reset_before; fi
# Keep the input device open so usbhid keeps its interrupt URB on 0x83 in flight.
cat "/dev/input/${event:-event0}" >/dev/null 2>&1 &
holder=$!
wait_until 10 has_open "$holder" "/dev/input/${event:-event0}" || echo "# the holder did not open /dev/input/${event:-event0}"
start=$(uptime_s)
echo "SIDEBAND-CTL xact-errors 0x83 on"
if wait_until 30 reset_seen; then
    line=$(dmesg | grep -m1 -E "$RESET")
    at=$(echo "$line" | sed 's/^\[ *\([0-9.]*\)\].*/\1/')
    echo "# errors on at $start s; $line"
    echo "# usbhid queued the reset $(awk "BEGIN { printf \"%.2f\", $at - $start }") s after the errors began"
    ktap_ok usbhid_queued_reset
else
    ktap_fail usbhid_queued_reset "no '$RESET' line within 30 s of the transaction errors"
fi
echo "SIDEBAND-CTL xact-errors 0x83 off"
# The reset unbinds snd-usb-audio and binds it again: wait (bounded) for a card whose control node
# is not the old one; if none comes, headset_back and card_recreated below say so.
card_replaced() { find_card && [ "$(control_inode)" != "$inode_before" ]; }
wait_until 30 card_replaced || echo "# no new card within 30 s of the reset"
card=""
if wait_for_headset 30; then ktap_ok headset_back; else ktap_fail headset_back "the headset's card did not come back after the reset"; fi
inode_after=$(control_inode)
echo "# card $card control node inode: $inode_before before, $inode_after after"
if [ -n "$inode_before" ] && [ -n "$inode_after" ] && [ "$inode_before" != "$inode_after" ]; then
    ktap_ok card_recreated
else
    ktap_fail card_recreated "the card's control node is the same: snd-usb-audio was not unbound"
fi
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
event=""
if wait_until 10 find_hid_input; then
    read_events /tmp/ev 6
    wait_until 10 has_open "$reader" "/dev/input/$event" || echo "# the reader did not open /dev/input/$event"
    echo "SIDEBAND-CTL button vol-up"
    wait_until 15 size_at_least /tmp/ev 144
    kill "$reader" 2>/dev/null; wait "$reader" 2>/dev/null
fi
if [ -n "$event" ] && key_event /tmp/ev 73 1; then
    ktap_ok buttons_after_reset
else
    ktap_fail buttons_after_reset "no vol-up key press after the reset"
fi
dmesg | grep -E 'usb 1-1|usbhid|snd-usb|qc_usb|offload' | tail -30 | sed 's/^/# /'
ktap_dmesg_clean
ktap_end
