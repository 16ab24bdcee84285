# selftest-fail: a scenario whose KTAP says "not ok"; the host must report it as failed.
. /guest-tests/lib/ktap.sh
ktap_begin 2
ktap_check always_passes "the KTAP library numbered a case before the first" [ "$KTAP_N" = 0 ]
ktap_fail always_fails "deliberate failure"
ktap_end
