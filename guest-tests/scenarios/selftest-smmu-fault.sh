# selftest-smmu-fault: a broken DSP keeps streaming through an unplug and never answers the
# DISCONNECT indication; after its 10 s wait the driver unmaps the rings, and the DSP's next
# access faults in its SMMU. The guest sees nothing wrong, so every case here passes: the run
# must still fail, on the devices' judgement (smmu-fault) alone.
. /guest-tests/lib/offload.sh
ktap_begin 5
ktap_offload_started
sbctl dsp-on-indication keep-streaming
ktap_ask unplugged unplug 1
gone() { [ ! -e /sys/bus/usb/devices/1-1 ]; }
if wait_until 30 gone; then ktap_ok disconnect_completed
else ktap_fail disconnect_completed "1-1 still present after 30 s"; fi
faulted() { sbctl stats && case "$SB_ANSWER" in *'"smmu_faults":0'*) false ;; *'"smmu_faults":'*) true ;; *) false ;; esac; }
if wait_until 20 faulted; then echo "# $SB_ANSWER"; ktap_ok dsp_faulted
else ktap_fail dsp_faulted "no SMMU fault by the DSP within 20 s: $SB_ANSWER"; fi
ktap_end
