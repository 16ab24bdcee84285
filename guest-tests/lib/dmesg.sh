# Kernel log checks shared by scenarios.
# Lines that mean the kernel found a bug: WARN/BUG/Oops, lockdep reports, hung tasks, KASAN, atomic
# sleep, RCU stalls, the xHCI driver's own errors, USB enumeration errors, refcount_t and list
# corruption reports, UBSAN, a damaged initramfs.
# Keep in step with backend/src/vm/detect.rs, which applies the same rules to the console (one
# variable per report kind there, named after it; DMESG_BAD is all of them).
DMESG_PANIC='Kernel panic'
DMESG_OOPS='Oops|Unable to handle kernel'
DMESG_BUG='BUG:|kernel BUG at'
DMESG_WARNING='\] WARNING:'
DMESG_LOCKDEP='possible recursive locking|possible circular locking|inconsistent lock state|suspicious RCU usage|bad unlock balance|DEBUG_LOCKS_WARN_ON'
DMESG_HUNG_TASK='blocked for more than'
DMESG_KASAN='KASAN'
DMESG_ATOMIC_SLEEP='sleeping function called from invalid context'
DMESG_SOFT_LOCKUP='soft lockup'
DMESG_WORKQUEUE_LOCKUP='workqueue lockup'
DMESG_RCU_STALL='INFO: rcu.* stall'
DMESG_XHCI_ERROR='xhci[-_]hcd [^ ]+: (ERROR|ERR:|WARN|Setup ERROR|HC died|Host System Error|Host Controller Error|xHCI host (controller )?not responding|xHC is not running|Host halt failed|Host controller not halted|Host took too long to start|Host controller not accessible|Host not accessible|Abort failed to stop command ring|Can.t queue command, xHC not accessible|Controller not ready at resume|xHC error in resume|Timeout while waiting for|Timeout waiting for reset device command|Event TRB for slot|Mismatch between completed Set TR Deq Ptr command|Ring is an endless link TRB loop|Missing link TRB|Unknown completion code|Error while assigning device slot ID)'
DMESG_USB_ENUM_ERROR='(usb|hub) [^ ]+: (device descriptor read/|device not accepting address|unable to enumerate USB device|can.t set config #|can.t read configurations|unable to read config index|Cannot enable\. Maybe the USB cable is bad|Device not responding to setup address)'
DMESG_REFCOUNT='refcount_t: '
DMESG_LIST_CORRUPTION='list_(add|del) corruption|list_add double add'
DMESG_UBSAN='UBSAN: '
DMESG_INITRAMFS='Initramfs unpacking failed'
DMESG_BAD="$DMESG_PANIC|$DMESG_OOPS|$DMESG_BUG|$DMESG_WARNING|$DMESG_LOCKDEP|$DMESG_HUNG_TASK|$DMESG_KASAN|$DMESG_ATOMIC_SLEEP|$DMESG_SOFT_LOCKUP|$DMESG_WORKQUEUE_LOCKUP|$DMESG_RCU_STALL|$DMESG_XHCI_ERROR|$DMESG_USB_ENUM_ERROR|$DMESG_REFCOUNT|$DMESG_LIST_CORRUPTION|$DMESG_UBSAN|$DMESG_INITRAMFS"
# dmesg_kind_ere KIND: the lines of one report kind (the names of detect.rs: xhci-error, ...).
dmesg_kind_ere() {
    _v=DMESG_$(echo "$1" | sed 'y/abcdefghijklmnopqrstuvwxyz-/ABCDEFGHIJKLMNOPQRSTUVWXYZ_/')
    eval "echo \"\${$_v}\""
}
# dmesg_expected [ERE]: the lines the running scenario provokes on purpose, as one extended
# regex: ERE, and each `# expect-report: KIND [REGEX]` line of the scenario's header ($0): its
# REGEX (which must then be a POSIX ERE too), or without one every line of KIND. Empty if none.
dmesg_expected() {
    _exp=$1
    if [ -f "$0" ]; then
        _hdr=$(sed -n '/^#/!q; s/^#[[:space:]]*expect-report:[[:space:]]*//p' "$0")
        while read -r _kind _re; do
            [ -n "$_kind" ] || continue
            [ -n "$_re" ] || _re=$(dmesg_kind_ere "$_kind")
            [ -n "$_re" ] && _exp="${_exp:+$_exp|}$_re"
        done <<EOF
$_hdr
EOF
    fi
    echo "$_exp"
}
# dmesg_bad_lines [ERE]: prints the kernel log lines that match (nothing when the log is clean),
# leaving out the lines the scenario expects (see dmesg_expected).
dmesg_bad_lines() {
    _expected=$(dmesg_expected "$1")
    if [ -n "$_expected" ]; then
        dmesg | grep -E "$DMESG_BAD" | grep -vE "$_expected" | head -20
    else
        dmesg | grep -E "$DMESG_BAD" | head -20
    fi
}
# ktap_dmesg_clean [ERE]: one KTAP case, dmesg_clean, failing with the bad lines (needs
# lib/ktap.sh). ERE: lines this scenario expects (e.g. 'HC died|Host System Error'), on top of
# its header's `# expect-report:` lines.
ktap_dmesg_clean() {
    _bad=$(dmesg_bad_lines "$1")
    if [ -z "$_bad" ]; then ktap_ok dmesg_clean; else ktap_fail dmesg_clean "$_bad"; fi
}
