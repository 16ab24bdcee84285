//! The capture file writer: the model's observer hands each transfer to a bounded channel (never
//! blocking the clock), a thread encodes it and streams it to disk, and stops writing at a byte
//! cap. Records that find the channel full or the cap reached are counted as dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use sideband_device::xhci::{TransferObserver, TransferRecord};

use super::usbmon;

/// Records waiting for the writer thread (a second of a 8 kHz stream and its control traffic).
const QUEUE: usize = 16_384;
/// How long the writer lets transfers gather before it writes them.
const BATCH: std::time::Duration = std::time::Duration::from_millis(20);

/// Live figures of a capture.
#[derive(Debug, Default)]
pub struct CaptureCounters {
    /// Transfers written.
    pub transfers: AtomicU64,
    /// Bytes in the file.
    pub bytes: AtomicU64,
    /// Transfers lost because the writer fell behind.
    pub dropped_queue: AtomicU64,
    /// Transfers not written because of the size cap.
    pub dropped_cap: AtomicU64,
}

/// What a finished capture holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureSummary {
    /// The file.
    pub path: PathBuf,
    /// Transfers written.
    pub transfers: u64,
    /// Bytes in the file.
    pub bytes: u64,
    /// Transfers lost (writer behind, or past the cap).
    pub dropped: u64,
    /// The first write error, if any.
    pub error: Option<String>,
}

impl std::fmt::Display for CaptureSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "capture: {} transfers, {} bytes, {} dropped -> {}",
            self.transfers,
            self.bytes,
            self.dropped,
            self.path.display()
        )?;
        if let Some(e) = &self.error {
            write!(f, " (error: {e})")?;
        }
        Ok(())
    }
}

/// The observer side: attach it to the controller.
#[derive(Debug)]
pub struct CaptureObserver {
    tx: SyncSender<TransferRecord>,
    counters: Arc<CaptureCounters>,
}

impl TransferObserver for CaptureObserver {
    fn transfer(&mut self, record: TransferRecord) {
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped_queue.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The writer thread; finishing waits for it once every observer is gone.
#[derive(Debug)]
pub struct CaptureWriter {
    path: PathBuf,
    counters: Arc<CaptureCounters>,
    thread: Option<JoinHandle<Option<String>>>,
}

impl CaptureWriter {
    /// Creates `path` (with the pcap header) and starts the writer with a cap of `cap` bytes.
    /// `epoch_us` is the wall-clock time of bus time 0.
    pub fn create(
        path: &Path,
        cap: u64,
        epoch_us: u64,
    ) -> std::io::Result<(Self, CaptureObserver)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(path)?);
        file.write_all(&usbmon::file_header())?;
        let counters = Arc::new(CaptureCounters::default());
        counters.bytes.store(24, Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("pcap-writer".into())
            .spawn(move || write_loop(rx, file, &c, cap, epoch_us))?;
        Ok((
            CaptureWriter {
                path: path.to_path_buf(),
                counters: counters.clone(),
                thread: Some(thread),
            },
            CaptureObserver { tx, counters },
        ))
    }

    /// Live figures.
    pub fn counters(&self) -> &CaptureCounters {
        &self.counters
    }

    /// Waits for the writer (the observer must have been dropped: detach it first) and flushes.
    pub fn finish(mut self) -> CaptureSummary {
        let error = self.thread.take().and_then(|t| {
            t.join()
                .unwrap_or(Some("the writer thread panicked".into()))
        });
        let c = &self.counters;
        CaptureSummary {
            path: self.path.clone(),
            transfers: c.transfers.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            dropped: c.dropped_queue.load(Ordering::Relaxed)
                + c.dropped_cap.load(Ordering::Relaxed),
            error,
        }
    }
}

fn write_loop(
    rx: Receiver<TransferRecord>,
    mut file: std::io::BufWriter<std::fs::File>,
    c: &CaptureCounters,
    cap: u64,
    epoch_us: u64,
) -> Option<String> {
    let mut buf = Vec::with_capacity(4096);
    let mut error = None;
    let mut seq = 0u64;
    // Ends when the observer is dropped (detached from the controller). The writer wakes at
    // most every BATCH, not once per transfer: a wake-up per isochronous packet (8000 a second)
    // would cost more CPU than encoding them.
    let mut pending = Vec::new();
    while let Ok(first) = rx.recv() {
        pending.push(first);
        std::thread::sleep(BATCH);
        pending.extend(rx.try_iter());
        for r in pending.drain(..) {
            write_one(
                &r, &mut seq, &mut buf, &mut file, c, cap, epoch_us, &mut error,
            );
        }
    }
    if let Err(e) = file.flush() {
        error.get_or_insert(e.to_string());
    }
    error
}

#[allow(clippy::too_many_arguments)]
fn write_one(
    r: &TransferRecord,
    seq: &mut u64,
    buf: &mut Vec<u8>,
    file: &mut std::io::BufWriter<std::fs::File>,
    c: &CaptureCounters,
    cap: u64,
    epoch_us: u64,
    error: &mut Option<String>,
) {
    *seq += 1;
    buf.clear();
    usbmon::encode(buf, r, *seq, epoch_us);
    let bytes = c.bytes.load(Ordering::Relaxed);
    if error.is_some() || bytes + buf.len() as u64 > cap {
        c.dropped_cap.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if let Err(e) = file.write_all(buf) {
        *error = Some(e.to_string());
        return;
    }
    c.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
    c.transfers.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sideband_device::usb::BusTime;
    use sideband_device::xhci::trb::CompletionCode;
    use sideband_device::xhci::TransferKind;

    fn rec(n: u8) -> TransferRecord {
        TransferRecord {
            slot_id: 1,
            port: 1,
            superspeed_port: false,
            address: 1,
            endpoint: 1,
            kind: TransferKind::Bulk,
            setup: None,
            requested: 100,
            data: vec![n; 100],
            code: CompletionCode::Success,
            interrupter: 0,
            time: BusTime(u64::from(n)),
            uframe: 0,
            interval: 0,
        }
    }

    #[test]
    fn streams_to_disk_and_stops_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/bus.pcap");
        // One transfer is 2 * (16 + 64) + 100 = 260 bytes; the cap admits three.
        let (w, mut obs) = CaptureWriter::create(&path, 24 + 3 * 260 + 10, 0).unwrap();
        for n in 0..5 {
            obs.transfer(rec(n));
        }
        drop(obs);
        let s = w.finish();
        assert_eq!((s.transfers, s.dropped, s.error.clone()), (3, 2, None));
        let file = std::fs::read(&path).unwrap();
        assert_eq!(file.len() as u64, s.bytes);
        assert_eq!(file.len(), 24 + 3 * 260);
        assert_eq!(&file[..4], &0xa1b2_c3d4u32.to_le_bytes());
        assert!(s.to_string().starts_with("capture: 3 transfers"));
    }
}
