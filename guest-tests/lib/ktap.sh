# KTAP helpers for guest scenarios (https://docs.kernel.org/dev-tools/ktap.html).
# Usage: . /guest-tests/lib/ktap.sh; ktap_begin N; ktap_ok NAME; ktap_fail NAME REASON; ktap_end
KTAP_N=0
KTAP_FAILED=0
ktap_begin() { echo "KTAP version 1"; echo "1..$1"; }
ktap_ok() { KTAP_N=$((KTAP_N + 1)); echo "ok $KTAP_N $1"; }
ktap_fail() {
    KTAP_N=$((KTAP_N + 1)); KTAP_FAILED=$((KTAP_FAILED + 1))
    echo "# $1: $2"
    echo "not ok $KTAP_N $1"
}
ktap_skip() { KTAP_N=$((KTAP_N + 1)); echo "ok $KTAP_N $1 # SKIP $2"; }
# ktap_check NAME REASON COMMAND...: ok when COMMAND succeeds.
ktap_check() {
    local name=$1 reason=$2; shift 2
    if "$@" >/dev/null 2>&1; then ktap_ok "$name"; else ktap_fail "$name" "$reason"; fi
}
ktap_end() { [ "$KTAP_FAILED" = 0 ]; }
