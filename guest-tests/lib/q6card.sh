# The Qualcomm platform card on the DSP's APR services (scenarios with `# adsp-apr: q6-card`, kernel
# variants q6 and q6-fixes).
. /guest-tests/lib/ktap.sh
. /guest-tests/lib/wait.sh
. /guest-tests/lib/ctl.sh
. /guest-tests/lib/headset.sh

q6card=""
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
