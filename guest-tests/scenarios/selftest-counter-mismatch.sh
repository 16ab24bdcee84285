# selftest-counter-mismatch: plays 48000 counter samples but asks the backend to find 48001;
# the backend's check must fail the scenario.
. /guest-tests/lib/headset.sh
card=""
wait_until 20 find_card
sb-pattern 48000 | aplay -q -D "hw:${card:-99},0" -t raw -f S16_LE -r 48000 -c 2
echo "SIDEBAND-CTL check-counter 48001"
echo "KTAP version 1"
echo "1..1"
echo "ok 1 played"
