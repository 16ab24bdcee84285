# capture: ordinary (not offloaded) capture through snd-usb-audio: arecord takes one second of
# the headset's counter source, which must arrive without a missing or changed sample.
# known-race: stock, fixture, kasan: 2 in 30: snd-usb-audio's retire_capture_urb moves hwptr_done past a packet before it copies the packet into the ring buffer, so a reader on another CPU can take the chunk unwritten (zeros just after a period boundary); never with variant snd-usb-fixes
#   evidence: ktap capture_counter_bit_exact break at sample
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh

card=""
wait_until 20 find_card
ktap_begin 3
if [ -n "$card" ]; then ktap_ok headset_card; else ktap_fail headset_card "no ALSA card with usbid 1209:0001"; fi
grep -q "Capture:" "/proc/asound/card${card:-99}/stream0" 2>/dev/null && ktap_ok capture_stream_listed \
    || ktap_fail capture_stream_listed "no Capture section in /proc/asound/card${card:-99}/stream0"
# 48000 frames of stereo = 96000 samples.
ktap_capture_exact
ktap_end
