# selftest-stuck: asks the backend for a request that never returns, as a lock-order deadlock in
# the backend would; the console loop cannot notice, so the boot watchdog must end the run with
# "the backend is stuck" (exit 1) soon after the boot's deadlines, not hang the job.
. /guest-tests/lib/ktap.sh
ktap_begin 1
echo "SIDEBAND-CTL selftest-stuck"
sleep 600
ktap_fail backend_stuck "the watchdog did not end the run"
ktap_end
