//! One interrupter (xHCI 1.2 §4.17, §5.5.2): IMAN, IMOD, ERSTSZ, ERSTBA, ERDP, its event ring,
//! and moderation. Interrupter N raises MSI-X vector N through an [`InterruptSink`].

use std::sync::{Arc, Mutex};

use vm_memory::GuestMemory;

use super::dma::DmaError;
use super::event_ring::{EventRing, Push};
use super::regs::{erdp, iman, rt};
use super::trb::Trb;
use crate::usb::BusTime;

/// Where the model raises interrupts. The backend maps vector N to the eventfd QEMU gave for
/// MSI-X vector N (after its MSI-X table said the vector is unmasked).
pub trait InterruptSink: Send + std::fmt::Debug {
    /// Raise MSI-X vector `vector`.
    fn msix(&mut self, vector: u16);
}

/// An [`InterruptSink`] that records the vectors raised; clones share the record.
#[derive(Clone, Debug, Default)]
pub struct RecordingSink(Arc<Mutex<Vec<u16>>>);

impl RecordingSink {
    /// Returns and forgets the vectors raised so far, in order.
    pub fn take(&self) -> Vec<u16> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

impl InterruptSink for RecordingSink {
    fn msix(&mut self, vector: u16) {
        if let Ok(mut v) = self.0.lock() {
            v.push(vector);
        }
    }
}

/// Per-interrupter counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterrupterStats {
    /// MSI-X interrupts raised.
    pub interrupts: u64,
    /// Events written to the event ring.
    pub events: u64,
    /// Events dropped because the ring was full or not set up.
    pub dropped: u64,
}

/// IMOD interval units per 125 µs microframe (IMODI counts 250 ns).
const IMOD_UNITS_PER_UFRAME: u32 = 500;
/// IMOD reset value: 4000 × 250 ns = 1 ms (§5.5.2.2).
const IMOD_RESET: u32 = 4000;

/// An interrupter's event-ring producer state kept by Save State.
#[derive(Clone, Debug)]
pub struct SavedRing {
    erstba: u64,
    erstsz: u32,
    ring: EventRing,
}

/// One interrupter's registers and state.
#[derive(Debug)]
pub struct Interrupter {
    index: u16,
    iman: u32,
    imod: u32,
    erstsz: u32,
    erstba: u64,
    erdp: u64,
    ehb: bool,
    ring: EventRing,
    pending: bool,
    next_allowed: BusTime,
    stats: InterrupterStats,
}

impl Interrupter {
    /// Interrupter `index` in its reset state.
    pub fn new(index: u16) -> Self {
        Interrupter {
            index,
            iman: 0,
            imod: IMOD_RESET,
            erstsz: 0,
            erstba: 0,
            erdp: 0,
            ehb: false,
            ring: EventRing::disabled(),
            pending: false,
            next_allowed: BusTime(0),
            stats: InterrupterStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> InterrupterStats {
        self.stats
    }

    /// The producer's side of the event ring, as Save State keeps it (§4.23.2).
    pub fn save_state(&self) -> SavedRing {
        SavedRing {
            erstba: self.erstba,
            erstsz: self.erstsz,
            ring: self.ring.clone(),
        }
    }

    /// Restore State: the producer continues where it was saved, if software restored the same
    /// event ring (writing ERSTBA had restarted it at segment 0).
    pub fn restore_state(&mut self, saved: &SavedRing) {
        if saved.erstba == self.erstba && saved.erstsz == self.erstsz {
            self.ring = saved.ring.clone();
        } else {
            log::warn!(
                "xHCI: interrupter {}: restored a different event ring; it starts afresh",
                self.index
            );
        }
    }

    /// IMAN.IP.
    pub fn interrupt_pending(&self) -> bool {
        self.iman & iman::IP != 0
    }

    /// True when events are posted and not yet consumed (the dequeue pointer lags).
    pub fn has_unconsumed_events(&self) -> bool {
        !self.ring.is_empty()
    }

    /// Reads the dword at `offset` within the register set.
    pub fn read(&self, offset: u64) -> u32 {
        match offset {
            rt::IMAN => self.iman,
            rt::IMOD => self.imod,
            rt::ERSTSZ => self.erstsz,
            rt::ERSTBA => self.erstba as u32,
            o if o == rt::ERSTBA + 4 => (self.erstba >> 32) as u32,
            rt::ERDP => (self.erdp as u32) | if self.ehb { erdp::EHB as u32 } else { 0 },
            o if o == rt::ERDP + 4 => (self.erdp >> 32) as u32,
            _ => 0,
        }
    }

    /// Writes the dword at `offset` within the register set. Writing ERSTBA's high dword
    /// reads the ERST and resets the event ring (Linux writes low then high).
    pub fn write<M: GuestMemory>(
        &mut self,
        mem: &M,
        offset: u64,
        value: u32,
        erst_max: u8,
    ) -> Result<(), DmaError> {
        match offset {
            rt::IMAN => {
                if value & iman::IP != 0 {
                    self.iman &= !iman::IP;
                }
                self.iman = (self.iman & !iman::IE) | (value & iman::IE);
            }
            rt::IMOD => self.imod = value,
            rt::ERSTSZ => {
                self.erstsz = value & 0xffff;
                if self.erstsz == 0 {
                    self.ring = EventRing::disabled();
                }
            }
            rt::ERSTBA => self.erstba = (self.erstba & !0xffff_ffff) | u64::from(value & !0x3f),
            o if o == rt::ERSTBA + 4 => {
                self.erstba = (self.erstba & 0xffff_ffff) | (u64::from(value) << 32);
                self.load_ring(mem, erst_max)?;
            }
            rt::ERDP => {
                if u64::from(value) & erdp::EHB != 0 {
                    self.ehb = false;
                }
                self.erdp = (self.erdp & !0xffff_ffff) | u64::from(value & !(erdp::EHB as u32));
                self.update_dequeue(false);
            }
            o if o == rt::ERDP + 4 => {
                self.erdp = (self.erdp & 0xffff_ffff) | (u64::from(value) << 32);
                self.update_dequeue(true);
            }
            _ => {}
        }
        Ok(())
    }

    fn load_ring<M: GuestMemory>(&mut self, mem: &M, erst_max: u8) -> Result<(), DmaError> {
        self.ring = EventRing::disabled();
        if self.erstsz == 0 {
            return Ok(());
        }
        match EventRing::load(mem, self.erstba, self.erstsz, erst_max) {
            Ok(ring) => {
                self.ring = ring;
                Ok(())
            }
            Err(super::event_ring::Error::Dma(e)) => Err(e),
            Err(e) => {
                log::warn!("interrupter {}: {e}; event ring disabled", self.index);
                Ok(())
            }
        }
    }

    fn update_dequeue(&mut self, complain: bool) {
        if !self.ring.is_enabled() {
            return;
        }
        let ptr = self.erdp & erdp::PTR_MASK;
        let desi = (self.erdp & erdp::DESI_MASK) as usize;
        if !self.ring.set_dequeue(ptr, desi) && complain {
            log::warn!(
                "interrupter {}: ERDP {ptr:#x} is outside every event ring segment; ignored",
                self.index
            );
        }
        // With EHB clear, an interrupt is due exactly when events remain unconsumed: the
        // handler has seen everything up to ERDP, whatever was pending before.
        if !self.ehb {
            self.pending = !self.ring.is_empty();
        }
    }

    /// Posts an event. `interrupt` is false for events from TRBs with BEI set.
    pub fn post<M: GuestMemory>(
        &mut self,
        mem: &M,
        trb: Trb,
        interrupt: bool,
    ) -> Result<Push, DmaError> {
        let outcome = self.ring.push(mem, trb)?;
        match outcome {
            Push::Posted => {
                log::trace!("interrupter {}: posted {:?}", self.index, trb);
                self.stats.events += 1;
                self.pending |= interrupt;
            }
            Push::Full => {
                self.stats.dropped += 1;
                // The Event Ring Full Error itself wants the handler's attention.
                self.pending = true;
                log::warn!("interrupter {}: event ring full, event dropped", self.index);
            }
            Push::Disabled => {
                self.stats.dropped += 1;
                log::debug!("interrupter {}: no event ring, event dropped", self.index);
            }
        }
        Ok(outcome)
    }

    /// Makes an interrupt due without an event (the controller wants the handler to look at
    /// USBSTS, e.g. after a Host System Error).
    pub fn request_interrupt(&mut self) {
        self.pending = true;
    }

    /// Asserts the interrupt if one is pending, EHB is clear and the moderation interval has
    /// passed: sets IMAN.IP and EHB, and raises MSI-X when IMAN.IE and USBCMD.INTE allow.
    /// Returns true when IP was set (the caller then sets USBSTS.EINT).
    pub fn service(&mut self, now: BusTime, inte: bool, sink: &mut dyn InterruptSink) -> bool {
        if !self.pending || self.ehb || now < self.next_allowed {
            return false;
        }
        // With IE (or USBCMD.INTE) clear the interrupt waits, pending, until software enables
        // it; asserting IP and EHB now would leave EHB set with no handler to clear it, and a
        // driver that re-enables the interrupter (Linux does around port resume) would never
        // be interrupted again.
        if self.iman & iman::IE == 0 || !inte {
            return false;
        }
        self.pending = false;
        self.ehb = true;
        self.iman |= iman::IP;
        let interval = u64::from((self.imod & 0xffff) / IMOD_UNITS_PER_UFRAME);
        self.next_allowed = BusTime(now.0 + interval);
        self.stats.interrupts += 1;
        sink.msix(self.index);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xhci::dma;
    use crate::xhci::ring::tests::mem;
    use crate::xhci::trb::TrbType;

    fn setup(m: &vm_memory::GuestMemoryMmap, i: &mut Interrupter) {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&0x1000u64.to_le_bytes());
        b[8..10].copy_from_slice(&16u16.to_le_bytes());
        dma::write(m, 0x100, &b).unwrap();
        i.write(m, rt::ERSTSZ, 1, 4).unwrap();
        i.write(m, rt::ERSTBA, 0x100, 4).unwrap();
        i.write(m, rt::ERSTBA + 4, 0, 4).unwrap();
        i.write(m, rt::ERDP, 0x1000, 4).unwrap();
        i.write(m, rt::ERDP + 4, 0, 4).unwrap();
    }

    fn ev() -> Trb {
        Trb::new(TrbType::PortStatusChangeEvent, 1 << 24, 1 << 24, 0)
    }

    #[test]
    fn ie_clear_posts_without_msix_and_interrupts_once_enabled() {
        let m = mem();
        let mut i = Interrupter::new(2);
        let mut sink = RecordingSink::default();
        setup(&m, &mut i);
        i.write(&m, rt::IMOD, 0, 4).unwrap();
        i.post(&m, ev(), true).unwrap();
        assert!(!i.service(BusTime(0), true, &mut sink));
        assert!(sink.take().is_empty());
        assert!(!i.interrupt_pending(), "IP waits for IE");
        assert_eq!(i.stats().events, 1);
        assert_eq!(i.stats().interrupts, 0);
        // Software enables the interrupter (as Linux does after port resume): the waiting
        // event interrupts now, even though nothing new was posted.
        i.write(&m, rt::IMAN, iman::IE, 4).unwrap();
        assert!(i.service(BusTime(1), true, &mut sink));
        assert_eq!(sink.take(), vec![2]);
        assert!(i.interrupt_pending());
        assert_eq!(i.stats().interrupts, 1);
    }

    #[test]
    fn ie_set_raises_vector_and_ehb_blocks_until_erdp() {
        let m = mem();
        let mut i = Interrupter::new(3);
        let mut sink = RecordingSink::default();
        setup(&m, &mut i);
        i.write(&m, rt::IMOD, 0, 4).unwrap();
        i.write(&m, rt::IMAN, iman::IE, 4).unwrap();
        i.post(&m, ev(), true).unwrap();
        i.service(BusTime(0), true, &mut sink);
        assert_eq!(sink.take(), vec![3]);
        assert_eq!(i.read(rt::ERDP) & erdp::EHB as u32, erdp::EHB as u32);
        i.post(&m, ev(), true).unwrap();
        assert!(!i.service(BusTime(1), true, &mut sink));
        // The handler consumed only the first event: clearing EHB re-arms the interrupt.
        i.write(&m, rt::ERDP, 0x1010 | erdp::EHB as u32, 4).unwrap();
        i.write(&m, rt::ERDP + 4, 0, 4).unwrap();
        assert!(i.service(BusTime(2), true, &mut sink));
        assert_eq!(sink.take(), vec![3]);
        assert_eq!(i.stats().interrupts, 2);
        // IP is write-1-to-clear.
        i.write(&m, rt::IMAN, iman::IP | iman::IE, 4).unwrap();
        assert!(!i.interrupt_pending());
    }

    #[test]
    fn moderation_delays_the_second_interrupt() {
        let m = mem();
        let mut i = Interrupter::new(0);
        let mut sink = RecordingSink::default();
        setup(&m, &mut i);
        i.write(&m, rt::IMAN, iman::IE, 4).unwrap();
        // 4000 × 250 ns = 8 microframes.
        i.write(&m, rt::IMOD, 4000, 4).unwrap();
        i.post(&m, ev(), true).unwrap();
        assert!(i.service(BusTime(10), true, &mut sink));
        i.write(&m, rt::ERDP, 0x1010 | erdp::EHB as u32, 4).unwrap();
        i.post(&m, ev(), true).unwrap();
        assert!(!i.service(BusTime(17), true, &mut sink));
        assert!(i.service(BusTime(18), true, &mut sink));
        assert_eq!(sink.take(), vec![0, 0]);
    }

    #[test]
    fn bei_posts_without_interrupt() {
        let m = mem();
        let mut i = Interrupter::new(0);
        let mut sink = RecordingSink::default();
        setup(&m, &mut i);
        i.write(&m, rt::IMAN, iman::IE, 4).unwrap();
        i.post(&m, ev(), false).unwrap();
        assert!(!i.service(BusTime(100), true, &mut sink));
        assert!(i.has_unconsumed_events());
    }

    #[test]
    fn erstsz_zero_removes_the_ring() {
        let m = mem();
        let mut i = Interrupter::new(1);
        setup(&m, &mut i);
        i.write(&m, rt::ERSTSZ, 0, 4).unwrap();
        assert_eq!(i.post(&m, ev(), true).unwrap(), Push::Disabled);
        assert_eq!(i.stats().dropped, 1);
        // ERDP writes while removed are accepted.
        i.write(&m, rt::ERDP, 0x1000 | 0xf, 4).unwrap();
        i.write(&m, rt::ERDP + 4, 0, 4).unwrap();
        assert_eq!(dma::read_trb(&m, 0x1000).unwrap(), Trb::default());
    }

    #[test]
    fn bad_erst_disables_without_error() {
        let m = mem();
        let mut i = Interrupter::new(1);
        i.write(&m, rt::ERSTSZ, 1, 4).unwrap();
        i.write(&m, rt::ERSTBA, 0x100, 4).unwrap();
        // Segment size 0 at 0x100 (memory is zero).
        i.write(&m, rt::ERSTBA + 4, 0, 4).unwrap();
        assert_eq!(i.post(&m, ev(), true).unwrap(), Push::Disabled);
        // ERST outside memory is a DMA error (the controller sets HSE).
        i.write(&m, rt::ERSTBA, 0, 4).unwrap();
        assert!(i.write(&m, rt::ERSTBA + 4, 0x10, 4).is_err());
    }
}
