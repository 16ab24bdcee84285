# hid-buttons: usbhid binds the headset's HID (consumer control) interface next to the audio
# function, which snd-usb-audio still takes, and a button press the backend queues arrives as
# a key press and release on the headset's input device, also right after the endpoint STALLed
# once (usbhid clears the halt and polls on).
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/dmesg.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/hid.sh

KEY_VOLUMEUP=73 # 115
KEY_MUTE=71     # 113
KEY_PLAYPAUSE=a4 # 164
ktap_begin 7
if wait_for_headset 30; then ktap_ok audio_bound; else ktap_fail audio_bound "no headset card with the offload controls"; fi
if wait_until 20 hid_bound; then ktap_ok usbhid_bound; else ktap_fail usbhid_bound "no interface of 1-1 bound to usbhid"; fi
event=""
if wait_until 10 find_hid_input; then
    ktap_ok input_device
else
    ktap_fail input_device "no input device named after the headset"
fi
grep -A8 'sideband' /proc/bus/input/devices | sed 's/^/# /'
press() { # NAME CODE TEST [REQUEST]
    read_events /tmp/ev 6 # MSC_SCAN, KEY, SYN for the press and again for the release
    # Once the reader has the device open, usbhid polls 0x83 and the events reach the reader.
    wait_until 10 has_open "$reader" "/dev/input/$event" || echo "# the reader did not open /dev/input/$event"
    [ -z "$4" ] || echo "SIDEBAND-CTL $4"
    echo "SIDEBAND-CTL button $1"
    wait_until 15 size_at_least /tmp/ev 144
    kill "$reader" 2>/dev/null; wait "$reader" 2>/dev/null
    echo "# $1: $(events_hex /tmp/ev)"
    if key_event /tmp/ev "$2" 1 && key_event /tmp/ev "$2" 0; then
        ktap_ok "$3"
    else
        ktap_fail "$3" "no key $2 press and release on /dev/input/$event"
    fi
}
if [ -n "$event" ]; then
    press vol-up $KEY_VOLUMEUP vol_up_event
    press mute $KEY_MUTE mute_event
    press play-pause $KEY_PLAYPAUSE event_after_stall "stall 0x83 1"
    echo "SIDEBAND-CTL stall 0x83 off" # answers 'had no STALLs' once the one STALL was used
else
    ktap_fail vol_up_event "no input device"
    ktap_fail mute_event "no input device"
    ktap_fail event_after_stall "no input device"
fi
ktap_dmesg_clean
ktap_end
