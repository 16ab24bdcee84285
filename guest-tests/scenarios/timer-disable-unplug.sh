# timer-disable-unplug: the same race as at-disable-unplug, with the unplug on a timer instead of
# at a kernel function: the backend unplugs the headset sideband.delay ms (default: random, 0-29)
# after the scenario asks, and the DSP's disable goes out right after. Whether the fixture kernel
# deadlocks depends on where the timer lands; `sideband test timer-disable-unplug --kernel
# 7.3+fixture` run many times measures how often a timer hits the window.
# known-race: fixture: depends on the delay (not measured): deadlocks when the timer lands in the window between the release's state check and usb_offload_put's device lock
#   evidence: report hung-task usb_offload_put
. /guest-tests/lib/offload.sh
. /guest-tests/lib/args.sh
ktap_begin 6
ktap_offload_started
pin_race_cpus || echo "# could not pin the worker and the xHCI interrupt to different CPUs"
DELAY=$(arg delay $((RANDOM % 30)))
echo "# unplug timer: $DELAY ms"
sbctl unplug-after "$DELAY" 1
sbctl stream-disable
echo "# stream-disable: $SB_ANSWER"
gone() { [ ! -e /sys/bus/usb/devices/1-1 ]; }
if wait_until 30 gone; then ktap_ok headset_removed; else ktap_fail headset_removed "1-1 still present"; fi
ktap_dsp_released
sbctl plug 1
ktap_headset_back
ktap_new_stream_exact
ktap_end
