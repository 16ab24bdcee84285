# selftest-backend-panic: asks the backend's bus clock to panic while it holds the controller's
# lock; the run must end at once with the panic's text as its reason, not as a later timeout.
. /guest-tests/lib/ctl.sh
. /guest-tests/lib/ktap.sh
ktap_begin 2
ktap_ask panic_requested selftest-panic
# The backend ends the run within a second; this wait only bounds a backend that did not.
SB_CTL_TIMEOUT=120 sbctl stats
ktap_fail backend_still_running "the backend still answers after selftest-panic"
ktap_end
