# playback: ordinary (not offloaded) playback through snd-usb-audio: aplay sends a counter
# pattern to the emulated headset at 48 kHz/16-bit and at 96 kHz/24-bit stereo; the backend
# checks each recording bit for bit. The card must list the formats the headset offers.
# known-race: stock, fixture, kasan: 7 in 80 (beside another guest): snd-usb-audio's low-latency playback takes a chunk from the ring buffer and submits its URB later with no lock shared by the start, ack and completion paths, so a completion on another CPU can submit a later chunk first (two URBs swapped at stream start); never with variant snd-usb-fixes
#   evidence: backend check-counter .*the counter pattern broke
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh

card=""
wait_until 20 find_card
stream=/proc/asound/card${card:-99}/stream0
ktap_begin 4
if [ -n "$card" ]; then ktap_ok headset_card; else ktap_fail headset_card "no ALSA card with usbid 1209:0001"; fi
missing=""
for want in "Format: S16_LE" "Format: S24_3LE" "Format: S32_LE" "48000" "96000" "192000" "Playback:" "Capture:"; do
    grep -q "$want" "$stream" 2>/dev/null || missing="$missing '$want'"
done
if [ -z "$missing" ]; then ktap_ok stream_formats_listed; else ktap_fail stream_formats_listed "$stream lacks$missing"; fi
# play BYTES FORMAT RATE SAMPLES
play() {
    out=$(sb-pattern --bytes "$1" "$4" | aplay -D "hw:${card:-99},0" -t raw -f "$2" -r "$3" -c 2 2>&1)
    rc=$?
    echo "$out" | sed 's/^/# aplay: /'
    # The backend compares the recording with the pattern; a mismatch fails the scenario there.
    echo "SIDEBAND-CTL check-counter $4"
    return $rc
}
if play 2 S16_LE 48000 96000; then ktap_ok aplay_48k_16bit; else ktap_fail aplay_48k_16bit "aplay failed"; fi
if play 3 S24_3LE 96000 192000; then ktap_ok aplay_96k_24bit; else ktap_fail aplay_96k_24bit "aplay failed"; fi
ktap_end
