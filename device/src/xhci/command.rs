//! The command ring and the commands (xHCI 1.2 §4.6): slot and endpoint management on the
//! contexts in guest memory. Every completion goes to interrupter 0.

use vm_memory::GuestMemory;

use super::context::{
    input_ep_offset, EndpointState, InputControlContext, SlotState, CONTEXT_SIZE, INPUT_SLOT_OFFSET,
};
use super::controller::Controller;
use super::dma::{self, DmaError};
use super::endpoint::{self, Endpoint};
use super::regs::crcr;
use super::ring::{self, RingCursor, RingTrb};
use super::trb::{
    AddressDeviceCmd, CommandCompletionEvent, CompletionCode, ConfigureEndpointCmd,
    SetTrDequeueCmd, TransferEvent, TrbType,
};
use crate::usb::{SetupPacket, TransferResult};

/// Most commands run per doorbell; the rest run on the next tick.
pub const MAX_COMMANDS_PER_DOORBELL: usize = 64;

/// Command ring state (§4.6.1, CRCR §5.4.5).
#[derive(Clone, Copy, Debug, Default)]
pub struct CommandRing {
    /// Dequeue pointer and Ring Cycle State.
    pub cursor: RingCursor,
    /// CRR: set by the doorbell, cleared by Command Stop/Abort or R/S = 0.
    pub running: bool,
    /// The per-doorbell budget ran out; continue on the next tick.
    pub more: bool,
    /// A Command Stop/Abort came in the low dword: ignore the high dword that follows.
    skip_high: bool,
}

type Outcome = (CompletionCode, u8);

fn input_control<M: GuestMemory>(mem: &M, input: u64) -> Result<InputControlContext, DmaError> {
    let mut b = [0u8; CONTEXT_SIZE as usize];
    dma::read(mem, input, &mut b)?;
    Ok(InputControlContext::from_bytes(b))
}

impl Controller {
    pub(super) fn write_crcr<M: GuestMemory>(
        &mut self,
        mem: &M,
        high: bool,
        v: u32,
    ) -> Result<(), DmaError> {
        if high {
            if !self.cmd.running && !std::mem::take(&mut self.cmd.skip_high) {
                let d = &mut self.cmd.cursor.dequeue;
                *d = (*d & 0xffff_ffff) | (u64::from(v) << 32);
            }
            return Ok(());
        }
        let v = u64::from(v);
        if v & (crcr::CS | crcr::CA) != 0 {
            self.cmd.skip_high = true;
            if self.cmd.running {
                self.cmd.running = false;
                self.cmd.more = false;
                let ev = CommandCompletionEvent {
                    command: self.cmd.cursor.dequeue,
                    code: CompletionCode::CommandRingStopped,
                    slot_id: 0,
                };
                self.post_event(mem, 0, ev.to_trb(), true)?;
            }
            return Ok(());
        }
        if !self.cmd.running {
            let d = &mut self.cmd.cursor.dequeue;
            *d = (*d & !0xffff_ffff) | (v & crcr::PTR_MASK & 0xffff_ffff);
            self.cmd.cursor.cycle = v & crcr::RCS != 0;
        }
        Ok(())
    }

    pub(super) fn ring_command_doorbell<M: GuestMemory>(
        &mut self,
        mem: &M,
    ) -> Result<(), DmaError> {
        if !self.is_running() {
            log::debug!("xHCI: command doorbell while halted ignored");
            return Ok(());
        }
        self.cmd.running = true;
        self.run_commands(mem)
    }

    /// Runs up to [`MAX_COMMANDS_PER_DOORBELL`] commands from the command ring.
    pub(super) fn run_commands<M: GuestMemory>(&mut self, mem: &M) -> Result<(), DmaError> {
        self.cmd.more = false;
        for _ in 0..MAX_COMMANDS_PER_DOORBELL {
            if !self.cmd.running || !self.is_running() {
                return Ok(());
            }
            let t = match self.cmd.cursor.fetch(mem) {
                Ok(Some(t)) => t,
                Ok(None) => return Ok(()),
                Err(ring::Error::Dma(e)) => return Err(e),
                Err(ring::Error::LinkLoop(addr)) => {
                    log::warn!("xHCI: command ring link TRB loop at {addr:#x}");
                    let ev = CommandCompletionEvent {
                        command: addr,
                        code: CompletionCode::TrbError,
                        slot_id: 0,
                    };
                    // The ring cannot advance; stop it until software sets a new pointer.
                    self.cmd.running = false;
                    return self.post_event(mem, 0, ev.to_trb(), true);
                }
            };
            self.cmd.cursor = t.next;
            let (code, slot_id) = self.execute(mem, &t)?;
            self.stats.commands += 1;
            let ev = CommandCompletionEvent {
                command: t.addr,
                code,
                slot_id,
            };
            self.post_event(mem, 0, ev.to_trb(), true)?;
        }
        self.cmd.more = true;
        Ok(())
    }

    fn execute<M: GuestMemory>(&mut self, mem: &M, t: &RingTrb) -> Result<Outcome, DmaError> {
        let trb = t.trb;
        let id = trb.slot_id();
        let outcome = match trb.trb_type() {
            Some(TrbType::EnableSlot) => {
                let max_en = self.config_reg as u8;
                match self.slots.enable(max_en) {
                    Ok(id) => (CompletionCode::Success, id),
                    Err(code) => (code, 0),
                }
            }
            Some(TrbType::DisableSlot) => match self.slots.disable_checked(id) {
                Ok(()) => (CompletionCode::Success, id),
                Err(code) => (code, id),
            },
            Some(TrbType::AddressDevice) => self.address_device(mem, AddressDeviceCmd(trb))?,
            Some(TrbType::ConfigureEndpoint) => {
                self.configure_endpoint(mem, ConfigureEndpointCmd(trb))?
            }
            Some(TrbType::EvaluateContext) => self.evaluate_context(mem, trb.parameter(), id)?,
            Some(TrbType::ResetEndpoint) => self.reset_endpoint(mem, id, trb.endpoint_id())?,
            Some(TrbType::StopEndpoint) => self.stop_endpoint(mem, id, trb.endpoint_id())?,
            Some(TrbType::SetTrDequeue) => self.set_tr_dequeue(mem, SetTrDequeueCmd(trb))?,
            Some(TrbType::ResetDevice) => self.reset_device(mem, id)?,
            Some(TrbType::NoOpCommand) => (CompletionCode::Success, 0),
            _ => {
                log::warn!(
                    "xHCI: command TRB type {} at {:#x} not supported; TRB Error",
                    trb.type_field(),
                    t.addr
                );
                (CompletionCode::TrbError, id)
            }
        };
        if outcome.0 != CompletionCode::Success {
            log::warn!(
                "xHCI: command type {} for slot {id} failed: {:?}",
                trb.type_field(),
                outcome.0
            );
        }
        Ok(outcome)
    }

    fn address_device<M: GuestMemory>(
        &mut self,
        mem: &M,
        cmd: AddressDeviceCmd,
    ) -> Result<Outcome, DmaError> {
        let id = cmd.0.slot_id();
        let bsr = cmd.bsr();
        let state = match self.slots.get_mut(id) {
            Ok(s) => s.state,
            Err(code) => return Ok((code, id)),
        };
        let allowed = match state {
            SlotState::DisabledEnabled => true,
            SlotState::Default => !bsr,
            _ => false,
        };
        if !allowed {
            return Ok((CompletionCode::ContextStateError, id));
        }
        let input = cmd.input_context();
        let icc = input_control(mem, input)?;
        if !(icc.add(0) && icc.add(1)) {
            log::warn!("xHCI: Address Device without A0 and A1");
            return Ok((CompletionCode::ParameterError, id));
        }
        let mut slot_ctx = dma::read_slot_ctx(mem, input + INPUT_SLOT_OFFSET)?;
        let mut ep0_ctx = dma::read_ep_ctx(mem, input + input_ep_offset(1))?;
        let port = slot_ctx.root_hub_port();
        let Some(pi) = usize::from(port)
            .checked_sub(1)
            .filter(|&i| i < self.ports.len())
        else {
            log::warn!("xHCI: Address Device names root port {port}, which does not exist");
            return Ok((CompletionCode::ParameterError, id));
        };
        let ep0 = match Endpoint::from_context(1, &ep0_ctx, slot_ctx.interrupter_target()) {
            Ok(ep) => ep,
            Err(e) => {
                log::warn!("xHCI: Address Device: {e}");
                return Ok((CompletionCode::ParameterError, id));
            }
        };
        let output = dma::read_u64(mem, self.dcbaap + 8 * u64::from(id))? & !0x3f;
        if output == 0 {
            log::warn!("xHCI: Address Device: DCBAA entry for slot {id} is 0");
            return Ok((CompletionCode::ParameterError, id));
        }
        if !self.ports[pi].is_enabled() {
            return Ok((CompletionCode::UsbTransactionError, id));
        }
        if !bsr {
            let setup = SetupPacket {
                request_type: 0,
                request: 5,
                value: u16::from(id),
                index: 0,
                length: 0,
            };
            let now = self.now;
            let r = self.ports[pi]
                .device_mut()
                .map_or(TransferResult::TransactionError, |d| {
                    d.control(setup, &mut [], now)
                });
            if !matches!(r, TransferResult::Complete(_)) {
                log::warn!("xHCI: SET_ADDRESS {id} answered {r:?}");
                return Ok((CompletionCode::UsbTransactionError, id));
            }
        }
        let (new_state, address) = if bsr {
            (SlotState::Default, 0)
        } else {
            (SlotState::Addressed, id)
        };
        slot_ctx.set_state(new_state, address);
        slot_ctx.set_context_entries(1);
        ep0_ctx.set_state(EndpointState::Running);
        dma::write_slot_ctx(mem, output, &slot_ctx)?;
        dma::write_ep_ctx(mem, output + CONTEXT_SIZE, &ep0_ctx)?;
        if let Ok(slot) = self.slots.get_mut(id) {
            slot.state = new_state;
            slot.port = port;
            slot.output = output;
            slot.endpoints = std::array::from_fn(|_| None);
            slot.endpoints[0] = Some(ep0);
        }
        Ok((CompletionCode::Success, id))
    }

    fn configure_endpoint<M: GuestMemory>(
        &mut self,
        mem: &M,
        cmd: ConfigureEndpointCmd,
    ) -> Result<Outcome, DmaError> {
        let id = cmd.0.slot_id();
        let slot = match self.slots.get_mut(id) {
            Ok(s) => s,
            Err(code) => return Ok((code, id)),
        };
        if !matches!(slot.state, SlotState::Addressed | SlotState::Configured) {
            return Ok((CompletionCode::ContextStateError, id));
        }
        let output = slot.output;
        if cmd.deconfigure() {
            for dci in 2..=31u8 {
                if slot.endpoints[usize::from(dci) - 1].take().is_some() {
                    endpoint::write_disabled(mem, output, dci)?;
                }
            }
        } else {
            let input = cmd.input_context();
            let icc = input_control(mem, input)?;
            let target = dma::read_slot_ctx(mem, output)?.interrupter_target();
            let mut added = Vec::new();
            for dci in (2..=31u8).filter(|&d| icc.add(d)) {
                let ctx = dma::read_ep_ctx(mem, input + input_ep_offset(dci))?;
                match Endpoint::from_context(dci, &ctx, target) {
                    Ok(ep) => added.push((dci, ctx, ep)),
                    Err(e) => {
                        log::warn!("xHCI: Configure Endpoint slot {id}: {e}");
                        return Ok((CompletionCode::ParameterError, id));
                    }
                }
            }
            for dci in (2..=31u8).filter(|&d| icc.drop(d)) {
                if slot.endpoints[usize::from(dci) - 1].take().is_some() {
                    endpoint::write_disabled(mem, output, dci)?;
                }
            }
            for (dci, mut ctx, ep) in added {
                ctx.set_state(EndpointState::Running);
                dma::write_ep_ctx(mem, output + super::context::device_ep_offset(dci), &ctx)?;
                slot.endpoints[usize::from(dci) - 1] = Some(ep);
            }
        }
        slot.state = if slot.has_data_endpoints() {
            SlotState::Configured
        } else {
            SlotState::Addressed
        };
        let mut out = dma::read_slot_ctx(mem, output)?;
        out.set_context_entries(slot.last_dci());
        out.set_state(slot.state, out.device_address());
        dma::write_slot_ctx(mem, output, &out)?;
        Ok((CompletionCode::Success, id))
    }

    fn evaluate_context<M: GuestMemory>(
        &mut self,
        mem: &M,
        input: u64,
        id: u8,
    ) -> Result<Outcome, DmaError> {
        let slot = match self.slots.get_mut(id) {
            Ok(s) => s,
            Err(code) => return Ok((code, id)),
        };
        if slot.state == SlotState::DisabledEnabled {
            return Ok((CompletionCode::ContextStateError, id));
        }
        let output = slot.output;
        let input = input & !0xf;
        let icc = input_control(mem, input)?;
        if icc.add(0) {
            let src = dma::read_slot_ctx(mem, input + INPUT_SLOT_OFFSET)?;
            let mut out = dma::read_slot_ctx(mem, output)?;
            out.take_evaluable(&src);
            dma::write_slot_ctx(mem, output, &out)?;
        }
        if icc.add(1) {
            let src = dma::read_ep_ctx(mem, input + input_ep_offset(1))?;
            let mut out = dma::read_ep_ctx(mem, output + CONTEXT_SIZE)?;
            out.set_max_packet_size(src.max_packet_size());
            dma::write_ep_ctx(mem, output + CONTEXT_SIZE, &out)?;
        }
        Ok((CompletionCode::Success, id))
    }

    /// Looks up slot `id`'s endpoint `dci` for an endpoint command.
    fn endpoint_for_command(
        &mut self,
        id: u8,
        dci: u8,
    ) -> Result<(u64, &mut Endpoint), CompletionCode> {
        if dci == 0 {
            return Err(CompletionCode::TrbError);
        }
        let slot = self.slots.get_mut(id)?;
        let output = slot.output;
        let ep = slot
            .endpoint_mut(dci)
            .ok_or(CompletionCode::EndpointNotEnabled)?;
        Ok((output, ep))
    }

    fn reset_endpoint<M: GuestMemory>(
        &mut self,
        mem: &M,
        id: u8,
        dci: u8,
    ) -> Result<Outcome, DmaError> {
        let (output, ep) = match self.endpoint_for_command(id, dci) {
            Ok(x) => x,
            Err(code) => return Ok((code, id)),
        };
        if ep.state != EndpointState::Halted {
            return Ok((CompletionCode::ContextStateError, id));
        }
        ep.set_state(EndpointState::Stopped);
        ep.write_back(mem, output)?;
        Ok((CompletionCode::Success, id))
    }

    fn stop_endpoint<M: GuestMemory>(
        &mut self,
        mem: &M,
        id: u8,
        dci: u8,
    ) -> Result<Outcome, DmaError> {
        let (output, ep) = match self.endpoint_for_command(id, dci) {
            Ok(x) => x,
            Err(code) => return Ok((code, id)),
        };
        if ep.state != EndpointState::Running {
            return Ok((CompletionCode::ContextStateError, id));
        }
        let in_progress = ep.in_progress;
        ep.set_state(EndpointState::Stopped);
        ep.write_back(mem, output)?;
        // §4.6.9: a TD in progress ends with a Stopped Transfer Event, on its own interrupter.
        if let Some(td) = in_progress {
            let ev = TransferEvent {
                pointer: td.trb,
                length: td.length,
                code: CompletionCode::Stopped,
                event_data: false,
                endpoint_id: dci,
                slot_id: id,
            };
            self.post_event(mem, td.target, ev.to_trb(), true)?;
        }
        Ok((CompletionCode::Success, id))
    }

    fn set_tr_dequeue<M: GuestMemory>(
        &mut self,
        mem: &M,
        cmd: SetTrDequeueCmd,
    ) -> Result<Outcome, DmaError> {
        let id = cmd.0.slot_id();
        let (output, ep) = match self.endpoint_for_command(id, cmd.0.endpoint_id()) {
            Ok(x) => x,
            Err(code) => return Ok((code, id)),
        };
        if !matches!(ep.state, EndpointState::Stopped | EndpointState::Error) {
            return Ok((CompletionCode::ContextStateError, id));
        }
        if cmd.pointer() == 0 {
            log::warn!("xHCI: Set TR Dequeue Pointer to 0");
            return Ok((CompletionCode::TrbError, id));
        }
        ep.ring = RingCursor::new(cmd.pointer(), cmd.dcs());
        ep.set_state(EndpointState::Stopped);
        ep.write_back(mem, output)?;
        Ok((CompletionCode::Success, id))
    }

    fn reset_device<M: GuestMemory>(&mut self, mem: &M, id: u8) -> Result<Outcome, DmaError> {
        let slot = match self.slots.get_mut(id) {
            Ok(s) => s,
            Err(code) => return Ok((code, id)),
        };
        if slot.state == SlotState::DisabledEnabled {
            return Ok((CompletionCode::ContextStateError, id));
        }
        let output = slot.output;
        for dci in 2..=31u8 {
            if slot.endpoints[usize::from(dci) - 1].take().is_some() {
                endpoint::write_disabled(mem, output, dci)?;
            }
        }
        slot.state = SlotState::Default;
        let mut out = dma::read_slot_ctx(mem, output)?;
        out.set_state(SlotState::Default, 0);
        out.set_context_entries(1);
        dma::write_slot_ctx(mem, output, &out)?;
        Ok((CompletionCode::Success, id))
    }
}
