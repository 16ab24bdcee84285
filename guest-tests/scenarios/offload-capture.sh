# offload-capture: the ADSP enables the headset's capture stream over QMI and captures itself:
# isochronous IN TDs on the handed-over ring, data read back from the transfer buffer through
# the SMMU. The headset's counter source must arrive unbroken (checked by the backend).
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/ctl.sh

card=""
ktap_begin 2
if wait_for_headset 20; then ktap_ok headset_ready; else ktap_fail headset_ready "no headset card with offload controls"; fi
echo "SIDEBAND-CTL stream-enable card=$card pcm=0 dir=capture rate=48000 bits=16 ch=2"
echo "SIDEBAND-CTL stream-capture 96000"
echo "SIDEBAND-CTL stream-disable"
capture_briefly() { arecord -q -D "hw:$card,0" -t raw -f S16_LE -r 48000 -c 2 -s 480 >/dev/null 2>&1; }
# The backend runs the requests in order (a failed one fails the run): the answer to this asked
# one comes once the capture is done and disabled (bounded); then the PCM is free again.
if SB_CTL_TIMEOUT=60 sbctl stats && wait_until 30 capture_briefly; then ktap_ok capture_released
else ktap_fail capture_released "hw:$card,0 capture stayed busy or the backend did not answer: $SB_ANSWER"; fi
ktap_end
