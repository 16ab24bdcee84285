# selftest-hung-task: LKDTM parks a task in D state; the hung-task detector must report it
# (timeout lowered to 2 s here) and the host must report the run as failed.
modprobe lkdtm || exit 1
echo 2 > /proc/sys/kernel/hung_task_timeout_secs
echo HUNG_TASK > /sys/kernel/debug/provoke-crash/DIRECT &
sleep 8 # the subject: the task stays blocked while the detector (2 s timeout, 2 s checks) reports it
echo "KTAP version 1"
echo "1..1"
echo "ok 1 provoked_hung_task"
