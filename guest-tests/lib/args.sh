# arg NAME DEFAULT: the value of sideband.NAME= on the kernel command line (`sideband test
# --append sideband.NAME=VALUE` sets it), or DEFAULT.
arg() {
    for _w in $(cat /proc/cmdline); do
        case "$_w" in "sideband.$1="*) echo "${_w#*=}"; return;; esac
    done
    echo "$2"
}
