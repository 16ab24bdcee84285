# at-enable-unplug: the headset is unplugged exactly while the offload driver handles the DSP's
# stream-enable request. The scenario arms handle_uaudio_stream_req (snd-usb-audio-qmi.ko, address
# from /proc/kallsyms); the TCG plugin holds the vCPU at its first instruction until the backend
# has unplugged port 1, so the handler always runs against a device that is going away. What the
# driver answers is printed by the backend (`! stream-enable`: the enable must fail); the headset
# comes back on replug and the offload driver takes it again.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/at.sh

card=""
gone() { [ ! -e /sys/bus/usb/devices/1-1 ]; }
ktap_begin 4
if wait_for_headset 20; then ktap_ok headset_ready; else ktap_fail headset_ready "no headset card with offload controls"; fi
if at_arm handle_uaudio_stream_req+1 unplug 1; then ktap_ok trigger_armed
else ktap_fail trigger_armed "handle_uaudio_stream_req not in /proc/kallsyms"; fi
echo "SIDEBAND-CTL ! stream-enable card=$card pcm=0 dir=playback rate=48000 bits=16 ch=2"
if wait_until 30 gone; then ktap_ok headset_unplugged; else ktap_fail headset_unplugged "1-1 still present"; fi
echo "SIDEBAND-CTL plug 1"
if wait_for_headset 30; then ktap_ok headset_back; else ktap_fail headset_back "no headset with offload controls after the replug"; fi
ktap_end
