# selftest-lockdep: a fixture module takes two mutexes in both orders; lockdep must report a
# circular dependency and the host must report the run as failed.
modprobe sideband_lockdep_abba || exit 1
echo "KTAP version 1"
echo "1..1"
echo "ok 1 provoked_lockdep_report"
