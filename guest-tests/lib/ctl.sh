# Asking the backend and waiting for its answer (the backend types it on the console's input).
# sbctl REQUEST...: prints "SIDEBAND-ASK REQUEST", waits (bounded, SB_CTL_TIMEOUT seconds, default
# 90) for the answer line; the answer's text is in $SB_ANSWER. True when the backend says ok.
# Answers are typed on the console, so nothing else in a scenario may read standard input.
SB_ANSWER=""
sbctl() {
    echo "SIDEBAND-ASK $*" >&2
    while read -t "${SB_CTL_TIMEOUT:-90}" -r _sb_mark _sb_status _sb_text; do
        case "$_sb_mark" in *SIDEBAND-ANSWER) ;; *) continue ;; esac
        SB_ANSWER="$_sb_text"
        [ "$_sb_status" = ok ]
        return
    done
    SB_ANSWER="no answer from the backend within ${SB_CTL_TIMEOUT:-90}s"
    return 2
}
# ktap_ask NAME REQUEST...: one KTAP case for one request; the answer is the diagnostic.
ktap_ask() {
    _sb_name=$1; shift
    if sbctl "$@"; then echo "# $_sb_name: $SB_ANSWER"; ktap_ok "$_sb_name"
    else ktap_fail "$_sb_name" "$SB_ANSWER"; fi
}
