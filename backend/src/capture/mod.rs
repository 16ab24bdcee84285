//! A bus analyzer for the emulated xHCI: every transfer the model completes, offloaded
//! isochronous streams included, streamed to a Linux usbmon pcap file that Wireshark and tshark
//! decode (`usbmon`: the format; `writer`: the thread that writes it under a size cap).

pub mod usbmon;
pub mod writer;

pub use writer::{CaptureSummary, CaptureWriter};

/// Microseconds since 1970 now: the timestamp of the capture's bus time 0 is this minus the bus
/// time already elapsed.
pub fn epoch_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
