# selftest-panic: LKDTM panics the kernel; the host must report a panic.
modprobe lkdtm || exit 1
echo PANIC > /sys/kernel/debug/provoke-crash/DIRECT
