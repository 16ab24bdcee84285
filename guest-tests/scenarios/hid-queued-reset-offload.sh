# hid-queued-reset-offload: hid-queued-reset with an offloaded stream enabled by the DSP. The
# reset usbhid queues force-unbinds snd-usb-audio while the stream is up, so
# qc_usb_audio_offload_disconnect must send the DISCONNECT indication and wait for the DSP's
# disable, from the reset worker (__usb_queue_reset_device) instead of hub_event.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/dmesg.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/hid.sh
. /guest-tests/lib/trace.sh

RESET='reset [a-z]+-speed USB device number'
reset_seen() { dmesg | grep -qE "$RESET"; }

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
echo "SIDEBAND-CTL stream-enable card=$card pcm=0 dir=playback rate=48000 bits=16 ch=2"
sleep 1
echo "SIDEBAND-CTL xact-errors 0x83 on"
echo "SIDEBAND-CTL expect-indication"
if wait_until 30 reset_seen; then
    ktap_ok usbhid_queued_reset
else
    ktap_fail usbhid_queued_reset "no reset line within 30 s of the transaction errors"
fi
echo "SIDEBAND-CTL xact-errors 0x83 off"
sleep 2
card=""
if wait_for_headset 30; then ktap_ok headset_back; else ktap_fail headset_back "the headset's card did not come back after the reset"; fi
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
dmesg | grep -E 'usb 1-1|qc_usb|offload|uaudio' | tail -20 | sed 's/^/# /'
ktap_walked_queued_reset
ktap_dmesg_clean
ktap_end
