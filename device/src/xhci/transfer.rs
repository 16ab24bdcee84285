//! TD execution (xHCI 1.2 §4.10, §4.11.2, §4.14): control, bulk, interrupt and isochronous
//! transfers against a [`UsbDevice`], and the transfer events they produce.
//!
//! Every event goes to the interrupter named by the Interrupter Target of the TRB it reports
//! on; that is what lets a secondary interrupter (the DSP's) own a transfer ring.

use vm_memory::GuestMemory;

use super::context::{EndpointState, EndpointType};
use super::dma::{self, DmaError};
use super::endpoint::{Endpoint, InProgress};
use super::observe::{TransferKind, TransferRecord};
use super::ring::{self, RingCursor, RingTrb, Td, TdFetch};
use super::trb::{CompletionCode, IsochTrb, SetupStageTrb, TransferEvent, Trb, TrbType};
use crate::usb::{BusTime, SetupPacket, TransferResult, UsbDevice};

/// Most TRBs one TD may have (Linux TDs span segments; this bounds a chain that never ends).
pub const MAX_TD_TRBS: usize = 1024;
/// Most TDs one endpoint executes per doorbell or tick; the rest waits for the next tick.
pub const MAX_TDS_PER_SERVICE: usize = 64;
/// An ASAP isoch schedule further behind real time than this many microframes restarts now.
const MAX_ISOCH_LAG: u64 = 64;
/// Frames a Frame ID TD may arrive after its frame and still be served at once instead of
/// missed (§4.11.2.5 would miss it). Linux picks the first TD's frame from MFINDEX plus about
/// 3 ms; the emulated frame clock runs on host time while the guest runs slower (TCG) or waits
/// for a host CPU, so a guest that asked in time by its own clock can arrive a few frames late.
/// Counted in [`Bus::late_frame_tds`]; further behind is a Missed Service, as the spec says.
pub const LATE_FRAME_GRACE: u64 = 32;
/// Most bytes a bulk or interrupt TD may move. The specification sets none (a TD is the sum of
/// its TRBs' lengths, §4.14), but the model buffers a TD whole before the device sees it; 4 MiB
/// (64 full TRBs) is far above what the guest's drivers queue (usbfs bulk here moves 16 KiB).
pub const MAX_TD_BYTES: usize = 4 << 20;
/// Most bytes a control transfer's Data Stage may move: wLength is 16 bits (USB 2.0 §9.3.5).
pub const MAX_CONTROL_BYTES: usize = u16::MAX as usize;

/// An event produced by a transfer, for the controller to post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventOut {
    /// Interrupter Target of the TRB the event reports on.
    pub target: u16,
    /// The event TRB (cycle bit clear).
    pub trb: Trb,
    /// False when the TRB had BEI set: post without interrupting.
    pub interrupt: bool,
}

/// What an endpoint's TDs run against.
#[derive(Debug)]
pub struct Bus<'a> {
    /// Slot ID, for the events.
    pub slot_id: u8,
    /// The device on the slot's port; `None` once detached.
    pub device: Option<&'a mut (dyn UsbDevice + 'static)>,
    /// Current bus time.
    pub now: BusTime,
    /// Current absolute microframe (MFINDEX without the wrap).
    pub uframe: u64,
    /// Events produced.
    pub events: &'a mut Vec<EventOut>,
    /// TRBs executed (statistics).
    pub trbs: u64,
    /// Frame ID TDs served late within [`LATE_FRAME_GRACE`] (statistics).
    pub late_frame_tds: u64,
    /// Where completed transfers are recorded; `None` (nothing copied) without an observer.
    /// The controller fills in the slot's port and address.
    pub records: Option<&'a mut Vec<TransferRecord>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Next,
    Wait,
}

enum Fetch {
    Empty,
    Incomplete,
    Ready(Td),
    /// Reported and halted already.
    Failed,
}

/// Runs `ep`'s ring from its dequeue pointer: at most [`MAX_TDS_PER_SERVICE`] TDs, stopping at an
/// empty ring, a NAK, an isoch TD not yet due, or a halt.
pub fn service<M: GuestMemory>(
    ep: &mut Endpoint,
    bus: &mut Bus<'_>,
    mem: &M,
) -> Result<(), DmaError> {
    ep.more = false;
    for _ in 0..MAX_TDS_PER_SERVICE {
        if ep.state != EndpointState::Running {
            return Ok(());
        }
        let step = if ep.ep_type.is_isoch() {
            isoch_step(ep, bus, mem)?
        } else {
            match fetch(ep, ep.ring, bus, mem)? {
                Fetch::Ready(td) => {
                    if ep.retry_at.is_some_and(|t| t > bus.now) {
                        Step::Wait
                    } else if ep.ep_type == EndpointType::Control {
                        control_step(ep, bus, mem, td)?
                    } else {
                        normal_step(ep, bus, mem, td)?
                    }
                }
                Fetch::Empty | Fetch::Incomplete => Step::Wait,
                Fetch::Failed => Step::Next,
            }
        };
        if step == Step::Wait {
            return Ok(());
        }
    }
    ep.more = true;
    Ok(())
}

fn fetch<M: GuestMemory>(
    ep: &mut Endpoint,
    at: RingCursor,
    bus: &mut Bus<'_>,
    mem: &M,
) -> Result<Fetch, DmaError> {
    match at.fetch_td(mem, MAX_TD_TRBS) {
        Err(ring::Error::Dma(e)) => Err(e),
        Err(ring::Error::LinkLoop(addr)) => {
            log::warn!(
                "slot {} DCI {}: link TRB loop at {addr:#x}; TRB Error",
                bus.slot_id,
                ep.dci
            );
            push(
                bus,
                ep,
                ep.last_target,
                addr,
                CompletionCode::TrbError,
                0,
                true,
            );
            let cur = ep.ring;
            ep.halt(cur);
            Ok(Fetch::Failed)
        }
        Ok(TdFetch::Empty) => Ok(Fetch::Empty),
        Ok(TdFetch::Incomplete) => Ok(Fetch::Incomplete),
        Ok(TdFetch::TooLong(first)) => {
            log::warn!(
                "slot {} DCI {}: TD at {:#x} chains past {MAX_TD_TRBS} TRBs or around the ring",
                bus.slot_id,
                ep.dci,
                first.addr
            );
            trb_error(ep, bus, &first);
            Ok(Fetch::Failed)
        }
        Ok(TdFetch::Ready(td)) => {
            bus.trbs += td.trbs.len() as u64;
            Ok(Fetch::Ready(td))
        }
    }
}

fn push(
    bus: &mut Bus<'_>,
    ep: &Endpoint,
    target: u16,
    pointer: u64,
    code: CompletionCode,
    length: usize,
    interrupt: bool,
) {
    let trb = TransferEvent {
        pointer,
        length: length.min(0xff_ffff) as u32,
        code,
        event_data: false,
        endpoint_id: ep.dci,
        slot_id: bus.slot_id,
    }
    .to_trb();
    bus.events.push(EventOut {
        target,
        trb,
        interrupt,
    });
}

fn event(bus: &mut Bus<'_>, ep: &Endpoint, t: &RingTrb, code: CompletionCode, residual: usize) {
    let bei = t.trb.bei();
    push(
        bus,
        ep,
        t.trb.interrupter_target(),
        t.addr,
        code,
        residual,
        !bei,
    );
}

fn trb_error(ep: &mut Endpoint, bus: &mut Bus<'_>, t: &RingTrb) {
    event(bus, ep, t, CompletionCode::TrbError, 0);
    ep.halt(t.at);
}

/// Most bytes one TD of `ep` may move: a control Data Stage is bounded by wLength, an isoch TD
/// by one service interval's payload (one TD per ESIT), any TD by [`MAX_TD_BYTES`].
fn max_td_bytes(ep: &Endpoint) -> usize {
    match ep.ep_type {
        EndpointType::Control => MAX_CONTROL_BYTES,
        t if t.is_isoch() => ep.max_esit_payload.min(MAX_TD_BYTES),
        _ => MAX_TD_BYTES,
    }
}

/// Refuses a TD whose data TRBs add up to more than `ep` takes, before any buffer is allocated
/// for it. The guest sizes TDs: up to [`MAX_TD_TRBS`] TRBs of 17-bit lengths, 128 MiB.
/// The TRB whose length passes the limit gets TRB Error (§6.4.5 table 6-90: a TRB parameter
/// out of range) and the endpoint halts there, as for every TRB Error here. True if refused.
fn refuse_oversize(ep: &mut Endpoint, bus: &mut Bus<'_>, trbs: &[RingTrb]) -> bool {
    let limit = max_td_bytes(ep);
    let mut total = 0usize;
    let past = trbs.iter().filter(|t| is_data(t)).find(|t| {
        total += t.trb.transfer_length() as usize;
        total > limit
    });
    let Some(&past) = past else {
        return false;
    };
    log::warn!(
        "slot {} DCI {}: TD at {:#x} moves {} bytes, more than the {limit} this endpoint takes; \
         TRB Error",
        bus.slot_id,
        ep.dci,
        trbs.first().map_or(past.addr, |t| t.addr),
        data_len(trbs)
    );
    trb_error(ep, bus, &past);
    true
}

/// Records a completed transfer of `ep` for the observer, if one is attached.
fn observe(
    bus: &mut Bus<'_>,
    ep: &Endpoint,
    setup: Option<SetupPacket>,
    requested: usize,
    data: &[u8],
    code: CompletionCode,
) {
    let Some(records) = bus.records.as_deref_mut() else {
        return;
    };
    let (kind, endpoint) = match ep.ep_type {
        EndpointType::Control => (
            TransferKind::Control,
            if setup.is_some_and(|s| s.is_device_to_host()) {
                0x80
            } else {
                0
            },
        ),
        t => (
            if t.is_isoch() {
                TransferKind::Isoch
            } else if t.is_interrupt() {
                TransferKind::Interrupt
            } else {
                TransferKind::Bulk
            },
            ep.number() | if t.is_in() { 0x80 } else { 0 },
        ),
    };
    records.push(TransferRecord {
        slot_id: bus.slot_id,
        port: 0,
        superspeed_port: false,
        address: 0,
        endpoint,
        kind,
        setup: setup.map(SetupPacket::to_bytes),
        requested: requested.min(u32::MAX as usize) as u32,
        data: data.to_vec(),
        code,
        interrupter: ep.last_target,
        time: bus.now,
        uframe: bus.uframe,
        interval: if matches!(kind, TransferKind::Isoch | TransferKind::Interrupt) {
            ep.interval
        } else {
            0
        },
    });
}

fn is_data(t: &RingTrb) -> bool {
    matches!(
        t.trb.trb_type(),
        Some(TrbType::Normal | TrbType::Isoch | TrbType::DataStage)
    )
}

fn data_len(trbs: &[RingTrb]) -> usize {
    trbs.iter()
        .filter(|t| is_data(t))
        .map(|t| t.trb.transfer_length() as usize)
        .sum()
}

/// The first TRB that may not appear in a TD whose first TRB is `first_ok` and whose other
/// TRBs are Normal, Event Data or No Op; immediate data is only valid OUT and ≤ 8 bytes.
fn find_bad(trbs: &[RingTrb], first_ok: TrbType, dir_in: bool) -> Option<RingTrb> {
    trbs.iter().enumerate().find_map(|(i, t)| {
        let ty = t.trb.trb_type();
        let type_ok = if i == 0 {
            ty == Some(first_ok)
        } else {
            matches!(
                ty,
                Some(TrbType::Normal | TrbType::EventData | TrbType::NoOp)
            )
        };
        let idt_ok = !t.trb.idt() || (!dir_in && t.trb.transfer_length() <= 8);
        (!type_ok || (is_data(t) && !idt_ok)).then_some(*t)
    })
}

fn gather_out<M: GuestMemory>(trbs: &[RingTrb], mem: &M) -> Result<Vec<u8>, DmaError> {
    let mut out = Vec::with_capacity(data_len(trbs));
    for t in trbs.iter().filter(|t| is_data(t)) {
        let len = t.trb.transfer_length() as usize;
        if t.trb.idt() {
            let imm = t.trb.parameter().to_le_bytes();
            out.extend_from_slice(&imm[..len.min(8)]);
        } else {
            let start = out.len();
            out.resize(start + len, 0);
            dma::read(mem, t.trb.parameter(), &mut out[start..])?;
        }
    }
    Ok(out)
}

fn scatter_in<M: GuestMemory>(trbs: &[RingTrb], data: &[u8], mem: &M) -> Result<(), DmaError> {
    let mut rest = data;
    for t in trbs.iter().filter(|t| is_data(t)) {
        if rest.is_empty() {
            break;
        }
        let n = (t.trb.transfer_length() as usize).min(rest.len());
        dma::write(mem, t.trb.parameter(), &rest[..n])?;
        rest = &rest[n..];
    }
    Ok(())
}

/// Posts the events of a TD that moved `moved` bytes (§4.10.1.1): Success on IOC TRBs, Short
/// Packet on the TRB where data ran out (if it has ISP or IOC) after which only Event Data TRBs
/// report, and Event Data events carrying the bytes moved since the previous one.
fn report_success(bus: &mut Bus<'_>, ep: &Endpoint, trbs: &[RingTrb], moved: usize) {
    let mut left = moved;
    let mut edtla = 0usize;
    let mut short = false;
    for t in trbs {
        if t.trb.trb_type() == Some(TrbType::EventData) {
            if t.trb.ioc() {
                let code = if short {
                    CompletionCode::ShortPacket
                } else {
                    CompletionCode::Success
                };
                let trb = TransferEvent {
                    pointer: t.trb.parameter(),
                    length: edtla.min(0xff_ffff) as u32,
                    code,
                    event_data: true,
                    endpoint_id: ep.dci,
                    slot_id: bus.slot_id,
                }
                .to_trb();
                bus.events.push(EventOut {
                    target: t.trb.interrupter_target(),
                    trb,
                    interrupt: !t.trb.bei(),
                });
            }
            edtla = 0;
            continue;
        }
        if short {
            continue;
        }
        let len = if is_data(t) {
            t.trb.transfer_length() as usize
        } else {
            0
        };
        let got = left.min(len);
        left -= got;
        edtla += got;
        if got < len {
            short = true;
            if t.trb.isp() || t.trb.ioc() {
                event(bus, ep, t, CompletionCode::ShortPacket, len - got);
            }
        } else if t.trb.ioc() {
            event(bus, ep, t, CompletionCode::Success, 0);
        }
    }
}

/// Posts the one event of a TD that failed with `code` after `moved` bytes; returns the TRB
/// it failed on.
fn report_error(
    bus: &mut Bus<'_>,
    ep: &Endpoint,
    trbs: &[RingTrb],
    moved: usize,
    code: CompletionCode,
) -> Option<RingTrb> {
    let mut left = moved;
    let mut at = None;
    for t in trbs.iter().filter(|t| is_data(t)) {
        let len = t.trb.transfer_length() as usize;
        let got = left.min(len);
        left -= got;
        if got < len {
            at = Some((*t, len - got));
            break;
        }
    }
    let (t, residual) = at.or_else(|| {
        trbs.iter()
            .rev()
            .find(|t| is_data(t))
            .or(trbs.first())
            .map(|t| (*t, 0))
    })?;
    event(bus, ep, &t, code, residual);
    Some(t)
}

fn wait_on(ep: &mut Endpoint, first: &RingTrb, retry_at: Option<BusTime>) -> Step {
    ep.in_progress = Some(InProgress {
        trb: first.addr,
        length: first.trb.transfer_length(),
        target: first.trb.interrupter_target(),
    });
    ep.retry_at = retry_at;
    Step::Wait
}

fn finish(ep: &mut Endpoint, end: RingCursor) -> Step {
    ep.ring = end;
    ep.in_progress = None;
    ep.retry_at = None;
    Step::Next
}

fn error_code(r: TransferResult) -> CompletionCode {
    match r {
        TransferResult::Stall => CompletionCode::StallError,
        _ => CompletionCode::UsbTransactionError,
    }
}

/// A TD that is a lone No Op TRB: nothing moves, IOC still reports.
fn noop_td(ep: &mut Endpoint, bus: &mut Bus<'_>, td: &Td) -> Step {
    report_success(bus, ep, &td.trbs, 0);
    finish(ep, td.end)
}

fn normal_step<M: GuestMemory>(
    ep: &mut Endpoint,
    bus: &mut Bus<'_>,
    mem: &M,
    td: Td,
) -> Result<Step, DmaError> {
    let first = td.trbs[0];
    if first.trb.trb_type() == Some(TrbType::NoOp) && td.trbs.len() == 1 {
        return Ok(noop_td(ep, bus, &td));
    }
    let dir_in = ep.ep_type.is_in();
    if let Some(bad) = find_bad(&td.trbs, TrbType::Normal, dir_in) {
        log::warn!(
            "slot {} DCI {}: TRB at {:#x} (type {}) not valid here; TRB Error",
            bus.slot_id,
            ep.dci,
            bad.addr,
            bad.trb.type_field()
        );
        trb_error(ep, bus, &bad);
        return Ok(Step::Next);
    }
    if refuse_oversize(ep, bus, &td.trbs) {
        return Ok(Step::Next);
    }
    ep.last_target = first.trb.interrupter_target();
    let total = data_len(&td.trbs);
    let num = ep.number();
    let (result, buf) = match bus.device.as_deref_mut() {
        None => (TransferResult::TransactionError, Vec::new()),
        Some(dev) if dir_in => {
            let mut buf = vec![0u8; total];
            (dev.data_in(num, &mut buf, bus.now), buf)
        }
        Some(dev) => {
            let data = gather_out(&td.trbs, mem)?;
            (dev.data_out(num, &data, bus.now), data)
        }
    };
    Ok(match result {
        TransferResult::Complete(n) => {
            let n = n.min(total);
            if dir_in {
                scatter_in(&td.trbs, &buf[..n], mem)?;
            }
            let moved = &buf[..n.min(buf.len())];
            let code = if n < total {
                CompletionCode::ShortPacket
            } else {
                CompletionCode::Success
            };
            observe(bus, ep, None, total, moved, code);
            report_success(bus, ep, &td.trbs, n);
            finish(ep, td.end)
        }
        TransferResult::Nak => {
            let wait = if ep.ep_type.is_interrupt() {
                ep.interval
            } else {
                1
            };
            wait_on(ep, &first, Some(BusTime(bus.now.0 + wait)))
        }
        r => {
            observe(bus, ep, None, total, &[], error_code(r));
            let at = report_error(bus, ep, &td.trbs, 0, error_code(r)).unwrap_or(first);
            ep.halt(at.at);
            Step::Next
        }
    })
}

fn control_step<M: GuestMemory>(
    ep: &mut Endpoint,
    bus: &mut Bus<'_>,
    mem: &M,
    setup_td: Td,
) -> Result<Step, DmaError> {
    let first = setup_td.trbs[0];
    if first.trb.trb_type() == Some(TrbType::NoOp) && setup_td.trbs.len() == 1 {
        return Ok(noop_td(ep, bus, &setup_td));
    }
    let setup_trb = match SetupStageTrb::cast(first.trb) {
        Some(s)
            if setup_td.trbs.len() == 1 && first.trb.idt() && first.trb.transfer_length() == 8 =>
        {
            s
        }
        _ => {
            log::warn!(
                "slot {} EP0: TD at {:#x} does not start with a valid Setup Stage TRB",
                bus.slot_id,
                first.addr
            );
            trb_error(ep, bus, &first);
            return Ok(Step::Next);
        }
    };
    let setup = setup_trb.setup();
    let dir_in = setup.is_device_to_host();
    ep.last_target = first.trb.interrupter_target();
    // Setup, optional Data and Status stages are separate TDs; run them together.
    let mut cursor = setup_td.end;
    let mut data_trbs: Vec<RingTrb> = Vec::new();
    let status = loop {
        let td = match fetch(ep, cursor, bus, mem)? {
            Fetch::Ready(td) => td,
            Fetch::Empty | Fetch::Incomplete => return Ok(wait_on(ep, &first, None)),
            Fetch::Failed => return Ok(Step::Next),
        };
        let head = td.trbs[0];
        match head.trb.trb_type() {
            Some(TrbType::DataStage) if data_trbs.is_empty() => {
                if let Some(bad) = find_bad(&td.trbs, TrbType::DataStage, dir_in) {
                    trb_error(ep, bus, &bad);
                    return Ok(Step::Next);
                }
                if refuse_oversize(ep, bus, &td.trbs) {
                    return Ok(Step::Next);
                }
                cursor = td.end;
                data_trbs = td.trbs;
            }
            Some(TrbType::StatusStage) => break td,
            _ => {
                log::warn!(
                    "slot {} EP0: TRB at {:#x} (type {}) where a Data or Status Stage belongs",
                    bus.slot_id,
                    head.addr,
                    head.trb.type_field()
                );
                trb_error(ep, bus, &head);
                return Ok(Step::Next);
            }
        }
    };
    let total = data_len(&data_trbs);
    let mut buf = if dir_in {
        vec![0u8; total]
    } else {
        gather_out(&data_trbs, mem)?
    };
    let result = match bus.device.as_deref_mut() {
        Some(dev) => dev.control(setup, &mut buf, bus.now),
        None => TransferResult::TransactionError,
    };
    Ok(match result {
        TransferResult::Complete(n) => {
            let n = n.min(total);
            if dir_in {
                scatter_in(&data_trbs, &buf[..n], mem)?;
            }
            let code = if n < total {
                CompletionCode::ShortPacket
            } else {
                CompletionCode::Success
            };
            observe(bus, ep, Some(setup), total, &buf[..n.min(buf.len())], code);
            report_success(bus, ep, &setup_td.trbs, 8);
            report_success(bus, ep, &data_trbs, n);
            report_success(bus, ep, &status.trbs, 0);
            finish(ep, status.end)
        }
        TransferResult::Nak => wait_on(ep, &first, Some(BusTime(bus.now.0 + 1))),
        r => {
            observe(bus, ep, Some(setup), total, &[], error_code(r));
            let failing = if data_trbs.is_empty() {
                &status.trbs
            } else {
                &data_trbs
            };
            let at = report_error(bus, ep, failing, 0, error_code(r)).unwrap_or(first);
            ep.halt(at.at);
            Step::Next
        }
    })
}

fn isoch_step<M: GuestMemory>(
    ep: &mut Endpoint,
    bus: &mut Bus<'_>,
    mem: &M,
) -> Result<Step, DmaError> {
    let td = match fetch(ep, ep.ring, bus, mem)? {
        Fetch::Ready(td) => td,
        Fetch::Empty => {
            if ep.isoch_next.is_some_and(|t| t <= bus.uframe) {
                // §4.10.3.1: the service opportunity came and the ring had nothing.
                let code = if ep.ep_type.is_in() {
                    CompletionCode::RingOverrun
                } else {
                    CompletionCode::RingUnderrun
                };
                push(bus, ep, ep.last_target, 0, code, 0, true);
                ep.isoch_next = None;
            }
            return Ok(Step::Wait);
        }
        Fetch::Incomplete => return Ok(Step::Wait),
        Fetch::Failed => return Ok(Step::Next),
    };
    let first = td.trbs[0];
    if first.trb.trb_type() == Some(TrbType::NoOp) && td.trbs.len() == 1 {
        return Ok(noop_td(ep, bus, &td));
    }
    let dir_in = ep.ep_type.is_in();
    let isoch = match (
        IsochTrb::cast(first.trb),
        find_bad(&td.trbs, TrbType::Isoch, dir_in),
    ) {
        (Some(i), None) => i,
        (_, bad) => {
            trb_error(ep, bus, &bad.unwrap_or(first));
            return Ok(Step::Next);
        }
    };
    if refuse_oversize(ep, bus, &td.trbs) {
        return Ok(Step::Next);
    }
    ep.last_target = first.trb.interrupter_target();
    let total = data_len(&td.trbs);
    let due = if isoch.sia() {
        match ep.isoch_next {
            Some(t) => t.max(bus.uframe.saturating_sub(MAX_ISOCH_LAG)),
            None => bus.uframe,
        }
    } else {
        let frame = bus.uframe >> 3;
        let ahead = u64::from(isoch.frame_id()).wrapping_sub(frame) & 0x7ff;
        let behind = 2048 - ahead;
        if ahead < 1024 {
            (frame + ahead) * 8
        } else if behind <= LATE_FRAME_GRACE {
            log::debug!(
                "slot {} DCI {}: isoch TD at {:#x} for frame {} served {behind} frame(s) late (now {})",
                bus.slot_id,
                ep.dci,
                first.addr,
                isoch.frame_id(),
                frame & 0x7ff
            );
            bus.late_frame_tds += 1;
            bus.uframe
        } else {
            log::debug!(
                "slot {} DCI {}: isoch TD at {:#x} for frame {} missed (now {})",
                bus.slot_id,
                ep.dci,
                first.addr,
                isoch.frame_id(),
                frame & 0x7ff
            );
            observe(bus, ep, None, total, &[], CompletionCode::MissedService);
            event(bus, ep, &first, CompletionCode::MissedService, total);
            return Ok(finish(ep, td.end));
        }
    };
    if due > bus.uframe {
        ep.isoch_next = Some(due);
        return Ok(wait_on(ep, &first, None));
    }
    let num = ep.number();
    let mut buf = if dir_in {
        vec![0u8; total]
    } else {
        gather_out(&td.trbs, mem)?
    };
    let result = match bus.device.as_deref_mut() {
        None => TransferResult::TransactionError,
        Some(dev) if dir_in => dev.data_in(num, &mut buf, bus.now),
        Some(dev) => dev.data_out(num, &buf, bus.now),
    };
    match result {
        TransferResult::Complete(n) => {
            let n = n.min(total);
            if dir_in {
                scatter_in(&td.trbs, &buf[..n], mem)?;
            }
            let code = if n < total {
                CompletionCode::ShortPacket
            } else {
                CompletionCode::Success
            };
            observe(bus, ep, None, total, &buf[..n.min(buf.len())], code);
            report_success(bus, ep, &td.trbs, n);
        }
        // Isochronous transfers have no handshake: nothing came in, or the data went out.
        TransferResult::Nak => {
            let moved = if dir_in { &[][..] } else { &buf[..] };
            observe(bus, ep, None, total, moved, CompletionCode::Success);
            report_success(bus, ep, &td.trbs, if dir_in { 0 } else { total })
        }
        TransferResult::Stall | TransferResult::TransactionError => {
            observe(
                bus,
                ep,
                None,
                total,
                &[],
                CompletionCode::UsbTransactionError,
            );
            report_error(bus, ep, &td.trbs, 0, CompletionCode::UsbTransactionError);
        }
    }
    ep.isoch_next = Some(due + ep.interval);
    Ok(finish(ep, td.end))
}
