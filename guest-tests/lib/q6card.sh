# The Qualcomm platform card on the DSP's APR services (scenarios with `# adsp-apr: q6-card`, kernel
# variants q6 and q6-fixes).
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/wait.sh
. /guest-tests/lib/ctl.sh
. /guest-tests/lib/headset.sh

q6card=""
# q6card_begin "CASE...": KTAP plan for the cases; on a kernel without the sm8250 machine driver
# every case is skipped and the scenario ends here. Then waits (bounded) for the headset's card.
q6card_begin() {
    set -- $1
    ktap_begin $#
    if ! q6card_available; then
        for _c in "$@"; do ktap_skip "$_c" "this kernel has no snd-soc-sm8250 (boot --kernel 7.3+q6)"; done
        ktap_end
        exit 0
    fi
    card=""
    wait_until 20 find_card || echo "# no USB headset card (usbid 1209:0001)"
}
# q6card_ready CASE: one KTAP case: the card is up and MultiMedia1 is routed to the USB back end.
q6card_ready() {
    if q6card_load && q6card_route; then ktap_ok "$1"
    else ktap_fail "$1" "no sideband-q6 card with MultiMedia1 routed to USB_RX: $(tr '\n' ' ' </proc/asound/cards)"; fi
}
# q6card_play_background SAMPLES: aplay plays SAMPLES of the counter pattern (48 kHz S16 stereo)
# on MultiMedia1 in the background ($aplay_pid; its output in /tmp/aplay.log); waits (bounded)
# until the DSP streams; one KTAP case, aplay_stream_started.
q6card_play_background() {
    sb-pattern "$1" > /tmp/pattern.raw
    aplay -D "hw:${q6card:-99},0" -f S16_LE -r 48000 -c 2 -t raw /tmp/pattern.raw >/tmp/aplay.log 2>&1 &
    aplay_pid=$!
    if wait_until 15 sbctl expect-streaming; then ktap_ok aplay_stream_started
    else ktap_fail aplay_stream_started "the DSP's stream did not start for aplay: $SB_ANSWER"; fi
}
# q6card_play SAMPLES: aplay plays SAMPLES of the counter pattern on MultiMedia1 (bounded: 30 s).
q6card_play() {
    sb-pattern "$1" > /tmp/pattern.raw
    timeout 30 aplay -D "hw:${q6card:-99},0" -f S16_LE -r 48000 -c 2 -t raw /tmp/pattern.raw 2>&1 | sed 's/^/# aplay: /'
}
# q6card_aplay_ended CASE: one KTAP case: the background aplay ended within 20 s (else killed).
q6card_aplay_ended() {
    if wait_until 20 _q6card_aplay_gone; then ktap_ok "$1"
    else ktap_fail "$1" "aplay still runs after 20 s: $(cat /proc/$aplay_pid/wchan 2>/dev/null)"; kill -9 "$aplay_pid" 2>/dev/null; fi
    sed 's/^/# aplay: /' /tmp/aplay.log
}
_q6card_aplay_gone() { ! kill -0 "$aplay_pid" 2>/dev/null; }
# q6card_available: true when this kernel has the sm8250 machine driver.
q6card_available() { [ -n "$(find /lib/modules/"$(uname -r)" -name "snd-soc-sm8250.ko*" 2>/dev/null)" ]; }
# q6card_load: loads GLINK, APR, the Q6 drivers and the machine driver; true once the card is
# registered ($q6card is its index).
q6card_load() {
    for _m in qcom-apcs-ipc-mailbox qcom_glink_rpm apr q6core q6afe q6afe-dai q6asm q6asm-dai q6adm q6routing snd-soc-sm8250; do
        modprobe "$_m" || echo "# modprobe $_m failed"
    done
    wait_until 20 q6card_find
}
q6card_find() { q6card=$(awk '/sideband-q6/ { print $1; exit }' /proc/asound/cards); [ -n "$q6card" ]; }
# q6card_route: routes MultiMedia1 to the USB back end; true when it reads back on.
q6card_route() {
    amixer -q -c "${q6card:-99}" cset name='USB_RX Audio Mixer MultiMedia1' 1 \
        && amixer -c "${q6card:-99}" cget name='USB_RX Audio Mixer MultiMedia1' | grep -q ': values=on'
}
# q6card_jack: prints the USB offload jack's value (on/off).
q6card_jack() {
    amixer -c "${q6card:-99}" cget iface=CARD,name='USB Offload Jack' 2>/dev/null \
        | sed -n 's/.*: values=\(o[nf]*\).*/\1/p'
}
# q6card_afe_starts: the DSP's count of AFE USB port starts (from the backend's stats).
q6card_afe_starts() {
    sbctl stats >/dev/null
    echo "$SB_ANSWER" | sed -n 's/.*"afe_starts":\([0-9]*\).*/\1/p'
}
