# fault-rmmod-offload: while the DSP streams, the offload driver (snd-usb-audio-qmi) is unloaded.
# Its exit must tear the stream down through the DSP and leave nothing mapped; loaded again, it
# serves a new stream.
. /guest-tests/lib/offload.sh
ktap_begin 6
ktap_offload_started
if out=$(rmmod snd_usb_audio_qmi 2>&1); then ktap_ok module_removed; else ktap_fail module_removed "$out"; fi
ktap_dsp_released
modprobe snd-usb-audio-qmi
# The offload driver takes existing cards only when they are probed again: re-enumerate.
echo 0 > /sys/bus/usb/devices/1-1/authorized; echo 1 > /sys/bus/usb/devices/1-1/authorized
ktap_headset_back
ktap_new_stream_exact
ktap_end
