//! Root hub ports (xHCI 1.2 §4.19, §5.4.8): PORTSC, link state, reset, warm reset, attach and
//! detach of device models.

use super::regs::{pls, portsc};
use crate::usb::{UsbDevice, UsbSpeed};

/// Errors from attaching or detaching devices.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The port number names no port.
    #[error("there is no port {0}")]
    NoSuchPort(u8),
    /// The port already has a device.
    #[error("port {0} already has a device")]
    Occupied(u8),
    /// A SuperSpeed device on a USB 2 port, or a slower one on a USB 3 port.
    #[error("a {speed:?} device cannot attach to {protocol:?} port {port}")]
    WrongSpeed {
        /// Port number.
        port: u8,
        /// The port's protocol.
        protocol: Protocol,
        /// The device's speed.
        speed: UsbSpeed,
    },
}

/// The USB protocol a root port speaks, as its Supported Protocol capability says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// USB 2.0: low, full and high speed.
    Usb2,
    /// USB 3.x: SuperSpeed.
    Usb3,
}

impl Protocol {
    /// True when a device of `speed` can connect to a port of this protocol.
    pub fn accepts(self, speed: UsbSpeed) -> bool {
        match self {
            Protocol::Usb2 => !speed.is_superspeed(),
            Protocol::Usb3 => speed.is_superspeed(),
        }
    }
}

/// Protocol Speed ID of `speed` with the default PSI table (§7.2.2.1.1).
pub fn speed_id(speed: UsbSpeed) -> u32 {
    match speed {
        UsbSpeed::Full => 1,
        UsbSpeed::Low => 2,
        UsbSpeed::High => 3,
        UsbSpeed::Super => 4,
    }
}

/// One root hub port and the device on it.
#[derive(Debug)]
pub struct Port {
    number: u8,
    protocol: Protocol,
    device: Option<Box<dyn UsbDevice>>,
    portsc: u32,
    pmsc: u32,
    hlpmc: u32,
    /// Times software put the link into U3 (suspend).
    suspends: u64,
}

/// Bits of a PORTSC write that software owns and reads back.
const PORTSC_RW: u32 = portsc::PIC_MASK | portsc::WAKE_MASK;

impl Port {
    /// Port `number` (one-based) of `protocol`, powered, nothing connected.
    pub fn new(number: u8, protocol: Protocol) -> Self {
        let mut p = Port {
            number,
            protocol,
            device: None,
            portsc: 0,
            pmsc: 0,
            hlpmc: 0,
            suspends: 0,
        };
        p.reset_registers();
        p
    }

    /// Times software suspended the link (wrote U3 while it was not in U3).
    pub fn suspends(&self) -> u64 {
        self.suspends
    }

    /// One-based port number.
    pub fn number(&self) -> u8 {
        self.number
    }

    /// The port's protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The attached device, if any.
    pub fn device_mut(&mut self) -> Option<&mut (dyn UsbDevice + 'static)> {
        self.device.as_deref_mut()
    }

    /// True when a device is attached and the port is enabled (it can carry transfers).
    pub fn is_enabled(&self) -> bool {
        self.device.is_some() && self.portsc & portsc::PED != 0
    }

    /// Returns the registers to their state after a host controller reset; an attached device
    /// shows as a new connection.
    pub fn reset_registers(&mut self) {
        self.portsc = portsc::PP | (pls::RX_DETECT << portsc::PLS_SHIFT);
        self.pmsc = 0;
        self.hlpmc = 0;
        if self.device.is_some() {
            self.show_connect();
        }
    }

    fn set_pls(&mut self, v: u32) {
        self.portsc = (self.portsc & !(portsc::PLS_MASK << portsc::PLS_SHIFT))
            | ((v & portsc::PLS_MASK) << portsc::PLS_SHIFT);
    }

    fn pls(&self) -> u32 {
        (self.portsc >> portsc::PLS_SHIFT) & portsc::PLS_MASK
    }

    fn set_speed(&mut self, id: u32) {
        self.portsc = (self.portsc & !(0xf << portsc::SPEED_SHIFT)) | (id << portsc::SPEED_SHIFT);
    }

    /// Sets change bits; returns the ones that went from 0 to 1.
    fn raise(&mut self, bits: u32) -> u32 {
        let new = bits & !self.portsc;
        self.portsc |= bits;
        new
    }

    fn show_connect(&mut self) -> u32 {
        let Some(speed) = self.device.as_ref().map(|d| d.speed()) else {
            return 0;
        };
        self.portsc |= portsc::CCS;
        self.set_speed(speed_id(speed));
        match self.protocol {
            // A USB 2 port waits for software to reset it before it is enabled.
            Protocol::Usb2 => {
                self.portsc &= !portsc::PED;
                self.set_pls(pls::POLLING);
            }
            // A USB 3 port trains the link and enables itself (§4.19.1.2).
            Protocol::Usb3 => {
                self.portsc |= portsc::PED;
                self.set_pls(pls::U0);
            }
        }
        self.raise(portsc::CSC)
    }

    /// Attaches `device`. Returns the change bits that went to 1 (for a Port Status Change
    /// Event).
    pub fn attach(&mut self, device: Box<dyn UsbDevice>) -> Result<u32, Error> {
        if self.device.is_some() {
            return Err(Error::Occupied(self.number));
        }
        let speed = device.speed();
        if !self.protocol.accepts(speed) {
            return Err(Error::WrongSpeed {
                port: self.number,
                protocol: self.protocol,
                speed,
            });
        }
        self.device = Some(device);
        Ok(self.show_connect())
    }

    /// Detaches and returns the device; the second value is the change bits that went to 1.
    pub fn detach(&mut self) -> (Option<Box<dyn UsbDevice>>, u32) {
        let dev = self.device.take();
        if dev.is_none() {
            return (None, 0);
        }
        self.portsc &= !(portsc::CCS | portsc::PED | portsc::PR);
        self.set_speed(0);
        self.set_pls(pls::RX_DETECT);
        let changed = self.raise(portsc::CSC);
        (dev, changed)
    }

    /// PORTSC as the guest reads it.
    pub fn read_portsc(&self) -> u32 {
        self.portsc
    }

    /// Reads the dword at `offset` in the port register set.
    pub fn read(&self, offset: u64) -> u32 {
        match offset {
            0x0 => self.portsc,
            0x4 => self.pmsc,
            0xc => self.hlpmc,
            // PORTLI: no link errors are ever counted.
            _ => 0,
        }
    }

    /// Writes the dword at `offset`; returns change bits that went from 0 to 1.
    pub fn write(&mut self, offset: u64, value: u32) -> u32 {
        match offset {
            0x0 => self.write_portsc(value),
            0x4 => {
                self.pmsc = value;
                0
            }
            0xc => {
                self.hlpmc = value;
                0
            }
            _ => 0,
        }
    }

    fn write_portsc(&mut self, v: u32) -> u32 {
        self.portsc &= !(v & portsc::CHANGE_BITS);
        self.portsc = (self.portsc & !PORTSC_RW) | (v & PORTSC_RW);
        let mut changed = 0;
        if v & portsc::PED != 0 && self.portsc & portsc::PED != 0 {
            self.portsc &= !portsc::PED;
            if self.protocol == Protocol::Usb2 {
                self.set_pls(pls::DISABLED);
            }
        }
        if v & portsc::WPR != 0 && self.protocol == Protocol::Usb3 {
            changed |= self.bus_reset(portsc::PRC | portsc::WRC);
        } else if v & portsc::PR != 0 {
            changed |= self.bus_reset(portsc::PRC);
        }
        if v & portsc::LWS != 0 {
            changed |= self.write_link_state((v >> portsc::PLS_SHIFT) & portsc::PLS_MASK);
        }
        changed
    }

    /// A port reset completes at once: the device sees a bus reset, the port is enabled in U0.
    fn bus_reset(&mut self, change: u32) -> u32 {
        if let Some(dev) = self.device.as_deref_mut() {
            dev.reset();
            self.portsc |= portsc::PED;
            self.set_pls(pls::U0);
        }
        self.portsc &= !portsc::PR;
        self.raise(change)
    }

    fn write_link_state(&mut self, target: u32) -> u32 {
        let old = self.pls();
        match target {
            pls::U0 if old == pls::U3 || old == pls::RESUME => {
                self.set_pls(pls::U0);
                self.raise(portsc::PLC)
            }
            pls::U0 | pls::U2 | pls::U3 | pls::RESUME => {
                if target == pls::U3 && old != pls::U3 {
                    self.suspends += 1;
                }
                self.set_pls(target);
                0
            }
            pls::RX_DETECT | pls::DISABLED if self.protocol == Protocol::Usb3 => {
                self.portsc &= !portsc::PED;
                self.set_pls(target);
                0
            }
            _ => {
                log::warn!("port {}: link state write {target} ignored", self.number);
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usb::{BusTime, SetupPacket, TransferResult};

    #[derive(Debug)]
    struct Dummy(UsbSpeed, u32);

    impl UsbDevice for Dummy {
        fn speed(&self) -> UsbSpeed {
            self.0
        }
        fn reset(&mut self) {
            self.1 += 1;
        }
        fn control(&mut self, _: SetupPacket, _: &mut [u8], _: BusTime) -> TransferResult {
            TransferResult::Stall
        }
        fn data_out(&mut self, _: u8, _: &[u8], _: BusTime) -> TransferResult {
            TransferResult::Stall
        }
        fn data_in(&mut self, _: u8, _: &mut [u8], _: BusTime) -> TransferResult {
            TransferResult::Stall
        }
    }

    fn pls_of(p: &Port) -> u32 {
        (p.read_portsc() >> portsc::PLS_SHIFT) & 0xf
    }

    #[test]
    fn usb2_connect_reset_disconnect() {
        let mut p = Port::new(1, Protocol::Usb2);
        assert_eq!(p.read_portsc(), portsc::PP | (pls::RX_DETECT << 5));
        let ch = p.attach(Box::new(Dummy(UsbSpeed::High, 0))).unwrap();
        assert_eq!(ch, portsc::CSC);
        let sc = p.read_portsc();
        assert!(sc & portsc::CCS != 0 && sc & portsc::PED == 0);
        assert_eq!((sc >> 10) & 0xf, 3);
        assert_eq!(pls_of(&p), pls::POLLING);
        // CSC is write-1-to-clear; writing back the value read clears only change bits.
        assert_eq!(p.write(0, portsc::CSC | portsc::PP), 0);
        assert_eq!(p.read_portsc() & portsc::CSC, 0);
        assert_eq!(p.write(0, portsc::PR | portsc::PP), portsc::PRC);
        let sc = p.read_portsc();
        assert!(sc & portsc::PED != 0 && sc & portsc::PR == 0 && sc & portsc::PRC != 0);
        assert_eq!(pls_of(&p), pls::U0);
        assert!(p.is_enabled());
        let (dev, ch) = p.detach();
        assert!(dev.is_some());
        assert_eq!(ch, portsc::CSC);
    }

    #[test]
    fn detach_raises_csc() {
        let mut p = Port::new(1, Protocol::Usb2);
        p.attach(Box::new(Dummy(UsbSpeed::Full, 0))).unwrap();
        p.write(0, portsc::CSC);
        let (_, ch) = p.detach();
        assert_eq!(ch, portsc::CSC);
        assert_eq!(p.read_portsc() & (portsc::CCS | portsc::PED), 0);
        assert!(p.detach().0.is_none());
    }

    #[test]
    fn usb3_enables_itself_and_warm_resets() {
        let mut p = Port::new(3, Protocol::Usb3);
        p.attach(Box::new(Dummy(UsbSpeed::Super, 0))).unwrap();
        assert!(p.read_portsc() & portsc::PED != 0);
        assert_eq!(pls_of(&p), pls::U0);
        let ch = p.write(0, portsc::WPR);
        assert_eq!(ch, portsc::PRC | portsc::WRC);
        // PED on a USB2 port: write 1 disables.
        let mut q = Port::new(1, Protocol::Usb2);
        q.attach(Box::new(Dummy(UsbSpeed::High, 0))).unwrap();
        q.write(0, portsc::PR);
        q.write(0, portsc::PED);
        assert_eq!(q.read_portsc() & portsc::PED, 0);
    }

    #[test]
    fn wrong_speed_and_occupied() {
        let mut p = Port::new(1, Protocol::Usb2);
        assert!(matches!(
            p.attach(Box::new(Dummy(UsbSpeed::Super, 0))),
            Err(Error::WrongSpeed { .. })
        ));
        p.attach(Box::new(Dummy(UsbSpeed::Low, 0))).unwrap();
        assert_eq!(
            p.attach(Box::new(Dummy(UsbSpeed::Low, 0))).unwrap_err(),
            Error::Occupied(1)
        );
        let mut q = Port::new(3, Protocol::Usb3);
        assert!(q.attach(Box::new(Dummy(UsbSpeed::High, 0))).is_err());
    }

    #[test]
    fn suspend_resume_sets_plc() {
        let mut p = Port::new(1, Protocol::Usb2);
        p.attach(Box::new(Dummy(UsbSpeed::High, 0))).unwrap();
        p.write(0, portsc::PR);
        p.write(0, portsc::LWS | (pls::U3 << 5));
        assert_eq!(pls_of(&p), pls::U3);
        assert_eq!(p.suspends(), 1);
        p.write(0, portsc::LWS | (pls::RESUME << 5));
        assert_eq!(p.write(0, portsc::LWS | (pls::U0 << 5)), portsc::PLC);
        assert_eq!(pls_of(&p), pls::U0);
        // PLS without LWS is ignored.
        p.write(0, pls::U3 << 5);
        assert_eq!(pls_of(&p), pls::U0);
    }
}
