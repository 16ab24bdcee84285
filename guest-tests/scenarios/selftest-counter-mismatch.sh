# selftest-counter-mismatch: plays 48000 counter samples but asks the backend to find 48001;
# the backend's check must fail the scenario.
card=""
for i in $(seq 1 200); do
    for c in /proc/asound/card*; do
        [ "$(cat "$c/usbid" 2>/dev/null)" = 1209:0001 ] && card=${c#/proc/asound/card}
    done
    [ -n "$card" ] && break
    sleep 0.1
done
sb-pattern 48000 | aplay -q -D "hw:${card:-99},0" -t raw -f S16_LE -r 48000 -c 2
echo "SIDEBAND-CTL check-counter 48001"
echo "KTAP version 1"
echo "1..1"
echo "ok 1 played"
