# selftest-kmsg: writes one canned kernel report line of the kind `sideband.kmsg=KIND` names
# (a console detector's name: rcu-stall, xhci-error, refcount, ...) to /dev/kmsg at error level;
# the host must fail the run with that kind and quote the line. `sideband.kmsg=info` (the
# default) writes an ordinary informational line instead, which must not fail the run.
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/args.sh
. /guest-tests/lib/dmesg.sh
KIND=$(arg kmsg info)
LEVEL=3
case "$KIND" in
info) LEVEL=6; LINE='sideband selftest-kmsg: an ordinary informational line, not a kernel report' ;;
warning) LINE='WARNING: drivers/usb/host/xhci-sideband.c:100 at xhci_sideband_remove_endpoint+0x3c/0x70, CPU#1: kworker/1:2/57' ;;
lockdep) LINE='WARNING: possible circular locking dependency detected' ;;
hung-task) LINE='INFO: task kworker/0:1:40 blocked for more than 15 seconds.' ;;
bug) LINE='BUG: scheduling while atomic: kworker/0:1/40/0x00000002' ;;
kasan) LINE='BUG: KASAN: slab-out-of-bounds in qmi_decode_basic_elem+0x4c/0xa8' ;;
atomic-sleep) LINE='BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580' ;;
soft-lockup) LINE='watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [kworker/0:1:40]' ;;
workqueue-lockup) LINE='BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!' ;;
oops) LINE='Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008' ;;
rcu-stall) LINE='rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:' ;;
xhci-error) LINE='xhci_hcd 0000:00:03.0: ERROR Transfer event for disabled endpoint slot 1 ep 2' ;;
usb-enum-error) LINE='usb 1-1: device descriptor read/64, error -71' ;;
refcount) LINE='refcount_t: underflow; use-after-free.' ;;
list-corruption) LINE='list_del corruption, ffff000004f8a0c8->next is LIST_POISON1 (dead000000000100)' ;;
ubsan) LINE='UBSAN: array-index-out-of-bounds in sound/usb/qcom/qc_audio_offload.c:812:23' ;;
initramfs) LINE='Initramfs unpacking failed: no cpio magic' ;;
*) LINE= ;;
esac
ktap_begin 4
ktap_check known_kind "no canned line for sideband.kmsg=$KIND" test -n "$LINE"
echo "# sideband.kmsg=$KIND: <$LEVEL>$LINE"
if [ -n "$LINE" ] && printf '<%s>%s\n' "$LEVEL" "$LINE" >/dev/kmsg; then
    ktap_ok kmsg_written
else
    ktap_fail kmsg_written "cannot write the line to /dev/kmsg"
fi
in_log() { dmesg | grep -qF -- "$LINE"; }
ktap_check line_in_kernel_log "the line is not in dmesg" in_log
# The guest's own check (lib/dmesg.sh) must agree with the host's detectors: it flags the report
# line, and leaves the informational one alone.
flagged() { dmesg_bad_lines | grep -qF -- "$LINE"; }
if [ -z "$LINE" ]; then
    ktap_fail guest_check_agrees "nothing written"
elif [ "$KIND" = info ]; then
    if flagged; then ktap_fail guest_check_agrees "lib/dmesg.sh flags the informational line"; else ktap_ok guest_check_agrees; fi
else
    if flagged; then ktap_ok guest_check_agrees; else ktap_fail guest_check_agrees "lib/dmesg.sh does not flag the $KIND line"; fi
fi
ktap_end
