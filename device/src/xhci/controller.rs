//! The host controller (xHCI 1.2 §4.2, §5.4.1–2): BAR0 register dispatch, run/stop, HCRST,
//! HSE and HCE, doorbells, MFINDEX, and the periodic tick that drives isochronous service,
//! NAK retries and interrupt moderation.

use vm_memory::GuestMemory;

use super::command::CommandRing;
use super::config::{self, Config};
use super::context::{EndpointState, SlotState};
use super::dma::DmaError;
use super::interrupter::{InterruptSink, Interrupter, InterrupterStats, SavedRing};
use super::observe::{TransferObserver, TransferRecord};
use super::port::{self, Port, Protocol};
use super::regs::{self, crcr, op, rt, usbcmd, usbsts, Region};
use super::slot::SlotTable;
use super::transfer::{self, Bus, EventOut};
use super::trb::{PortStatusChangeEvent, Trb};
use crate::usb::{BusTime, UsbDevice};

/// Controller-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerStats {
    /// Transfer TRBs executed.
    pub trbs: u64,
    /// Commands completed.
    pub commands: u64,
    /// Host System Errors raised.
    pub host_system_errors: u64,
    /// Isoch TDs served after their Frame ID's frame had passed, within
    /// [`super::transfer::LATE_FRAME_GRACE`] (the host, not the guest, was late).
    pub late_frame_tds: u64,
}

/// An xHCI host controller: everything behind BAR0.
///
/// Guest memory comes with each call that may touch it; time comes with [`Controller::tick`]
/// (MMIO accesses use the time of the last tick). Interrupts leave through the
/// [`InterruptSink`] given at construction: MSI-X vector N is interrupter N.
#[derive(Debug)]
pub struct Controller {
    pub(super) config: Config,
    pub(super) usbcmd: u32,
    pub(super) usbsts: u32,
    dnctrl: u32,
    pub(super) cmd: CommandRing,
    pub(super) dcbaap: u64,
    pub(super) config_reg: u32,
    pub(super) ports: Vec<Port>,
    pub(super) interrupters: Vec<Interrupter>,
    /// What Save State kept, until Restore State.
    saved: Option<Vec<SavedRing>>,
    pub(super) slots: SlotTable,
    pub(super) now: BusTime,
    run_start: BusTime,
    mf_base: u64,
    irq: Box<dyn InterruptSink>,
    pub(super) stats: ControllerStats,
    events: Vec<EventOut>,
    pending_ports: Vec<usize>,
    observer: Option<Box<dyn TransferObserver>>,
    records: Vec<TransferRecord>,
    /// Off the bus (surprise removal): BAR0 reads all-ones, writes are lost, nothing runs.
    gone: bool,
}

impl Controller {
    /// A halted controller with `config`, raising interrupts through `irq`.
    pub fn new(config: Config, irq: Box<dyn InterruptSink>) -> Result<Self, config::Error> {
        config.validate()?;
        let ports = (0..config.ports())
            .map(|i| Port::new(i as u8 + 1, config.protocol(i)))
            .collect();
        let interrupters = (0..config.max_interrupters).map(Interrupter::new).collect();
        Ok(Controller {
            config,
            usbcmd: 0,
            usbsts: usbsts::HCH,
            dnctrl: 0,
            cmd: CommandRing::default(),
            dcbaap: 0,
            config_reg: 0,
            ports,
            interrupters,
            saved: None,
            slots: SlotTable::new(config.max_slots),
            now: BusTime(0),
            run_start: BusTime(0),
            mf_base: 0,
            irq,
            stats: ControllerStats::default(),
            events: Vec::new(),
            pending_ports: Vec::new(),
            observer: None,
            records: Vec::new(),
            gone: false,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Attaches (or with `None` detaches) the observer that sees every completed transfer;
    /// returns the previous one.
    pub fn set_observer(
        &mut self,
        observer: Option<Box<dyn TransferObserver>>,
    ) -> Option<Box<dyn TransferObserver>> {
        std::mem::replace(&mut self.observer, observer)
    }

    /// Controller-wide counters.
    pub fn stats(&self) -> ControllerStats {
        self.stats
    }

    /// Counters of interrupter `n` (interrupts raised, events posted, events dropped).
    pub fn interrupter_stats(&self, n: u16) -> Option<InterrupterStats> {
        self.interrupters
            .get(usize::from(n))
            .map(Interrupter::stats)
    }

    /// Times software suspended root port `port` (one-based); `None` for no such port.
    pub fn port_suspends(&self, port: u8) -> Option<u64> {
        let i = usize::from(port).checked_sub(1)?;
        self.ports.get(i).map(Port::suspends)
    }

    /// USBSTS as the guest reads it.
    pub fn usbsts(&self) -> u32 {
        self.usbsts
    }

    /// True while R/S is set and the controller is not halted.
    pub fn is_running(&self) -> bool {
        self.usbcmd & usbcmd::RS != 0 && self.usbsts & usbsts::HCH == 0
    }

    /// Absolute microframe count (MFINDEX without the 14-bit wrap).
    pub fn uframe(&self) -> u64 {
        if self.is_running() {
            self.mf_base + self.now.0.saturating_sub(self.run_start.0)
        } else {
            self.mf_base
        }
    }

    /// Attaches `device` to one-based root port `port` (hot-plug). The guest sees a connect
    /// status change and, while running, a Port Status Change Event on the next tick or MMIO
    /// write.
    pub fn attach(&mut self, port: u8, device: Box<dyn UsbDevice>) -> Result<(), port::Error> {
        let i = self.port_index(port)?;
        let changed = self.ports[i].attach(device)?;
        self.port_changed(i, changed);
        Ok(())
    }

    /// Detaches and returns the device on one-based root port `port` (hot-unplug).
    pub fn detach(&mut self, port: u8) -> Result<Option<Box<dyn UsbDevice>>, port::Error> {
        let i = self.port_index(port)?;
        let (dev, changed) = self.ports[i].detach();
        self.port_changed(i, changed);
        Ok(dev)
    }

    /// The device on one-based root port `port`.
    pub fn device_mut(&mut self, port: u8) -> Option<&mut (dyn UsbDevice + 'static)> {
        let i = usize::from(port).checked_sub(1)?;
        self.ports.get_mut(i)?.device_mut()
    }

    fn port_index(&self, port: u8) -> Result<usize, port::Error> {
        usize::from(port)
            .checked_sub(1)
            .filter(|&i| i < self.ports.len())
            .ok_or(port::Error::NoSuchPort(port))
    }

    fn port_changed(&mut self, i: usize, changed: u32) {
        if changed != 0 {
            self.usbsts |= usbsts::PCD;
            if !self.pending_ports.contains(&i) {
                self.pending_ports.push(i);
            }
        }
    }

    /// Resets the whole controller, as USBCMD.HCRST does (§4.2); attached devices stay
    /// attached and show as new connections.
    pub fn reset(&mut self) {
        self.usbcmd = 0;
        self.usbsts = usbsts::HCH;
        self.dnctrl = 0;
        self.cmd = CommandRing::default();
        self.dcbaap = 0;
        self.config_reg = 0;
        for p in &mut self.ports {
            p.reset_registers();
        }
        self.interrupters = (0..self.config.max_interrupters)
            .map(Interrupter::new)
            .collect();
        self.slots.clear();
        self.mf_base = 0;
        self.pending_ports.clear();
    }

    /// Raises Host System Error and halts, as after a failed guest-memory access (also for
    /// fault injection).
    pub fn inject_host_system_error(&mut self) {
        self.stats.host_system_errors += 1;
        self.usbsts |= usbsts::HSE;
        self.halt();
    }

    /// Raises Host Controller Error and halts (for fault injection and internal
    /// inconsistencies); only HCRST recovers.
    pub fn inject_host_controller_error(&mut self) {
        self.usbsts |= usbsts::HCE;
        self.halt();
    }

    /// A fatal controller error as fault injection raises it: HSE or HCE and a halt, with an
    /// interrupt due on interrupter 0 so the guest's handler reads USBSTS (Linux leaves
    /// USBCMD.HSEE clear and otherwise never looks).
    pub fn inject_fatal_error(&mut self, controller_error: bool) {
        if controller_error {
            self.inject_host_controller_error();
        } else {
            self.inject_host_system_error();
        }
        self.usbsts |= usbsts::EINT;
        if let Some(i) = self.interrupters.first_mut() {
            i.request_interrupt();
        }
    }

    /// The controller drops off the bus, as on surprise removal or a dead link: every BAR0
    /// read returns all-ones, writes (doorbells included) are lost and nothing is scheduled,
    /// until [`Controller::revive`].
    pub fn fall_off_bus(&mut self) {
        self.halt();
        self.gone = true;
    }

    /// Back on the bus in its power-on state (a replacement card): registers as after HCRST.
    pub fn revive(&mut self) {
        self.gone = false;
        self.reset();
    }

    /// True after [`Controller::fall_off_bus`] until [`Controller::revive`].
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    fn host_system_error(&mut self, e: DmaError) {
        log::warn!("xHCI: {e}; Host System Error, controller halted");
        self.inject_host_system_error();
    }

    fn halt(&mut self) {
        self.mf_base = self.uframe();
        self.usbcmd &= !usbcmd::RS;
        self.usbsts |= usbsts::HCH;
        self.cmd.running = false;
    }

    /// Reads `size` (1, 2, 4 or 8) bytes of BAR0 at `offset`. Nothing is read from guest
    /// memory and no state changes.
    pub fn mmio_read(&self, offset: u64, size: u32) -> u64 {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return !0;
        }
        if self.gone {
            return u64::MAX >> (64 - 8 * size);
        }
        let base = offset & !3;
        let shift = (offset - base) * 8;
        let mut wide: u128 = 0;
        for i in 0..3u64 {
            wide |= u128::from(self.read32(base.wrapping_add(4 * i))) << (32 * i);
        }
        let mask = if size == 8 {
            u64::MAX
        } else {
            (1u64 << (size * 8)) - 1
        };
        (wide >> shift) as u64 & mask
    }

    fn read32(&self, offset: u64) -> u32 {
        match regs::decode(offset, self.ports.len(), self.interrupters.len()) {
            Region::Capability(o) => self.config.capability(o),
            Region::Operational(o) => match o {
                op::USBCMD => self.usbcmd,
                op::USBSTS => self.usbsts,
                op::PAGESIZE => 1,
                op::DNCTRL => self.dnctrl,
                op::CRCR if self.cmd.running => crcr::CRR as u32,
                op::DCBAAP => self.dcbaap as u32,
                o if o == op::DCBAAP + 4 => (self.dcbaap >> 32) as u32,
                op::CONFIG => self.config_reg,
                _ => 0,
            },
            Region::Port(i, o) => self.ports[i].read(o),
            Region::ExtendedCap(o) => self.config.extended_capability(o),
            Region::Runtime(rt::MFINDEX) => (self.uframe() & 0x3fff) as u32,
            Region::Interrupter(n, o) => self.interrupters[n].read(o),
            Region::Runtime(_) | Region::Doorbell(_) | Region::Unmapped => 0,
        }
    }

    /// Writes `size` bytes of BAR0 at `offset`. 8-byte writes are split low dword first, as
    /// Linux's `lo_hi_writeq` does; sub-dword writes are dropped.
    pub fn mmio_write<M: GuestMemory>(&mut self, mem: &M, offset: u64, size: u32, value: u64) {
        if self.gone {
            log::debug!("xHCI: off the bus; write of {value:#x} at {offset:#x} lost");
            return;
        }
        let result = match (size, offset % 4) {
            (4, 0) => self.write32(mem, offset, value as u32),
            (8, 0) => self
                .write32(mem, offset, value as u32)
                .and_then(|()| self.write32(mem, offset + 4, (value >> 32) as u32)),
            _ => {
                log::warn!("xHCI: {size}-byte write at {offset:#x} dropped");
                Ok(())
            }
        };
        let result = result.and_then(|()| self.flush_port_events(mem));
        if let Err(e) = result {
            self.host_system_error(e);
        }
        self.update_interrupts();
    }

    fn write32<M: GuestMemory>(&mut self, mem: &M, offset: u64, v: u32) -> Result<(), DmaError> {
        match regs::decode(offset, self.ports.len(), self.interrupters.len()) {
            Region::Operational(o) => self.write_operational(mem, o, v)?,
            Region::Port(i, o) => {
                let changed = self.ports[i].write(o, v);
                self.port_changed(i, changed);
            }
            Region::Interrupter(n, o) => {
                let erst_max = self.config.erst_max;
                self.interrupters[n].write(mem, o, v, erst_max)?;
            }
            Region::Doorbell(0) => {
                if v & 0xff == 0 {
                    self.ring_command_doorbell(mem)?;
                } else {
                    log::warn!("xHCI: host controller doorbell with target {}", v & 0xff);
                }
            }
            Region::Doorbell(slot) => self.ring_doorbell(mem, slot as u8, v)?,
            Region::Capability(_)
            | Region::ExtendedCap(_)
            | Region::Runtime(_)
            | Region::Unmapped => {}
        }
        Ok(())
    }

    fn write_operational<M: GuestMemory>(
        &mut self,
        mem: &M,
        o: u64,
        v: u32,
    ) -> Result<(), DmaError> {
        match o {
            op::USBCMD => self.write_usbcmd(v),
            op::USBSTS => self.usbsts &= !(v & usbsts::RW1C),
            op::DNCTRL => self.dnctrl = v & 0xffff,
            op::CRCR => self.write_crcr(mem, false, v)?,
            o if o == op::CRCR + 4 => self.write_crcr(mem, true, v)?,
            op::DCBAAP => self.dcbaap = (self.dcbaap & !0xffff_ffff) | u64::from(v & !0x3f),
            o if o == op::DCBAAP + 4 => {
                self.dcbaap = (self.dcbaap & 0xffff_ffff) | (u64::from(v) << 32)
            }
            op::CONFIG => self.config_reg = v & 0x3ff,
            _ => {}
        }
        Ok(())
    }

    fn write_usbcmd(&mut self, v: u32) {
        if v & usbcmd::HCRST != 0 {
            self.reset();
            return;
        }
        if v & (usbcmd::CSS | usbcmd::CRS) != 0 {
            // §4.23.2: Save/Restore State while halted, done at once (SSS/RSS never read 1,
            // SRE stays 0). Slots and rings live on in the model; what software's register
            // restore disturbs is the event rings' producer (an ERSTBA write restarts it), so
            // that is what Save keeps and Restore puts back.
            if self.usbcmd & usbcmd::RS != 0 || v & usbcmd::RS != 0 {
                log::warn!("xHCI: save/restore state requested while running; ignored");
            } else if v & usbcmd::CSS != 0 {
                self.saved = Some(
                    self.interrupters
                        .iter()
                        .map(Interrupter::save_state)
                        .collect(),
                );
            } else if let Some(saved) = self.saved.take() {
                for (i, s) in self.interrupters.iter_mut().zip(&saved) {
                    i.restore_state(s);
                }
            }
        }
        let was_running = self.usbcmd & usbcmd::RS != 0;
        self.usbcmd = v & usbcmd::RW_MASK;
        let run = v & usbcmd::RS != 0;
        if run && !was_running {
            if self.usbsts & usbsts::HCE != 0 {
                log::warn!("xHCI: R/S set after Host Controller Error; staying halted");
                self.usbcmd &= !usbcmd::RS;
                return;
            }
            self.run_start = self.now;
            self.usbsts &= !usbsts::HCH;
        } else if !run && was_running {
            self.usbcmd |= usbcmd::RS;
            self.halt();
        }
    }

    fn ring_doorbell<M: GuestMemory>(
        &mut self,
        mem: &M,
        slot_id: u8,
        v: u32,
    ) -> Result<(), DmaError> {
        if !self.is_running() {
            log::debug!("xHCI: doorbell {slot_id} while halted ignored");
            return Ok(());
        }
        let dci = (v & 0xff) as u8;
        let slot = match self.slots.get_mut(slot_id) {
            Ok(s) => s,
            Err(_) => {
                log::warn!("xHCI: doorbell for disabled slot {slot_id} ignored");
                return Ok(());
            }
        };
        let output = slot.output;
        let Some(ep) = slot.endpoint_mut(dci) else {
            log::warn!("xHCI: doorbell for slot {slot_id} DCI {dci}, which is not enabled");
            return Ok(());
        };
        match ep.state {
            EndpointState::Running => {}
            EndpointState::Stopped => {
                ep.set_state(EndpointState::Running);
                ep.write_back(mem, output)?;
            }
            s => {
                log::debug!("xHCI: doorbell for slot {slot_id} DCI {dci} in state {s:?} ignored");
                return Ok(());
            }
        }
        ep.retry_at = None;
        self.service_endpoint(mem, slot_id, dci)
    }

    /// Runs one endpoint's ring and posts the events it produced.
    fn service_endpoint<M: GuestMemory>(
        &mut self,
        mem: &M,
        slot_id: u8,
        dci: u8,
    ) -> Result<(), DmaError> {
        let uframe = self.uframe();
        let now = self.now;
        let mut events = std::mem::take(&mut self.events);
        let mut records = std::mem::take(&mut self.records);
        let observing = self.observer.is_some();
        let mut who = (0u8, false, 0u8);
        let result = {
            let Ok(slot) = self.slots.get_mut(slot_id) else {
                return Ok(());
            };
            let output = slot.output;
            let port = usize::from(slot.port).checked_sub(1);
            let addressed = matches!(slot.state, SlotState::Addressed | SlotState::Configured);
            let Some(ep) = slot.endpoint_mut(dci) else {
                return Ok(());
            };
            if observing {
                let usb3 = port
                    .and_then(|p| self.ports.get(p))
                    .is_some_and(|p| p.protocol() == Protocol::Usb3);
                let address = if addressed { slot_id } else { 0 };
                who = (port.map_or(0, |p| p as u8 + 1), usb3, address);
            }
            let device = port
                .and_then(|p| self.ports.get_mut(p))
                .filter(|p| p.is_enabled())
                .and_then(|p| p.device_mut());
            let before = ep.state;
            let mut bus = Bus {
                slot_id,
                device,
                now,
                uframe,
                events: &mut events,
                trbs: 0,
                late_frame_tds: 0,
                records: observing.then_some(&mut records),
            };
            let r = transfer::service(ep, &mut bus, mem);
            self.stats.trbs += bus.trbs;
            self.stats.late_frame_tds += bus.late_frame_tds;
            r.and_then(|()| {
                if ep.state != before {
                    ep.write_back(mem, output)
                } else {
                    Ok(())
                }
            })
        };
        let posted = events
            .drain(..)
            .try_for_each(|e| self.post_event(mem, e.target, e.trb, e.interrupt));
        self.events = events;
        if let Some(obs) = self.observer.as_mut() {
            for mut r in records.drain(..) {
                (r.port, r.superspeed_port, r.address) = who;
                obs.transfer(r);
            }
        }
        self.records = records;
        result.and(posted)
    }

    /// Posts an event to interrupter `target` (interrupter 0 when `target` does not exist).
    pub(super) fn post_event<M: GuestMemory>(
        &mut self,
        mem: &M,
        target: u16,
        trb: Trb,
        interrupt: bool,
    ) -> Result<(), DmaError> {
        let n = if usize::from(target) < self.interrupters.len() {
            usize::from(target)
        } else {
            log::warn!("xHCI: event for interrupter {target}, which does not exist; sent to 0");
            0
        };
        self.interrupters[n].post(mem, trb, interrupt).map(|_| ())
    }

    fn flush_port_events<M: GuestMemory>(&mut self, mem: &M) -> Result<(), DmaError> {
        if !self.is_running() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending_ports);
        for i in pending {
            let ev = PortStatusChangeEvent { port: i as u8 + 1 }.to_trb();
            self.post_event(mem, 0, ev, true)?;
        }
        Ok(())
    }

    fn update_interrupts(&mut self) {
        let inte = self.usbcmd & usbcmd::INTE != 0;
        let now = self.now;
        for i in &mut self.interrupters {
            if i.service(now, inte, self.irq.as_mut()) {
                self.usbsts |= usbsts::EINT;
            }
        }
    }

    /// Advances time to `now` and does the periodic work: pending port events, commands left
    /// over from a busy doorbell, isochronous service, NAK retries and interrupt moderation.
    pub fn tick<M: GuestMemory>(&mut self, mem: &M, now: BusTime) {
        self.now = self.now.max(now);
        if self.gone {
            return;
        }
        if let Err(e) = self.tick_inner(mem) {
            self.host_system_error(e);
        }
        self.update_interrupts();
    }

    fn tick_inner<M: GuestMemory>(&mut self, mem: &M) -> Result<(), DmaError> {
        self.flush_port_events(mem)?;
        if !self.is_running() {
            return Ok(());
        }
        if self.cmd.more {
            self.run_commands(mem)?;
        }
        let (now, uframe) = (self.now, self.uframe());
        let mut due = Vec::new();
        for (id, slot) in self.slots.iter_mut() {
            for ep in slot.endpoints.iter().flatten() {
                if ep.wants_tick(now, uframe) {
                    due.push((id, ep.dci));
                }
            }
        }
        for (id, dci) in due {
            self.service_endpoint(mem, id, dci)?;
        }
        Ok(())
    }
}
