# Faults at an exact kernel function, armed from the guest (sideband's TCG plugin, README
# "Faults at a kernel function"). For functions System.map does not have (modules), or when the
# scenario itself decides when the trigger becomes live.
#
# at_addr FUNC: ADDR-END of FUNC from /proc/kallsyms (built-in or module; END = the next symbol).
at_addr() {
    sort /proc/kallsyms | awk -v f="$1" '
        found { if ($1 != a) { print a "-" $1; exit } next }
        $3 == f && ($2 == "t" || $2 == "T") { a = $1; found = 1 }'
}

# at_arm TRIGGER [REQUEST...]: TRIGGER is FUNC[:return][+N][@OUTER]. When the guest executes FUNC
# (its N-th entry, or return; with @OUTER counting only while OUTER is on the same kernel stack),
# the plugin holds that vCPU and the backend runs REQUEST (a SIDEBAND-CTL request such as
# `unplug 1`) before the vCPU goes on. False when a function is not in kallsyms.
at_arm() {
    _t=$1; shift
    _f=${_t%%[/:+@]*}
    _r=$(at_addr "$_f")
    if [ -z "$_r" ]; then echo "# at_arm: $_f is not in /proc/kallsyms"; return 1; fi
    case "$_t" in
        *@*)
            _o=$(at_addr "${_t#*@}")
            if [ -z "$_o" ]; then echo "# at_arm: ${_t#*@} is not in /proc/kallsyms"; return 1; fi
            _r="$_r $_o" ;;
    esac
    echo "SIDEBAND-CTL at-arm $_t $_r $*"
    # The backend arms the plugin while it reads this line; give it that moment.
    sleep 1
}
