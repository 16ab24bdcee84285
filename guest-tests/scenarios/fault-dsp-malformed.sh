# fault-dsp-malformed: a buggy DSP sends broken stream requests, each from a clean state (no
# stream): an unknown message id, a header length 16 bytes longer than the payload, a last TLV
# claiming 4 bytes more than the message holds, and an enable without its mandatory enable TLV.
# The guest's UAUDIO service must refuse each (no answer, or a failure status), log nothing
# alarming, and still enable a good stream bit-exactly.
# known-failure: stock, fixture, kasan: the guest's QMI layer takes a request whose last TLV claims more bytes than the message holds (qmi_decode reads the element's own size and ignores the TLV length) and grants the stream; a header msg_len larger than the payload is not checked either
#   evidence: ktap refused_tlv-overrun accepted: tlv-overrun request
#   evidence: ktap refused_header-length accepted: header-length request
. /guest-tests/lib/offload.sh
. /guest-tests/lib/dmesg.sh
ktap_begin 7
if wait_for_headset 20; then ktap_ok headset_ready
else ktap_fail headset_ready "no headset card with offload controls"; fi
refused() {
    sbctl dsp-raw "$1" card=$card $OFFLOAD_FORMAT || { echo "# $SB_ANSWER"; return 1; }
    _what=$SB_ANSWER
    echo "# $_what"
    # Back to a clean state whatever the guest did with it.
    sbctl dsp-raw disable card=$card $OFFLOAD_FORMAT >/dev/null
    SB_ANSWER=$_what
    case "$_what" in
        *"answered, status 0,"*) SB_ANSWER="accepted: $_what"; return 1 ;;
        *"no answer"* | *answered*) return 0 ;;
    esac
    return 1
}
for kind in unknown-message header-length tlv-overrun no-enable; do
    if refused $kind; then ktap_ok "refused_$kind"; else ktap_fail "refused_$kind" "$SB_ANSWER"; fi
done
ktap_new_stream_exact
ktap_dmesg_clean
ktap_end
