# offload-unplug: with a stream enabled by the DSP, the backend unplugs the headset. The guest's
# offload driver must send the DISCONNECT indication (and wait for the DSP's disable); the
# backend decodes it and the DSP answers with the disable. The headset comes back afterwards.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh

card=""
ktap_begin 3
if wait_for_headset 20; then
    ktap_ok headset_ready
else
    ktap_fail headset_ready "no headset card with offload controls"
fi
# A card that does not exist: the driver refuses, and the backend says how.
echo "SIDEBAND-CTL ! stream-enable card=7 pcm=0 dir=playback rate=48000 bits=16 ch=2"
echo "SIDEBAND-CTL stream-enable card=$card pcm=0 dir=playback rate=48000 bits=16 ch=2"
echo "SIDEBAND-CTL unplug 1"
echo "SIDEBAND-CTL expect-indication"
gone() { [ ! -e /sys/bus/usb/devices/1-1 ]; }
if wait_until 30 gone; then ktap_ok headset_unplugged; else ktap_fail headset_unplugged "1-1 still present"; fi
echo "SIDEBAND-CTL plug 1"
if wait_until 30 find_card; then ktap_ok headset_back; else ktap_fail headset_back "no headset card after the replug"; fi
ktap_end
