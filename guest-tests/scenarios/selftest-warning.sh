# selftest-warning: LKDTM provokes a real kernel WARNING; the host must report it as a failure.
modprobe lkdtm || exit 1
echo WARNING > /sys/kernel/debug/provoke-crash/DIRECT
echo "KTAP version 1"
echo "1..1"
echo "ok 1 provoked_warning"
