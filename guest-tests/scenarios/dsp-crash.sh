# dsp-crash: the DSP vanishes while it holds a stream (the backend drops the QRTR link, so the
# relay's qrtr-tun endpoint and DSP node 5 disappear from the guest) and comes back. The guest
# must stay healthy, announce UAUDIO to the new DSP, and (a known driver defect, guest-driver.md
# §5e: qmi_stop_session leaves the substream marked opened) refuse a new enable of the same
# substream with -EBUSY until the device is enumerated again.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh

card=""
ktap_begin 2
if wait_for_headset 20; then ktap_ok headset_ready; else ktap_fail headset_ready "no headset card with offload controls"; fi
echo "SIDEBAND-CTL stream-enable card=$card pcm=0 dir=playback rate=48000 bits=16 ch=2"
echo "SIDEBAND-CTL dsp-crash"
echo "SIDEBAND-CTL ! stream-enable card=$card pcm=0 dir=playback rate=48000 bits=16 ch=2"
sleep 8
ktap_ok guest_alive_after_dsp_crash
ktap_end
