//! Device slots (xHCI 1.2 §4.5.3): which slots are enabled, their state, the root port they
//! reach and their endpoints. The slot and endpoint contexts proper live in guest memory.

use super::context::SlotState;
use super::endpoint::Endpoint;
use super::trb::CompletionCode;

/// One enabled device slot.
#[derive(Clone, Debug)]
pub struct Slot {
    /// Slot State as last written to the output slot context.
    pub state: SlotState,
    /// One-based root hub port (0 until Address Device).
    pub port: u8,
    /// Output device context address, read from the DCBAA at Address Device.
    pub output: u64,
    /// Endpoints by DCI - 1.
    pub endpoints: [Option<Endpoint>; 31],
}

impl Slot {
    fn new() -> Self {
        Slot {
            state: SlotState::DisabledEnabled,
            port: 0,
            output: 0,
            endpoints: std::array::from_fn(|_| None),
        }
    }

    /// The endpoint with Device Context Index `dci` (1..=31), if enabled.
    pub fn endpoint_mut(&mut self, dci: u8) -> Option<&mut Endpoint> {
        let i = usize::from(dci).checked_sub(1)?;
        self.endpoints.get_mut(i)?.as_mut()
    }

    /// Index of the last enabled endpoint context (Context Entries).
    pub fn last_dci(&self) -> u8 {
        self.endpoints
            .iter()
            .rposition(Option::is_some)
            .map_or(1, |i| i as u8 + 1)
    }

    /// True when some endpoint other than the control endpoint is enabled.
    pub fn has_data_endpoints(&self) -> bool {
        self.endpoints[1..].iter().any(Option::is_some)
    }
}

/// The slots 1..=MaxSlots.
#[derive(Clone, Debug)]
pub struct SlotTable {
    slots: Vec<Option<Slot>>,
}

impl SlotTable {
    /// `max` slots, all disabled.
    pub fn new(max: u8) -> Self {
        SlotTable {
            slots: vec![None; usize::from(max)],
        }
    }

    /// Enables the lowest free slot among the first `enabled_max`; its ID, or No Slots
    /// Available Error.
    pub fn enable(&mut self, enabled_max: u8) -> Result<u8, CompletionCode> {
        let limit = usize::from(enabled_max).min(self.slots.len());
        let i = self.slots[..limit]
            .iter()
            .position(Option::is_none)
            .ok_or(CompletionCode::NoSlotsAvailable)?;
        self.slots[i] = Some(Slot::new());
        Ok(i as u8 + 1)
    }

    /// Disables slot `id`.
    pub fn disable(&mut self, id: u8) -> Option<Slot> {
        self.slots.get_mut(usize::from(id).checked_sub(1)?)?.take()
    }

    /// Disables slot `id` if it is enabled; the error codes are those of [`SlotTable::get_mut`].
    pub fn disable_checked(&mut self, id: u8) -> Result<(), CompletionCode> {
        self.get_mut(id)?;
        self.disable(id);
        Ok(())
    }

    /// The enabled slot `id`: TRB Error for an ID out of range (as QEMU answers), Slot Not
    /// Enabled Error for a disabled slot.
    pub fn get_mut(&mut self, id: u8) -> Result<&mut Slot, CompletionCode> {
        let i = usize::from(id)
            .checked_sub(1)
            .filter(|&i| i < self.slots.len())
            .ok_or(CompletionCode::TrbError)?;
        self.slots[i].as_mut().ok_or(CompletionCode::SlotNotEnabled)
    }

    /// Iterates over enabled slots with their IDs.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u8, &mut Slot)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.as_mut().map(|s| (i as u8 + 1, s)))
    }

    /// Disables every slot.
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enable_until_full() {
        let mut t = SlotTable::new(2);
        assert_eq!(t.enable(2), Ok(1));
        assert_eq!(t.enable(2), Ok(2));
        assert_eq!(t.enable(2), Err(CompletionCode::NoSlotsAvailable));
        assert!(t.disable(1).is_some());
        assert_eq!(t.enable(2), Ok(1));
        // CONFIG.MaxSlotsEn limits the search.
        let mut u = SlotTable::new(8);
        assert_eq!(u.enable(0), Err(CompletionCode::NoSlotsAvailable));
    }

    #[test]
    fn lookup_errors() {
        let mut t = SlotTable::new(4);
        assert_eq!(t.get_mut(0).unwrap_err(), CompletionCode::TrbError);
        assert_eq!(t.get_mut(5).unwrap_err(), CompletionCode::TrbError);
        assert_eq!(t.get_mut(1).unwrap_err(), CompletionCode::SlotNotEnabled);
        t.enable(4).unwrap();
        assert!(t.get_mut(1).is_ok());
        assert_eq!(t.iter_mut().count(), 1);
        assert!(t.disable(0).is_none());
        t.clear();
        assert_eq!(t.iter_mut().count(), 0);
    }

    #[test]
    fn context_entries() {
        let mut t = SlotTable::new(1);
        t.enable(1).unwrap();
        let s = t.get_mut(1).unwrap();
        assert_eq!(s.last_dci(), 1);
        assert!(!s.has_data_endpoints());
        assert!(s.endpoint_mut(0).is_none());
        assert!(s.endpoint_mut(32).is_none());
    }
}
