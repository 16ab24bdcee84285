//! What a bus analyzer would see: one [`TransferRecord`] per completed transfer, handed to a
//! [`TransferObserver`] the transport attaches with [`super::Controller::set_observer`].
//!
//! A record holds what crossed the bus (the bytes read from or written to guest memory), the
//! SETUP packet of a control transfer, the isochronous packet, the completion code and the
//! interrupter the transfer's events went to: the DSP's transfers complete on a secondary
//! interrupter, which is how a capture tells offloaded traffic apart. With no observer attached
//! nothing is copied: the transfer path tests one `Option`.

use super::trb::CompletionCode;
use crate::usb::BusTime;

/// The USB transfer type of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferKind {
    /// Isochronous.
    Isoch,
    /// Interrupt.
    Interrupt,
    /// Control (endpoint 0; SETUP, optional data, status).
    Control,
    /// Bulk.
    Bulk,
}

/// One completed transfer, as the controller executed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRecord {
    /// Slot ID.
    pub slot_id: u8,
    /// One-based root port of the slot.
    pub port: u8,
    /// True when the port is a USB 3 port (the guest's second root hub).
    pub superspeed_port: bool,
    /// USB device address the controller assigned (0 before Address Device).
    pub address: u8,
    /// Endpoint address: number, with 0x80 for IN (for control, the data stage's direction).
    pub endpoint: u8,
    /// Transfer type.
    pub kind: TransferKind,
    /// The SETUP packet of a control transfer, as on the wire.
    pub setup: Option<[u8; 8]>,
    /// Bytes the TD asked for (the URB's length).
    pub requested: u32,
    /// Bytes that crossed the bus: OUT data read from guest memory, IN data written to it.
    pub data: Vec<u8>,
    /// How the transfer completed.
    pub code: CompletionCode,
    /// Interrupter Target of the TD (where its events went).
    pub interrupter: u16,
    /// Bus time of the transfer.
    pub time: BusTime,
    /// Absolute microframe the transfer was serviced in.
    pub uframe: u64,
    /// Service interval of a periodic endpoint, in microframes (0 otherwise).
    pub interval: u64,
}

impl TransferRecord {
    /// True for IN transfers (data from the device).
    pub fn is_in(&self) -> bool {
        self.endpoint & 0x80 != 0
    }
}

/// Receives every completed transfer. Called on the controller's own thread with the
/// controller borrowed: keep it short (hand the record to another thread).
pub trait TransferObserver: Send + std::fmt::Debug {
    /// One transfer completed.
    fn transfer(&mut self, record: TransferRecord);
}

/// An observer that keeps every record; clones share them (for tests).
#[derive(Clone, Debug, Default)]
pub struct RecordingObserver(pub std::sync::Arc<std::sync::Mutex<Vec<TransferRecord>>>);

impl RecordingObserver {
    /// The records so far.
    pub fn take(&self) -> Vec<TransferRecord> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

impl TransferObserver for RecordingObserver {
    fn transfer(&mut self, record: TransferRecord) {
        if let Ok(mut v) = self.0.lock() {
            v.push(record);
        }
    }
}
