//! Endpoint fault injection for any device model: [`Faulty`] wraps a [`UsbDevice`] and makes
//! chosen endpoints answer a USB Transaction Error or a STALL for the next N transfers or until
//! cleared, whatever the device itself would have done. The plan survives bus resets (it is the
//! test's, not the device's); endpoint 0 is never faulted, so the host can always recover the
//! device with a reset.

use std::ops::{Deref, DerefMut};

use thiserror::Error;

use super::device::{BusTime, SetupPacket, TransferResult, UsbDevice, UsbSpeed};

/// What a faulted endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// No handshake: the controller reports a USB Transaction Error.
    TransactionError,
    /// The endpoint answers STALL.
    Stall,
}

impl Fault {
    fn result(self) -> TransferResult {
        match self {
            Fault::TransactionError => TransferResult::TransactionError,
            Fault::Stall => TransferResult::Stall,
        }
    }
}

/// How long a fault lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultSpan {
    /// The next N transfers (N attempts: a NAK-free failure each).
    Next(u32),
    /// Every transfer until [`FaultPlan::clear`].
    UntilCleared,
}

/// A fault the plan cannot hold.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum FaultError {
    /// Endpoint 0 or an address with reserved bits.
    #[error("endpoint address {0:#04x} cannot be faulted (endpoints 0x01-0x0f and 0x81-0x8f)")]
    BadEndpoint(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    address: u8,
    fault: Fault,
    span: FaultSpan,
}

/// Which endpoints fail, how and for how long; at most one fault per endpoint address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    entries: Vec<Entry>,
    injected: u64,
}

impl FaultPlan {
    /// Makes endpoint `address` (direction in bit 7) answer `fault` for `span`, replacing any
    /// fault it had. `Next(0)` clears it.
    pub fn set(&mut self, address: u8, fault: Fault, span: FaultSpan) -> Result<(), FaultError> {
        if address & 0x0F == 0 || address & 0x70 != 0 {
            return Err(FaultError::BadEndpoint(address));
        }
        self.clear(address);
        if span != FaultSpan::Next(0) {
            self.entries.push(Entry {
                address,
                fault,
                span,
            });
        }
        Ok(())
    }

    /// Removes the fault of endpoint `address`; returns it if there was one.
    pub fn clear(&mut self, address: u8) -> Option<(Fault, FaultSpan)> {
        let i = self.entries.iter().position(|e| e.address == address)?;
        let e = self.entries.remove(i);
        Some((e.fault, e.span))
    }

    /// The fault endpoint `address` has now.
    pub fn active(&self, address: u8) -> Option<(Fault, FaultSpan)> {
        self.entries
            .iter()
            .find(|e| e.address == address)
            .map(|e| (e.fault, e.span))
    }

    /// Transfers failed on purpose so far.
    pub fn injected(&self) -> u64 {
        self.injected
    }

    /// The answer for one transfer on `address` if it is faulted, counting it down.
    pub fn take(&mut self, address: u8) -> Option<TransferResult> {
        let i = self.entries.iter().position(|e| e.address == address)?;
        let e = &mut self.entries[i];
        let result = e.fault.result();
        match &mut e.span {
            FaultSpan::UntilCleared => {}
            FaultSpan::Next(n) if *n > 1 => *n -= 1,
            FaultSpan::Next(_) => {
                self.entries.remove(i);
            }
        }
        self.injected += 1;
        Some(result)
    }
}

/// A device whose endpoints fail as its [`FaultPlan`] says. It dereferences to the device, so
/// the device's own methods stay reachable through the wrapper.
#[derive(Debug)]
pub struct Faulty<D> {
    inner: D,
    plan: FaultPlan,
}

impl<D> Faulty<D> {
    /// Wraps `inner` with an empty plan.
    pub fn new(inner: D) -> Self {
        Faulty {
            inner,
            plan: FaultPlan::default(),
        }
    }

    /// The plan.
    pub fn faults(&self) -> &FaultPlan {
        &self.plan
    }

    /// The plan, to change it.
    pub fn faults_mut(&mut self) -> &mut FaultPlan {
        &mut self.plan
    }

    /// The wrapped device.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

impl<D> Deref for Faulty<D> {
    type Target = D;
    fn deref(&self) -> &D {
        &self.inner
    }
}

impl<D> DerefMut for Faulty<D> {
    fn deref_mut(&mut self) -> &mut D {
        &mut self.inner
    }
}

impl<D: UsbDevice> UsbDevice for Faulty<D> {
    fn speed(&self) -> UsbSpeed {
        self.inner.speed()
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    fn control(&mut self, setup: SetupPacket, data: &mut [u8], now: BusTime) -> TransferResult {
        self.inner.control(setup, data, now)
    }

    fn data_out(&mut self, ep: u8, data: &[u8], now: BusTime) -> TransferResult {
        match self.plan.take(ep) {
            Some(r) => r,
            None => self.inner.data_out(ep, data, now),
        }
    }

    fn data_in(&mut self, ep: u8, buf: &mut [u8], now: BusTime) -> TransferResult {
        match self.plan.take(ep | 0x80) {
            Some(r) => r,
            None => self.inner.data_in(ep, buf, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xhci::LoopbackDevice;

    #[test]
    fn counted_faults_run_out_and_cleared_ones_stop() {
        let mut p = FaultPlan::default();
        p.set(0x83, Fault::TransactionError, FaultSpan::Next(2))
            .unwrap();
        assert_eq!(p.take(0x03), None, "OUT 3 is another endpoint");
        assert_eq!(p.take(0x83), Some(TransferResult::TransactionError));
        assert_eq!(
            p.active(0x83),
            Some((Fault::TransactionError, FaultSpan::Next(1)))
        );
        assert_eq!(p.take(0x83), Some(TransferResult::TransactionError));
        assert_eq!(p.take(0x83), None);
        p.set(0x01, Fault::Stall, FaultSpan::UntilCleared).unwrap();
        for _ in 0..5 {
            assert_eq!(p.take(0x01), Some(TransferResult::Stall));
        }
        assert_eq!(p.clear(0x01), Some((Fault::Stall, FaultSpan::UntilCleared)));
        assert_eq!(p.take(0x01), None);
        assert_eq!(p.injected(), 7);
        p.set(0x02, Fault::Stall, FaultSpan::Next(0)).unwrap();
        assert_eq!(p.active(0x02), None);
    }

    #[test]
    fn endpoint_zero_and_reserved_bits_are_refused() {
        let mut p = FaultPlan::default();
        for bad in [0x00, 0x80, 0x13, 0xF1] {
            assert_eq!(
                p.set(bad, Fault::Stall, FaultSpan::UntilCleared),
                Err(FaultError::BadEndpoint(bad))
            );
        }
    }

    #[test]
    fn the_wrapper_fails_only_the_planned_direction() {
        let mut d = Faulty::new(LoopbackDevice::new());
        d.faults_mut()
            .set(0x81, Fault::TransactionError, FaultSpan::UntilCleared)
            .unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(
            d.data_in(1, &mut buf, BusTime(0)),
            TransferResult::TransactionError
        );
        // OUT 1 reaches the device (which, unconfigured, answers for itself).
        let out = d.data_out(1, b"x", BusTime(0));
        assert_ne!(out, TransferResult::TransactionError);
        d.reset();
        assert!(
            d.faults().active(0x81).is_some(),
            "the plan survives a bus reset"
        );
    }
}
