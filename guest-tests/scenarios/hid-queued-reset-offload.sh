# hid-queued-reset-offload: hid-queued-reset with an offloaded stream enabled by the DSP. The
# reset usbhid queues force-unbinds snd-usb-audio while the stream is up, so
# qc_usb_audio_offload_disconnect must send the DISCONNECT indication and wait for the DSP's
# disable, from the reset worker (__usb_queue_reset_device) instead of hub_event.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/dmesg.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/hid.sh
. /guest-tests/lib/trace.sh
. /guest-tests/lib/ctl.sh

RESET='reset [a-z]+-speed USB device number'
reset_seen() { dmesg | grep -qE "$RESET"; }
# control_inode: the inode of the card's control node (devtmpfs makes a new one for a new card).
control_inode() { ls -i "/dev/snd/controlC$card" 2>/dev/null | awk '{print $1}'; }

card=""
ktap_begin 5
# The seeds' path, recorded by the kernel: a kprobe stack at the offload driver's disconnect.
trace_calls qc_usb_audio_offload_disconnect
if wait_for_headset 30 && wait_until 10 find_hid_input; then
    ktap_ok headset_and_buttons
else
    ktap_fail headset_and_buttons "no headset card or no headset input device"
fi
cat "/dev/input/${event:-event0}" >/dev/null 2>&1 &
holder=$!
wait_until 10 has_open "$holder" "/dev/input/${event:-event0}" || echo "# the holder did not open /dev/input/${event:-event0}"
inode_before=$(control_inode)
echo "SIDEBAND-CTL stream-enable card=$card pcm=0 dir=playback rate=48000 bits=16 ch=2"
# The backend runs requests in order: this answer comes once the enable is done (bounded).
sbctl stats || echo "# no answer after stream-enable: $SB_ANSWER"
echo "SIDEBAND-CTL xact-errors 0x83 on"
echo "SIDEBAND-CTL expect-indication"
if wait_until 30 reset_seen; then
    ktap_ok usbhid_queued_reset
else
    ktap_fail usbhid_queued_reset "no reset line within 30 s of the transaction errors"
fi
echo "SIDEBAND-CTL xact-errors 0x83 off"
# The reset unbinds snd-usb-audio and binds it again: wait (bounded) for a card whose control node
# is not the old one; if none comes, headset_back below says so.
card_replaced() { find_card && [ "$(control_inode)" != "$inode_before" ]; }
wait_until 30 card_replaced || echo "# no new card within 30 s of the reset"
card=""
if wait_for_headset 30; then ktap_ok headset_back; else ktap_fail headset_back "the headset's card did not come back after the reset"; fi
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
dmesg | grep -E 'usb 1-1|qc_usb|offload|uaudio' | tail -20 | sed 's/^/# /'
ktap_walked_queued_reset
ktap_dmesg_clean
ktap_end
