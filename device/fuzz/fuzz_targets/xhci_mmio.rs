//! MMIO writes, doorbells, ticks and hot-plug against an xHCI whose guest memory image the
//! fuzzer controls (`sideband_device::xhci::fuzz::run`). Any panic is a bug: the guest is
//! untrusted.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sideband_device::xhci::fuzz::run(data);
});
