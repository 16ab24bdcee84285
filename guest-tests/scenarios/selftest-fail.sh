# selftest-fail: a scenario whose KTAP says "not ok"; the host must report it as failed.
. /guest-tests/lib/ktap.sh
ktap_begin 2
ktap_ok always_passes
ktap_fail always_fails "deliberate failure"
ktap_end
