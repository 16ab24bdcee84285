//! The HID interface's behaviour: queued button reports on the interrupt IN endpoint, the class
//! requests usbhid sends, and the class descriptors it reads.

use std::collections::VecDeque;

use log::debug;

use super::report::{hid_descriptor, Button, REPORT_DESCRIPTOR};
use super::{request, CLASS_HID, DT_HID, DT_REPORT};
use crate::usb::descriptor::{endpoint_attributes, EndpointDescriptor, InterfaceDescriptor};
use crate::usb::descriptor::{SyncType, TransferType, UsageType};
use crate::usb::request::reply;
use crate::usb::{AlternateSetting, EndpointEntry, SetupPacket, TransferResult, UsbSpeed};

/// Reports waiting for the host beyond which presses are refused (a host that never polls must
/// not make the queue grow without bound).
pub const MAX_QUEUED_REPORTS: usize = 64;

/// HID input report type in GET_REPORT's wValue high byte.
const REPORT_TYPE_INPUT: u8 = 1;

/// One HID consumer-control interface with its interrupt IN endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HidButtons {
    interface: u8,
    endpoint: u8,
    queue: VecDeque<u8>,
    last: u8,
    idle: u8,
    sent: u64,
}

impl HidButtons {
    /// The interface numbered `interface`, reporting on IN endpoint `endpoint` (bit 7 set).
    pub fn new(interface: u8, endpoint: u8) -> Self {
        HidButtons {
            interface,
            endpoint: endpoint | EndpointDescriptor::DIR_IN,
            queue: VecDeque::new(),
            last: 0,
            idle: 0,
            sent: 0,
        }
    }

    /// bInterfaceNumber.
    pub fn interface(&self) -> u8 {
        self.interface
    }

    /// The interrupt IN endpoint's address.
    pub fn endpoint(&self) -> u8 {
        self.endpoint
    }

    /// The interface descriptor, the HID descriptor and the endpoint, for the configuration.
    /// The endpoint is polled every 8 ms at either speed.
    pub fn alternate_setting(&self, speed: UsbSpeed) -> AlternateSetting {
        let interval = match speed {
            UsbSpeed::Full | UsbSpeed::Low => 8,   // frames
            UsbSpeed::High | UsbSpeed::Super => 7, // 2^(7-1) microframes
        };
        AlternateSetting {
            interface: InterfaceDescriptor {
                number: self.interface,
                alternate: 0,
                class: CLASS_HID,
                subclass: 0, // no boot interface
                protocol: 0,
                string: 0,
            },
            class_specific: hid_descriptor().to_vec(),
            endpoints: vec![EndpointEntry {
                descriptor: EndpointDescriptor {
                    address: self.endpoint,
                    attributes: endpoint_attributes(
                        TransferType::Interrupt,
                        SyncType::None,
                        UsageType::Data,
                    ),
                    max_packet_size: 8,
                    interval,
                    audio: None,
                },
                class_specific: vec![],
            }],
        }
    }

    /// Queues a press report and then a release report of `button`. False when the queue is
    /// full and nothing was queued.
    pub fn press(&mut self, button: Button) -> bool {
        if self.queue.len() + 2 > MAX_QUEUED_REPORTS {
            return false;
        }
        self.queue.push_back(button.bit());
        self.queue.push_back(0);
        true
    }

    /// Reports waiting for the host.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Reports the host has read from the interrupt endpoint.
    pub fn reports_sent(&self) -> u64 {
        self.sent
    }

    /// The idle rate SET_IDLE chose (4 ms units; 0 = report only on change).
    pub fn idle_rate(&self) -> u8 {
        self.idle
    }

    /// GET_DESCRIPTOR addressed to the interface: the HID descriptor (0x21) or the report
    /// descriptor (0x22), index 0 only.
    pub fn class_descriptor(&self, kind: u8, index: u8) -> Option<Vec<u8>> {
        match (kind, index) {
            (DT_HID, 0) => Some(hid_descriptor().to_vec()),
            (DT_REPORT, 0) => Some(REPORT_DESCRIPTOR.to_vec()),
            _ => None,
        }
    }

    /// A class request to the interface. GET_REPORT (input), GET_IDLE and SET_IDLE are
    /// answered; SET_REPORT and the boot-protocol requests STALL (no output reports, not a boot
    /// device), as HID 1.11 §7.2 allows.
    pub fn class_request(&mut self, setup: SetupPacket, data: &mut [u8]) -> TransferResult {
        let [report_type, report_id] = setup.value.to_be_bytes();
        let d2h = setup.is_device_to_host();
        match (setup.request, d2h) {
            (request::GET_REPORT, true) if report_type == REPORT_TYPE_INPUT && report_id == 0 => {
                TransferResult::Complete(reply(setup, data, &[self.last]))
            }
            (request::GET_IDLE, true) if report_type == 0 => {
                TransferResult::Complete(reply(setup, data, &[self.idle]))
            }
            (request::SET_IDLE, false) if setup.length == 0 => {
                self.idle = report_type;
                TransferResult::Complete(0)
            }
            _ => {
                debug!("hid: class request {setup:?}: STALL");
                TransferResult::Stall
            }
        }
    }

    /// The interrupt IN endpoint: the next queued report, or NAK when none is pending.
    pub fn data_in(&mut self, buf: &mut [u8]) -> TransferResult {
        if buf.is_empty() {
            return TransferResult::Complete(0);
        }
        match self.queue.pop_front() {
            Some(report) => {
                buf[0] = report;
                self.last = report;
                self.sent += 1;
                TransferResult::Complete(1)
            }
            None => TransferResult::Nak,
        }
    }

    /// The device left the Configured state: pending reports and the idle rate are lost.
    pub fn deconfigured(&mut self) {
        self.queue.clear();
        self.last = 0;
        self.idle = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(request_type: u8, request: u8, value: u16, length: u16) -> SetupPacket {
        SetupPacket {
            request_type,
            request,
            value,
            index: 3,
            length,
        }
    }

    #[test]
    fn a_press_is_a_press_report_then_a_release_report() {
        let mut h = HidButtons::new(3, 0x03);
        assert_eq!(h.endpoint(), 0x83);
        let mut buf = [0xFFu8; 8];
        assert_eq!(h.data_in(&mut buf), TransferResult::Nak);
        assert!(h.press(Button::VolumeUp));
        assert_eq!(h.data_in(&mut buf), TransferResult::Complete(1));
        assert_eq!(buf[0], 0x01);
        let mut get = [0u8; 1];
        let r = h.class_request(setup(0xA1, request::GET_REPORT, 0x0100, 1), &mut get);
        assert_eq!((r, get[0]), (TransferResult::Complete(1), 0x01));
        assert_eq!(h.data_in(&mut buf), TransferResult::Complete(1));
        assert_eq!(buf[0], 0x00);
        assert_eq!(h.data_in(&mut buf), TransferResult::Nak);
        assert_eq!(h.reports_sent(), 2);
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut h = HidButtons::new(3, 0x83);
        let accepted = (0..100).filter(|_| h.press(Button::Mute)).count();
        assert_eq!(accepted * 2, MAX_QUEUED_REPORTS);
        assert_eq!(h.pending(), MAX_QUEUED_REPORTS);
        h.deconfigured();
        assert_eq!(h.pending(), 0);
    }

    #[test]
    fn class_requests_answer_or_stall() {
        let mut h = HidButtons::new(3, 0x83);
        let mut none: [u8; 0] = [];
        let set_idle = setup(0x21, request::SET_IDLE, 0x0200, 0);
        assert_eq!(
            h.class_request(set_idle, &mut none),
            TransferResult::Complete(0)
        );
        let mut b = [0u8; 1];
        let get_idle = setup(0xA1, request::GET_IDLE, 0, 1);
        assert_eq!(
            h.class_request(get_idle, &mut b),
            TransferResult::Complete(1)
        );
        assert_eq!(b[0], 2);
        for (rt, rq, value) in [
            (0xA1, request::GET_REPORT, 0x0300), // feature report: none
            (0xA1, request::GET_REPORT, 0x0101), // report id 1: none
            (0x21, request::SET_REPORT, 0x0200),
            (0xA1, request::GET_PROTOCOL, 0),
            (0x21, request::SET_PROTOCOL, 0),
            (0x21, request::GET_REPORT, 0x0100), // wrong direction
            (0xA1, 0x77, 0),
        ] {
            let mut b = [0u8; 1];
            assert_eq!(
                h.class_request(setup(rt, rq, value, 1), &mut b),
                TransferResult::Stall,
                "{rq:#x} {value:#x}"
            );
        }
    }

    #[test]
    fn descriptors_by_type() {
        let h = HidButtons::new(3, 0x83);
        assert_eq!(
            h.class_descriptor(DT_HID, 0),
            Some(hid_descriptor().to_vec())
        );
        assert_eq!(h.class_descriptor(DT_REPORT, 0).map(|d| d.len()), Some(29));
        assert_eq!(h.class_descriptor(DT_REPORT, 1), None);
        assert_eq!(h.class_descriptor(0x23, 0), None);
        let alt = h.alternate_setting(UsbSpeed::High);
        assert_eq!(alt.interface.class, CLASS_HID);
        assert_eq!(alt.endpoints[0].descriptor.address, 0x83);
        assert_eq!(
            alt.endpoints[0].descriptor.transfer_type(),
            TransferType::Interrupt
        );
    }
}
