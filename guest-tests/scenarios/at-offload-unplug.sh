# at-offload-unplug: a trigger on a module function. With a stream enabled by the DSP, the scenario
# arms the entry of qc_usb_audio_offload_disconnect (snd-usb-audio-qmi.ko: not in System.map, so
# its address comes from /proc/kallsyms) and then asks for the unplug. The TCG plugin holds the
# vCPU that enters the disconnect path until the backend has answered (no fault here: the hit is
# only reported, with the function, the hit, the vCPU and the guest time). The teardown then
# completes as in offload-unplug.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/at.sh

card=""
ktap_begin 4
if wait_for_headset 20; then
    ktap_ok headset_ready
else
    ktap_fail headset_ready "no headset card with offload controls"
fi
echo "SIDEBAND-CTL stream-enable card=$card pcm=0 dir=playback rate=48000 bits=16 ch=2"
if at_arm qc_usb_audio_offload_disconnect+1; then
    ktap_ok trigger_armed
else
    ktap_fail trigger_armed "qc_usb_audio_offload_disconnect not in /proc/kallsyms"
fi
echo "SIDEBAND-CTL unplug 1"
echo "SIDEBAND-CTL expect-indication"
gone() { [ ! -e /sys/bus/usb/devices/1-1 ]; }
if wait_until 30 gone; then ktap_ok headset_unplugged; else ktap_fail headset_unplugged "1-1 still present"; fi
echo "SIDEBAND-CTL plug 1"
if wait_until 30 find_card; then ktap_ok headset_back; else ktap_fail headset_back "no headset card after the replug"; fi
ktap_end
