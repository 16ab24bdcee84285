//! Controller configuration: slot, interrupter and port counts, and the capability registers
//! (xHCI 1.2 §5.3, §7.2) they determine.

use super::port::Protocol;
use super::regs::{self, cap, xcap};

/// Errors in a [`Config`].
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// ERST Max above 15.
    #[error("ERST Max {0} is above 15")]
    ErstMax(u8),
    /// MaxIntrs outside 1..=127 (the runtime register block holds 127 sets).
    #[error("{0} interrupters; 1 to 127 are supported")]
    Interrupters(u16),
    /// MaxSlots of zero.
    #[error("MaxSlots must be at least 1")]
    Slots,
    /// No ports, or more than 32.
    #[error("{0} ports; 1 to 32 are supported")]
    Ports(usize),
}

/// What the controller looks like to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// MaxSlots (HCSPARAMS1 bits 7:0).
    pub max_slots: u8,
    /// MaxIntrs (HCSPARAMS1 bits 18:8); MSI-X vectors = interrupters.
    pub max_interrupters: u16,
    /// USB 2 root ports; they come first (port 1..).
    pub usb2_ports: u8,
    /// USB 3 root ports, after the USB 2 ones.
    pub usb3_ports: u8,
    /// ERST Max (HCSPARAMS2 bits 7:4): up to 2^ERST Max event ring segments.
    pub erst_max: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_slots: 32,
            max_interrupters: 16,
            usb2_ports: 2,
            usb3_ports: 2,
            erst_max: 4,
        }
    }
}

impl Config {
    /// Checks the limits the register layout imposes.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_slots == 0 {
            return Err(Error::Slots);
        }
        if !(1..=127).contains(&self.max_interrupters) {
            return Err(Error::Interrupters(self.max_interrupters));
        }
        let ports = self.ports();
        if !(1..=32).contains(&ports) {
            return Err(Error::Ports(ports));
        }
        if self.erst_max > 15 {
            return Err(Error::ErstMax(self.erst_max));
        }
        Ok(())
    }

    /// Total number of root ports.
    pub fn ports(&self) -> usize {
        usize::from(self.usb2_ports) + usize::from(self.usb3_ports)
    }

    /// Protocol of the zero-based port index `i`.
    pub fn protocol(&self, i: usize) -> Protocol {
        if i < usize::from(self.usb2_ports) {
            Protocol::Usb2
        } else {
            Protocol::Usb3
        }
    }

    /// The capability register dword at `offset` (dword-aligned, below CAPLENGTH).
    pub fn capability(&self, offset: u64) -> u32 {
        match offset {
            cap::CAPLENGTH_HCIVERSION => regs::CAP_LENGTH as u32 | (regs::HCI_VERSION << 16),
            cap::HCSPARAMS1 => {
                u32::from(self.max_slots)
                    | (u32::from(self.max_interrupters) << 8)
                    | ((self.ports() as u32) << 24)
            }
            cap::HCSPARAMS2 => cap::HCSP2_IST_ONE_FRAME | (u32::from(self.erst_max) << 4),
            cap::HCSPARAMS3 => 0,
            cap::HCCPARAMS1 => {
                cap::HCCP1_AC64 | cap::HCCP1_NSS | (((regs::XECP_BASE / 4) as u32) << 16)
            }
            cap::DBOFF => regs::DB_BASE as u32,
            cap::RTSOFF => regs::RT_BASE as u32,
            _ => 0,
        }
    }

    /// The extended capability dword at `offset` from the first one: a Supported Protocol
    /// capability for USB 2.0 and one for USB 3.0, each naming its port range (§7.2).
    pub fn extended_capability(&self, offset: u64) -> u32 {
        let usb3_present = self.usb3_ports > 0;
        let usb2_present = self.usb2_ports > 0;
        let caps: [(bool, u32, u8, u8); 2] = [
            (usb2_present, 0x02, 1, self.usb2_ports),
            (usb3_present, 0x03, self.usb2_ports + 1, self.usb3_ports),
        ];
        let present: Vec<_> = caps.iter().filter(|c| c.0).collect();
        let index = (offset / xcap::SUPPORTED_PROTOCOL_LEN) as usize;
        let Some(&&(_, major, first, count)) = present.get(index) else {
            return 0;
        };
        let last = index + 1 == present.len();
        let next = if last {
            0
        } else {
            (xcap::SUPPORTED_PROTOCOL_LEN / 4) as u32
        };
        match offset % xcap::SUPPORTED_PROTOCOL_LEN {
            0 => xcap::SUPPORTED_PROTOCOL | (next << 8) | (major << 24),
            4 => xcap::NAME_USB,
            8 => u32::from(first) | (u32::from(count) << 8),
            // Protocol Slot Type 0.
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_linux_sized() {
        let c = Config::default();
        c.validate().unwrap();
        let p1 = c.capability(cap::HCSPARAMS1);
        assert_eq!(p1 & 0xff, 32);
        assert_eq!((p1 >> 8) & 0x7ff, 16);
        assert_eq!(p1 >> 24, 4);
        assert_eq!(c.capability(0), 0x0110_0040);
        assert_eq!(c.capability(cap::HCCPARAMS1) >> 16, 0x200);
        assert_eq!(c.capability(cap::HCCPARAMS1) & 0b101, 1, "AC64=1 CSZ=0");
        assert_eq!((c.capability(cap::HCSPARAMS2) >> 4) & 0xf, 4);
    }

    #[test]
    fn limits() {
        let mut c = Config {
            max_interrupters: 128,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(Error::Interrupters(128)));
        c.max_interrupters = 9;
        c.usb2_ports = 0;
        c.usb3_ports = 0;
        assert_eq!(c.validate(), Err(Error::Ports(0)));
        c.usb3_ports = 33;
        assert_eq!(c.validate(), Err(Error::Ports(33)));
        c.usb3_ports = 1;
        c.max_slots = 0;
        assert_eq!(c.validate(), Err(Error::Slots));
        c.max_slots = 1;
        c.erst_max = 16;
        assert_eq!(c.validate(), Err(Error::ErstMax(16)));
    }

    #[test]
    fn supported_protocol_caps() {
        let c = Config::default();
        assert_eq!(c.extended_capability(0), 0x0200_0402);
        assert_eq!(c.extended_capability(4), 0x2042_5355);
        assert_eq!(c.extended_capability(8), 0x0201);
        assert_eq!(c.extended_capability(16), 0x0300_0002);
        assert_eq!(c.extended_capability(24), 0x0203);
        assert_eq!(c.extended_capability(32), 0);
        assert_eq!(c.protocol(1), Protocol::Usb2);
        assert_eq!(c.protocol(2), Protocol::Usb3);
        // Only USB 3 ports: one capability, with no next pointer.
        let d = Config {
            usb2_ports: 0,
            ..Config::default()
        };
        assert_eq!(d.extended_capability(0), 0x0300_0002);
        assert_eq!(d.extended_capability(8), 0x0201);
    }
}
