# offload-capture: the ADSP enables the headset's capture stream over QMI and captures itself:
# isochronous IN TDs on the handed-over ring, data read back from the transfer buffer through
# the SMMU. The headset's counter source must arrive unbroken (checked by the backend).
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh

card=""
ktap_begin 2
if wait_for_headset 20; then ktap_ok headset_ready; else ktap_fail headset_ready "no headset card with offload controls"; fi
echo "SIDEBAND-CTL stream-enable card=$card pcm=0 dir=capture rate=48000 bits=16 ch=2"
echo "SIDEBAND-CTL stream-capture 96000"
echo "SIDEBAND-CTL stream-disable"
capture_briefly() { arecord -q -D "hw:$card,0" -t raw -f S16_LE -r 48000 -c 2 -s 480 >/dev/null 2>&1; }
sleep 4
if wait_until 30 capture_briefly; then ktap_ok capture_released; else ktap_fail capture_released "hw:$card,0 capture stayed busy"; fi
ktap_end
