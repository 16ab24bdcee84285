# Kernel log checks shared by scenarios.
# Lines that mean the kernel found a bug: WARN/BUG/Oops, lockdep reports, hung tasks, KASAN, atomic sleep.
# Keep in step with backend/src/vm/detect.rs, which applies the same rules to the console.
DMESG_BAD='\] WARNING:|BUG:|Oops|Unable to handle kernel|possible recursive locking|possible circular locking|inconsistent lock state|suspicious RCU usage|bad unlock balance|DEBUG_LOCKS_WARN_ON|blocked for more than|KASAN|sleeping function called from invalid context|Kernel panic|soft lockup|workqueue lockup'
# dmesg_bad_lines: prints the kernel log lines that match (nothing when the log is clean).
dmesg_bad_lines() {
    dmesg | grep -E "$DMESG_BAD" | head -20
}
# ktap_dmesg_clean: one KTAP case, dmesg_clean, failing with the bad lines (needs lib/ktap.sh).
ktap_dmesg_clean() {
    _bad=$(dmesg_bad_lines)
    if [ -z "$_bad" ]; then ktap_ok dmesg_clean; else ktap_fail dmesg_clean "$_bad"; fi
}
