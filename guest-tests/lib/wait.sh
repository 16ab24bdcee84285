# Waiting without hanging: every wait has a deadline.
# wait_until SECONDS COMMAND...: true as soon as COMMAND succeeds, false after SECONDS.
wait_until() {
    _t=$(($1 * 10)); shift
    while [ $_t -gt 0 ]; do "$@" && return 0; sleep 0.1; _t=$((_t - 1)); done
    return 1
}
