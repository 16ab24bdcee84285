# Waiting without hanging: every wait has a deadline.
# uptime_cs: the guest's uptime in centiseconds.
uptime_cs() {
    read -r _up _ </proc/uptime
    _frac=${_up#*.}
    echo $((${_up%.*} * 100 + ${_frac#0}))
}
# wait_until SECONDS COMMAND...: true as soon as COMMAND succeeds, false once SECONDS have passed
# (by the clock, so a slow COMMAND, e.g. a backend request, cannot stretch the bound).
wait_until() {
    local _end
    _end=$(($(uptime_cs) + $1 * 100)); shift
    while :; do
        "$@" && return 0
        [ "$(uptime_cs)" -lt "$_end" ] || return 1
        sleep 0.1
    done
}
# has_open PID FILE: process PID, or a child of it, has FILE open (a background reader of an
# input device has opened it, so the events that follow reach it).
has_open() {
    for _p in /proc/[0-9]*; do
        [ "$_p" = "/proc/$1" ] || grep -q "^PPid:[[:space:]]*$1\$" "$_p/status" 2>/dev/null || continue
        for _fd in "$_p"/fd/*; do
            [ "$(readlink "$_fd" 2>/dev/null)" = "$2" ] && return 0
        done
    done
    return 1
}
