# mixer: the guest's mixer controls reach the headset: mute and volume set with amixer are the
# values the device model holds (the backend checks them).
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh

card=""
wait_until 20 find_card
ktap_begin 3
if [ -n "$card" ]; then ktap_ok headset_card; else ktap_fail headset_card "no ALSA card with usbid 1209:0001"; fi
amixer -q -c "${card:-99}" cset name='PCM Playback Switch' off && echo "SIDEBAND-CTL expect-headset mute=1" \
    && ktap_ok mute_set || ktap_fail mute_set "amixer could not switch PCM Playback off"
# The volume control's raw range is the device's (1/256 dB units, as UAC2 reports them).
amixer -c "${card:-99}" cget name='PCM Playback Volume' | sed 's/^/# /'
amixer -q -c "${card:-99}" cset name='PCM Playback Switch' on
amixer -q -c "${card:-99}" sset PCM -- -6dB && echo "SIDEBAND-CTL expect-headset mute=0 volume=-6" \
    && ktap_ok volume_set || ktap_fail volume_set "amixer could not set PCM to -6 dB"
amixer -c "${card:-99}" sget PCM | sed 's/^/# /'
ktap_end
