# fault-unplug: while the DSP streams, the backend unplugs the headset (a physical disconnect:
# the device is NOTATTACHED before the driver's disconnect runs, §5d), then plugs it back.
. /guest-tests/lib/offload.sh
ktap_begin 8
ktap_offload_started
ktap_ask unplugged unplug 1
ktap_indication_answered
ktap_dsp_released
gone() { [ ! -e /sys/bus/usb/devices/1-1 ]; }
if wait_until 30 gone; then ktap_ok headset_removed; else ktap_fail headset_removed "1-1 still present"; fi
sbctl plug 1
ktap_headset_back
ktap_new_stream_exact
ktap_end
