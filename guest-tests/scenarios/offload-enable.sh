# offload-enable: the ADSP asks the offload driver for the headset's playback stream over QMI
# (through qrtr-tun); the backend checks the answer (every IOVA maps through the SMMU to the
# xHCI address the driver reported). While the DSP holds the stream, the guest's own PCM is
# busy; after the disable it is free again.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/headset.sh
. /guest-tests/lib/dmesg.sh

play_briefly() { sb-pattern 4800 | aplay -q -D "hw:$card,0" -t raw -f S16_LE -r 48000 -c 2 2>&1; }
pcm_busy() { play_briefly | grep -qi busy; }
pcm_free() { play_briefly >/dev/null; }

card=""
ktap_begin 4
if wait_until 20 find_card; then ktap_ok headset_card; else ktap_fail headset_card "no ALSA card with usbid 1209:0001"; fi
if wait_until 20 offload_ready; then ktap_ok offload_ready
else ktap_fail offload_ready "no USB Offload controls on card $card"; fi
echo "SIDEBAND-CTL stream-enable card=$card pcm=0 dir=playback rate=48000 bits=16 ch=2"
if wait_until 20 pcm_busy; then ktap_ok pcm_busy_while_offloaded
else ktap_fail pcm_busy_while_offloaded "hw:$card,0 still opens while the DSP should own it"; fi
echo "SIDEBAND-CTL stream-disable"
if wait_until 20 pcm_free; then ktap_ok pcm_free_after_disable
else ktap_fail pcm_free_after_disable "hw:$card,0 stays busy after the disable"; fi
bad=$(dmesg_bad_lines)
[ -z "$bad" ] || echo "# dmesg: $bad"
ktap_end
