//! The whole offload path with no VM: the xHCI model, the UAC2 headset on root port 1, the ADSP's
//! SMMU table and the DSP (QRTR node, UAUDIO client, stream engine) on one guest memory laid out
//! as Linux lays it out (RAM at 0x4000_0000, a DCBAA page, rings and contexts in pages of their
//! own, isochronous rings of two segments, a secondary interrupter with one 256-TRB segment).
//!
//! The test plays the guest where the path needs one, through BAR0 and guest memory only:
//! xhci-hcd brings the controller up and enumerates the headset (the testkit driver), and
//! qc_audio_offload answers the DSP's QMI requests as `handle_uaudio_stream_req` does:
//! Configure Endpoint with fresh rings and SET_INTERFACE, the UAC2 clock's SET_CUR, a secondary
//! interrupter from xhci-sideband, virtio-iommu MAPs at the driver's IOVAs (SNDRV_CARDS = 8:
//! event ring 0x1000, ring pool 0xA000, buffer pool 0x4A000), and a response whose TLVs are built
//! by hand, in the driver's order, not with the model's encoder. On unplug it sends the
//! DISCONNECT indication, and on the DSP's disable it stops the endpoints and unmaps.
//!
//! The DSP runs through the public APIs the backend drives (`AdspLink`, `StreamEngine`,
//! `SmmuTable`), serviced after every 8 microframes as the backend's bus clock does. Two pieces
//! of DSP behaviour live only in the backend and are replayed here by hand, so a change there is
//! not seen by this test: the answer to DISCONNECT (`backend/src/devices/adsp.rs`,
//! `OnIndication::Disable`: stop the engine, drop it, send the disable) and how packets are cut
//! from the endpoint descriptor (`backend/src/devices/stream.rs`, `StreamShape`).

#[path = "adsp_support.rs"]
mod wire;

use std::time::Duration;

use sideband_device::adsp::engine::{Action, StreamEngine};
use sideband_device::adsp::uaudio::{AudioFormat, Direction, Speed};
use sideband_device::adsp::{AdspLink, Event, State, StreamParams, StreamResources};
use sideband_device::smmu::{SmmuTable, Status, MAP_F_READ, MAP_F_WRITE};
use sideband_device::usb::uac::{AudioProfile, PlaybackStats, UacDevice};
use sideband_device::usb::{SetupPacket, SharedDevice};
use sideband_device::xhci::context::{EndpointState, EndpointType};
use sideband_device::xhci::dma;
use sideband_device::xhci::regs::{portsc, rt};
use sideband_device::xhci::testkit::{bits, code, Driver, PAGE, RING_TRBS};
use sideband_device::xhci::trb::{CompletionCode as Cc, Trb, TrbType};
use sideband_device::xhci::{Config, RecordingObserver, TransferKind};

/// The headset's root port (the backend's `HEADSET_PORT`).
const HEADSET_PORT: u8 = 1;
/// The q6usb node's `qcom,usb-audio-intr-idx`: the DSP's secondary interrupter.
const DSP_INTERRUPTER: u16 = 2;
/// The q6usb node's virtio-iommu endpoint (`iommus` cell); its low 4 bits are the SID.
const Q6USB_ENDPOINT: u32 = 0x2000f;
const SID: u64 = (Q6USB_ENDPOINT & 0xf) as u64;
/// The IOMMU domain the guest's q6usb default domain gets.
const DOMAIN: u32 = 1;
/// qc_audio_offload's IOVA layout with SNDRV_CARDS = 8 (guest-driver.md §4.4).
const IOVA_EVENT_RING: u64 = 0x1000;
const IOVA_RING_POOL: u64 = 0xA000;
const IOVA_BUF_POOL: u64 = 0x4A000;
/// The headset's ALSA card in the guest (card 0 is the q6usb sound card).
const CARD: u16 = 1;
/// The playback AudioStreaming interface.
const PLAYBACK_INTF: u8 = 1;
/// 48 kHz stereo 16-bit: samples per second of audio.
const SAMPLES_PER_SECOND: u64 = 48_000 * 2;

type Headset = SharedDevice<UacDevice>;

/// What every stream request of the test asks for: the main job's format, the driver's default
/// transfer buffer.
fn params() -> StreamParams {
    StreamParams {
        card: CARD,
        pcm: 0,
        direction: Direction::Playback,
        audio_format: AudioFormat::S16Le as u32,
        channels: 2,
        rate: 48_000,
        xfer_buff_size: 0,
        service_interval: None,
    }
}

/// The counter pattern the engine plays: samples 1, 2, 3, ... as 16-bit little-endian.
fn counter(samples: u64) -> Vec<u8> {
    (1..=samples)
        .flat_map(|i| (i as u16).to_le_bytes())
        .collect()
}

/// The playback alternate setting as the configuration descriptor gives it.
#[derive(Clone, Copy, Debug)]
struct PlaybackAlt {
    interface: [u8; 9],
    data_ep: [u8; 7],
    sync_ep: [u8; 7],
}

fn max_packet(ep: &[u8; 7]) -> u16 {
    u16::from_le_bytes([ep[4], ep[5]]) & 0x7ff
}

/// The DCI of an endpoint address.
fn dci(ep: &[u8; 7]) -> u8 {
    2 * (ep[2] & 0x0f) + u8::from(ep[2] & 0x80 != 0)
}

/// Interval field of an endpoint context for a high-speed periodic endpoint: bInterval - 1.
fn ctx_interval(ep: &[u8; 7]) -> u8 {
    ep[6].saturating_sub(1)
}

/// Finds interface `number` alternate `alternate` and its data and feedback endpoints.
fn playback_alt(config: &[u8], number: u8, alternate: u8) -> PlaybackAlt {
    let mut at = 0;
    let mut inside = false;
    let mut interface = None;
    let mut eps: Vec<[u8; 7]> = Vec::new();
    while at + 2 <= config.len() {
        let (len, ty) = (usize::from(config[at]), config[at + 1]);
        assert!(len >= 2 && at + len <= config.len(), "descriptor at {at}");
        let d = &config[at..at + len];
        if ty == 4 {
            inside = d[2] == number && d[3] == alternate;
            if inside {
                interface = Some(<[u8; 9]>::try_from(d).unwrap());
            }
        } else if ty == 5 && inside {
            eps.push(d[..7].try_into().unwrap());
        }
        at += len;
    }
    let interface = interface.expect("the playback alternate setting");
    let data_ep = *eps.iter().find(|e| e[2] & 0x80 == 0).expect("data OUT");
    let sync_ep = *eps.iter().find(|e| e[2] & 0x80 != 0).expect("feedback IN");
    PlaybackAlt {
        interface,
        data_ep,
        sync_ep,
    }
}

/// A QMI request as the guest's decoder sees it.
#[derive(Debug)]
struct QmiRequest {
    txn: u16,
    tlvs: Vec<(u8, Vec<u8>)>,
}

impl QmiRequest {
    /// Reads `QMI_UAUDIO_STREAM_REQ`: header, then TLVs that exactly fill the payload.
    fn decode(msg: &[u8]) -> Self {
        let le16 = |i: usize| u16::from_le_bytes([msg[i], msg[i + 1]]);
        assert_eq!(msg[0], 0, "a request");
        assert_eq!(le16(3), 1, "QMI_UAUDIO_STREAM_REQ");
        assert_eq!(usize::from(le16(5)), msg.len() - 7, "header length");
        let mut tlvs = Vec::new();
        let mut at = 7;
        while at < msg.len() {
            let len = usize::from(le16(at + 1));
            tlvs.push((msg[at], msg[at + 3..at + 3 + len].to_vec()));
            at += 3 + len;
        }
        assert_eq!(at, msg.len(), "TLVs fill the payload");
        QmiRequest { txn: le16(1), tlvs }
    }

    fn types(&self) -> Vec<u8> {
        self.tlvs.iter().map(|t| t.0).collect()
    }

    fn value(&self, ty: u8) -> &[u8] {
        &self.tlvs.iter().find(|t| t.0 == ty).expect("TLV").1
    }

    fn u32(&self, ty: u8) -> u32 {
        u32::from_le_bytes(self.value(ty).try_into().expect("a u32 TLV"))
    }
}

/// What qc_audio_offload and xhci-sideband hold for an enabled stream.
#[derive(Clone, Copy, Debug)]
struct Granted {
    token: u32,
    /// Segment 0 and 1 of the data and sync endpoints' rings.
    data_ring: [u64; 2],
    sync_ring: [u64; 2],
    /// The secondary interrupter's event ring segment.
    event_ring: u64,
    buffer: u64,
    buffer_len: u64,
}

/// Guest RAM with the controller, the headset, the SMMU and the DSP, and the guest's view.
struct Bench {
    d: Driver,
    headset: Headset,
    smmu: SmmuTable,
    dsp: AdspLink,
    slot: u8,
    alt: Option<PlaybackAlt>,
    granted: Option<Granted>,
    /// The device is gone (usb_set_interface answers -ENODEV).
    unplugged: bool,
}

impl Bench {
    /// Boot: xhci-hcd brings the controller up, q6usb's default domain attaches to the SMMU,
    /// the DSP's QRTR node says HELLO and qc_audio_offload announces UAUDIO.
    fn new() -> Self {
        let mut d = Driver::new(Config::default());
        d.init();
        let mut smmu = SmmuTable::default();
        assert_eq!(smmu.attach(DOMAIN, Q6USB_ENDPOINT), Status::Ok);
        let profile: AudioProfile = "headset-uac2".parse().unwrap();
        let headset = SharedDevice::new(UacDevice::headset(profile).unwrap());
        let mut dsp = AdspLink::new();
        let hello = dsp.start(Duration::ZERO);
        assert_eq!(wire::parse(&hello[0]).ty, wire::HELLO);
        dsp.receive(
            &wire::guest_ctrl(wire::HELLO, wire::BCAST, [0; 4]),
            Duration::ZERO,
        );
        let out = dsp.receive(&wire::new_server_uaudio(), Duration::ZERO);
        assert!(
            matches!(out.events.as_slice(), [Event::ServiceUp(_)]),
            "{out:?}"
        );
        Bench {
            d,
            headset,
            smmu,
            dsp,
            slot: 0,
            alt: None,
            granted: None,
            unplugged: false,
        }
    }

    fn now(&self) -> Duration {
        Duration::from_micros(self.d.now.0 * 125)
    }

    /// Plugs the headset into its port and enumerates it as usbcore and snd-usb-audio do, up
    /// to SET_CONFIGURATION; the playback alternate setting is read from the descriptors.
    fn plug(&mut self) {
        let port = Box::new(self.headset.clone());
        self.d.xhci.attach(HEADSET_PORT, port).unwrap();
        self.d.tick(1);
        assert_eq!(self.port_changes(), vec![HEADSET_PORT]);
        self.d.reset_port(HEADSET_PORT);
        self.slot = self.d.enable_slot();
        assert_eq!(
            self.d.address_device(self.slot, HEADSET_PORT, false),
            Cc::Success as u8
        );
        let (_, device) = self.d.get_descriptor(self.slot, 0x0100, 18);
        assert_eq!(
            &device[8..12],
            &[0x09, 0x12, 0x01, 0x00],
            "pid.codes 1209:0001"
        );
        let (_, head) = self.d.get_descriptor(self.slot, 0x0200, 9);
        let total = u16::from_le_bytes([head[2], head[3]]);
        let (_, config) = self.d.get_descriptor(self.slot, 0x0200, total);
        self.alt = Some(playback_alt(&config, PLAYBACK_INTF, 1));
        self.control(0x00, 9, 1, 0, &[]); // SET_CONFIGURATION 1
        self.d.events(0); // the hub thread takes the reset's port change too
        self.unplugged = false;
    }

    /// Root ports that reported a Port Status Change Event on the primary interrupter; their
    /// change bits are acknowledged, as the hub driver does (a bit left set raises no event).
    fn port_changes(&mut self) -> Vec<u8> {
        let ports: Vec<u8> = self
            .d
            .events(0)
            .into_iter()
            .filter(|e| e.trb_type() == Some(TrbType::PortStatusChangeEvent))
            .map(|e| (e.parameter() >> 24) as u8)
            .collect();
        for &port in &ports {
            let sc = self.d.read32(Driver::portsc(port));
            let ack = (sc & portsc::PP) | (sc & portsc::CHANGE_BITS);
            self.d.write32(Driver::portsc(port), ack);
        }
        ports
    }

    /// A control transfer on EP0 (no data, or OUT data), checked for success.
    fn control(&mut self, request_type: u8, request: u8, value: u16, index: u16, data: &[u8]) {
        let setup = SetupPacket {
            request_type,
            request,
            value,
            index,
            length: data.len() as u16,
        };
        let (slot, p) = (self.slot, u64::from_le_bytes(setup.to_bytes()));
        if data.is_empty() {
            self.d.queue_control_nodata(slot, setup);
        } else {
            let buf = self.d.buffer(data);
            let trt_out = 2 << 16;
            let len = data.len() as u32;
            self.d.queue(
                slot,
                1,
                Trb::new(TrbType::SetupStage, p, 8, bits::IDT | trt_out),
            );
            self.d
                .queue(slot, 1, Trb::new(TrbType::DataStage, buf, len, 0));
            let status = Trb::new(TrbType::StatusStage, 0, 0, bits::IOC | bits::DIR_IN);
            self.d.queue(slot, 1, status);
        }
        self.d.doorbell(slot, 1);
        let events = self.d.transfer_events(0);
        assert!(
            !events.is_empty() && events.iter().all(|e| code(e) == Cc::Success as u8),
            "request {request:#x}: {events:?}"
        );
    }

    fn command(&mut self, ty: TrbType, control: u32) -> u8 {
        code(&self.d.command(Trb::new(ty, 0, 0, control)))
    }

    /// The guest's UAUDIO service receives the request in the DSP's packets and answers it;
    /// returns the events the answer raised in the DSP.
    fn guest_answers(&mut self, packets: &[Vec<u8>]) -> Vec<Event> {
        assert_eq!(packets.len(), 1, "one DATA packet");
        let p = wire::parse(&packets[0]);
        assert_eq!(p.ty, wire::DATA);
        assert_eq!(p.src, (wire::DSP, wire::DSP_PORT));
        assert_eq!(p.dst, (wire::GUEST, wire::SVC_PORT));
        let req = QmiRequest::decode(&p.payload);
        // Every request, disable included, carries TLVs 0x10-0x13 and never 0x14 (§4.3).
        assert_eq!(req.types(), vec![0x01, 0x02, 0x10, 0x11, 0x12, 0x13]);
        assert_eq!(req.u32(0x02), params().token().raw(), "usb_token");
        assert_eq!(req.u32(0x10), AudioFormat::S16Le as u32);
        assert_eq!((req.u32(0x11), req.u32(0x12)), (2, 48_000));
        let payload = match req.value(0x01) {
            [1] => self.enable_stream(&req),
            [0] => self.disable_stream(&req),
            other => panic!("enable TLV {other:?}"),
        };
        let answer = wire::qmi(2, req.txn, 1, &payload);
        let out = self
            .dsp
            .receive(&wire::from_service(false, &answer), self.now());
        assert_eq!(out.error, None);
        assert!(out.packets.is_empty(), "no confirm_rx asked, nothing sent");
        out.events
    }

    /// `handle_uaudio_stream_req` with enable = 1: `enable_audio_stream`, then
    /// `prepare_qmi_response`. Returns the response's payload.
    fn enable_stream(&mut self, req: &QmiRequest) -> Vec<u8> {
        let alt = self.alt.expect("enumerated");
        let slot = self.slot;
        // usb_set_interface(1, 1): the bandwidth check is a Configure Endpoint with fresh rings,
        // then SET_INTERFACE; snd_usb_endpoint_prepare sets the UAC2 clock's frequency.
        let eps = [
            (
                dci(&alt.data_ep),
                EndpointType::IsochOut,
                max_packet(&alt.data_ep),
                ctx_interval(&alt.data_ep),
            ),
            (
                dci(&alt.sync_ep),
                EndpointType::IsochIn,
                max_packet(&alt.sync_ep),
                ctx_interval(&alt.sync_ep),
            ),
        ];
        assert_eq!(self.d.configure(slot, &eps, 0), Cc::Success as u8);
        let data_ring = self.two_segments(dci(&alt.data_ep));
        let sync_ring = self.two_segments(dci(&alt.sync_ep));
        self.control(0x01, 11, 1, u16::from(PLAYBACK_INTF), &[]);
        let rate = req.u32(0x12);
        self.control(0x21, 1, 0x0100, 9 << 8, &rate.to_le_bytes());
        // xhci_sideband_create_interrupter(sb, 1 segment, ip_autoclear false, imod 0, 2).
        self.d.setup_interrupter(DSP_INTERRUPTER, &[256], false);
        let event_ring = self.d.readers[usize::from(DSP_INTERRUPTER)]
            .as_ref()
            .unwrap()
            .dequeue();
        // usb_alloc_coherent: xfer_buff_size 0 means one page.
        let buffer_len = match u64::from(req.u32(0x13)) {
            0 => PAGE,
            n => n.min(96 << 10).div_ceil(PAGE) * PAGE,
        };
        let buffer = self.d.alloc(buffer_len / PAGE);
        // The IOMMU maps, in the driver's order: data ring page 0, sync ring page 0, the event
        // ring, the buffer (one MAP per sg entry; usb_alloc_coherent gives one).
        for (iova, gpa, len) in [
            (IOVA_RING_POOL, data_ring[0], PAGE),
            (IOVA_RING_POOL + PAGE, sync_ring[0], PAGE),
            (IOVA_EVENT_RING, event_ring, PAGE),
            (IOVA_BUF_POOL, buffer, buffer_len),
        ] {
            let rw = MAP_F_READ | MAP_F_WRITE;
            let status = self.smmu.map(DOMAIN, iova, iova + len - 1, gpa, rw);
            assert_eq!(status, Status::Ok);
        }
        let token = req.u32(0x02);
        self.granted = Some(Granted {
            token,
            data_ring,
            sync_ring,
            event_ring,
            buffer,
            buffer_len,
        });
        let ep9 = |e: &[u8; 7]| {
            let mut b = [0u8; 9];
            b[..7].copy_from_slice(e);
            b
        };
        let mut mem = Vec::new();
        mem.extend(wire::mem(SID << 32 | IOVA_EVENT_RING, event_ring, 4096));
        mem.extend(wire::mem(SID << 32 | IOVA_RING_POOL, data_ring[0], 4096));
        mem.extend(wire::mem(
            SID << 32 | (IOVA_RING_POOL + PAGE),
            sync_ring[0],
            4096,
        ));
        mem.extend(wire::mem(
            SID << 32 | IOVA_BUF_POOL,
            buffer,
            buffer_len as u32,
        ));
        mem.extend(wire::mem(0, 0, 0)); // dcba: never filled
        let mut p = Vec::new();
        p.extend(wire::tlv(0x02, &[0, 0, 0, 0]));
        p.extend(wire::tlv(0x10, &wire::le32(0)));
        p.extend(wire::tlv(0x11, &wire::le32(0)));
        p.extend(wire::tlv(0x12, &wire::le32(u32::from(slot))));
        p.extend(wire::tlv(0x13, &wire::le32(token)));
        p.extend(wire::tlv(0x14, &alt.interface));
        p.extend(wire::tlv(0x15, &ep9(&alt.data_ep)));
        p.extend(wire::tlv(0x16, &ep9(&alt.sync_ep)));
        p.extend(wire::tlv(0x17, &0x0200u16.to_le_bytes()));
        p.extend(wire::tlv(0x19, &[2])); // subslot: 16-bit
        p.extend(wire::tlv(0x1A, &mem));
        p.extend(wire::tlv(0x1B, &[DSP_INTERRUPTER as u8]));
        p.extend(wire::tlv(0x1C, &wire::le32(3))); // HIGH
        p.extend(wire::tlv(0x1D, &[0])); // the xHCI node's usb0 alias
        p
    }

    /// Linux's isochronous rings have two segments; only segment 0 is handed over. Makes the
    /// ring the testkit allocated for `dci` segment 0 of such a ring: its last TRB links to a
    /// segment 1, whose last TRB links back with Toggle Cycle (both links with cycle 0).
    fn two_segments(&mut self, dci: u8) -> [u64; 2] {
        let seg0 = self.d.output_ep(self.slot, dci).dequeue();
        let seg1 = self.d.alloc(1);
        let last = (RING_TRBS - 1) * 16;
        let link0 = Trb::new(TrbType::Link, seg1, 0, 0);
        let link1 = Trb::new(TrbType::Link, seg0, 0, bits::TC);
        dma::write(&self.d.mem, seg0 + last, &link0.to_bytes()).unwrap();
        dma::write(&self.d.mem, seg1 + last, &link1.to_bytes()).unwrap();
        [seg0, seg1]
    }

    /// `handle_uaudio_stream_req` with enable = 0: stop the sideband endpoints, put the
    /// interface back to alt 0 (unless the device is gone), unmap, and, as the last user,
    /// unmap the event ring and remove the interrupter. Returns the response's payload.
    fn disable_stream(&mut self, req: &QmiRequest) -> Vec<u8> {
        let g = self.granted.take().expect("an enabled stream");
        assert_eq!(req.u32(0x02), g.token);
        let alt = self.alt.expect("enumerated");
        let (slot, data, sync) = (self.slot, dci(&alt.data_ep), dci(&alt.sync_ep));
        for (dci, ring) in [(data, g.data_ring), (sync, g.sync_ring)] {
            // xhci_sideband_stop_endpoint: only when the output context says Running.
            if self.d.output_ep(slot, dci).state_bits() == EndpointState::Running as u8 {
                let stop = u32::from(slot) << 24 | u32::from(dci) << 16;
                assert_eq!(self.command(TrbType::StopEndpoint, stop), Cc::Success as u8);
            }
            // The controller's dequeue pointer never left segment 0: the DSP's own Link TRB
            // at entry 255 took it back to the segment's start.
            let at = self.d.output_ep(slot, dci).dequeue();
            assert!(
                (ring[0]..ring[0] + PAGE).contains(&at),
                "DCI {dci} dequeue {at:#x} outside segment 0 at {:#x}",
                ring[0]
            );
        }
        if !self.unplugged {
            // usb_set_interface(1, 0): Configure Endpoint dropping both, then SET_INTERFACE.
            let drop = 1 << data | 1 << sync;
            assert_eq!(self.d.configure(slot, &[], drop), Cc::Success as u8);
            self.control(0x01, 11, 0, u16::from(PLAYBACK_INTF), &[]);
        }
        for (iova, len) in [
            (IOVA_RING_POOL, PAGE),
            (IOVA_RING_POOL + PAGE, PAGE),
            (IOVA_BUF_POOL, g.buffer_len),
            (IOVA_EVENT_RING, PAGE),
        ] {
            assert_eq!(
                self.smmu.unmap(DOMAIN, iova, iova + len - 1),
                Status::Ok,
                "unmap {iova:#x}"
            );
        }
        // xhci_sideband_remove_interrupter.
        self.d.write32(Driver::ir(DSP_INTERRUPTER, rt::ERSTSZ), 0);
        wire::disable_response_payload(g.token)
    }

    /// The DSP's engine for an enabled stream, cut as the backend's `StreamShape` cuts it: one
    /// packet per 2^(bInterval-1) microframes, room for one frame more than nominal, following
    /// the feedback endpoint.
    fn engine(&self, res: &StreamResources, samples: u64) -> StreamEngine {
        let p = params();
        let interval = 1u32 << (res.data_ep.b_interval.clamp(1, 16) - 1);
        let frames = p.rate * interval / 8000;
        let width = u32::from(res.subslot_size.unwrap_or(2));
        let frame_bytes = p.channels * width;
        StreamEngine::new(
            res,
            (frames + 1) * frame_bytes,
            width,
            samples,
            Q6USB_ENDPOINT,
        )
        .with_feedback(res, frame_bytes, interval)
    }

    /// One service call of the DSP; its doorbells and ERDP writes are MMIO writes, as the
    /// backend's clock hook makes them.
    fn serve(&mut self, engine: &mut StreamEngine) -> Vec<Action> {
        let actions = engine.service(&self.d.mem, &mut self.smmu);
        for a in &actions {
            match *a {
                Action::Doorbell { slot, target } => {
                    self.d.doorbell(slot, target);
                }
                Action::Erdp { interrupter, value } => {
                    let at = Driver::ir(u16::from(interrupter), rt::ERDP);
                    self.d.xhci.mmio_write(&self.d.mem, at, 8, value);
                }
            }
        }
        actions
    }

    /// `ms` milliseconds of bus time: 8 microframes ticked, then the DSP, each millisecond.
    fn clock(&mut self, engine: &mut StreamEngine, ms: u64) {
        for _ in 0..ms {
            self.d.tick(8);
            self.serve(engine);
        }
    }

    /// The DSP asks for a stream and the guest grants it; checks what the DSP got against the
    /// guest's memory, the SMMU and the controller, as the backend's `stream-enable` does.
    fn enable(&mut self) -> StreamResources {
        let packets = self.dsp.enable(params(), self.now()).unwrap();
        let events = self.guest_answers(&packets);
        let [Event::Enabled(res)] = events.as_slice() else {
            panic!("expected Enabled, got {events:?}");
        };
        let g = self.granted.unwrap();
        assert_eq!(res.slot_id, u32::from(self.slot));
        assert_eq!(u16::from(res.interrupter_num), DSP_INTERRUPTER);
        assert_eq!(res.speed, Speed::High);
        assert_eq!(res.data_ep.b_endpoint_address, 0x01);
        assert_eq!(res.sync_ep.map(|e| e.b_endpoint_address), Some(0x81));
        let regions = [
            (res.mem.event_ring, g.event_ring),
            (res.mem.transfer_ring, g.data_ring[0]),
            (res.mem.sync_ring.expect("sync ring"), g.sync_ring[0]),
            (res.mem.transfer_buffer, g.buffer),
        ];
        for (region, gpa) in regions {
            assert_eq!((region.sid, region.dma), (SID as u32, gpa));
            let pieces = self
                .smmu
                .translate(Q6USB_ENDPOINT, region.iova, u64::from(region.size), true)
                .unwrap();
            assert_eq!(pieces, vec![(gpa, u64::from(region.size))], "{region:?}");
        }
        let ep = self.d.output_ep(self.slot, 2);
        assert_eq!(
            ep.dequeue(),
            res.mem.transfer_ring.dma,
            "the handed-over ring"
        );
        let erstba = Driver::ir(DSP_INTERRUPTER, rt::ERSTBA);
        let erst = u64::from(self.d.read32(erstba)) | u64::from(self.d.read32(erstba + 4)) << 32;
        assert_eq!(
            dma::read_u64(&self.d.mem, erst).unwrap(),
            res.mem.event_ring.dma,
            "interrupter 2's segment 0 is the answer's event ring"
        );
        **res
    }

    /// The DSP sends its disable and the guest releases the stream.
    fn disable(&mut self) {
        let packets = self.dsp.disable(self.now()).unwrap();
        let events = self.guest_answers(&packets);
        assert!(
            matches!(
                events.as_slice(),
                [Event::Disabled {
                    outcome: Ok(()),
                    ..
                }]
            ),
            "{events:?}"
        );
        assert!(matches!(self.dsp.client().state(), State::ServiceUp { .. }));
        assert_eq!(self.smmu.mapping_count(), 0, "the DSP holds nothing");
    }

    /// The headset's playback figures.
    fn heard(&self) -> PlaybackStats {
        let h = self.headset.0.lock().unwrap();
        h.function().recorder().stats().clone()
    }

    /// Everything the headset recorded since the last call.
    fn recorded(&mut self) -> Vec<u8> {
        let mut h = self.headset.0.lock().unwrap();
        let r = h.function_mut().recorder_mut();
        r.flush();
        r.drain().into_iter().flat_map(|c| c.data).collect()
    }
}

#[test]
fn one_second_offloaded_reaches_the_headset_bit_for_bit() {
    let mut b = Bench::new();
    b.plug();
    let res = b.enable();
    let primary_before = b.d.xhci.interrupter_stats(0).unwrap().events;
    b.d.irqs.take();
    let bus = RecordingObserver::default();
    b.d.xhci.set_observer(Some(Box::new(bus.clone())));

    let mut engine = b.engine(&res, SAMPLES_PER_SECOND);
    let mut ms = 0;
    while !engine.finished() {
        b.clock(&mut engine, 1);
        ms += 1;
        assert!(
            ms <= 1100,
            "not finished after {ms} ms: {:?}",
            engine.stats()
        );
    }
    // 8000 microframes of one packet each, plus the first service's millisecond.
    assert!((1000..=1002).contains(&ms), "{ms} ms of bus time");
    let s = engine.stats();
    assert_eq!((s.tds_queued, s.completed, s.samples), (8000, 8000, 96_000));
    assert_eq!((s.missed_service, s.errors, s.smmu_faults), (0, 0, 0));
    assert!(s.underruns <= 1, "only the ring running dry at the end");
    let (reports, last) = engine.feedback();
    // One report a millisecond while samples are left to queue (the last 143 TDs are queued
    // about 18 ms before the end).
    assert!(reports >= 970, "feedback reports: {reports}");
    assert_eq!(last, Some(6.0), "48 kHz at 8000 microframes per second");

    // The point of offload: the guest took no event and no interrupt for the stream.
    let primary = b.d.xhci.interrupter_stats(0).unwrap();
    assert_eq!(primary.events, primary_before);
    assert_eq!(b.d.irqs.take(), Vec::<u16>::new());
    let dsp = b.d.xhci.interrupter_stats(DSP_INTERRUPTER).unwrap();
    assert_eq!(dsp.interrupts, 0, "IMAN.IE is clear: the DSP polls");
    assert_eq!(dsp.dropped, 0, "the DSP kept its event ring drained");

    // What the headset recorded is what the DSP played, bit for bit, with no missed interval.
    let want = counter(SAMPLES_PER_SECOND);
    assert_eq!(b.recorded(), want);
    let h = b.heard();
    assert_eq!((h.packets, h.frames), (8000, 48_000));
    assert_eq!(
        h.missed_intervals + h.early_packets + h.short_packets + h.long_packets,
        0,
        "{h:?}"
    );

    // The bus analyzer saw the same: every OUT packet on interrupter 2 (bus 102 in a pcap).
    let records = bus.take();
    let out: Vec<_> = records
        .iter()
        .filter(|r| r.kind == TransferKind::Isoch && r.endpoint == 0x01)
        .collect();
    assert_eq!(out.len(), 8000);
    assert!(records.iter().all(|r| r.interrupter == DSP_INTERRUPTER));
    let seen: Vec<u8> = out.iter().flat_map(|r| r.data.iter().copied()).collect();
    assert_eq!(seen, want);
    assert!(records.iter().any(|r| r.endpoint == 0x81), "feedback reads");

    // The DSP rewrote entry 255 of segment 0 as a Link TRB back to the segment, Toggle Cycle.
    let g = b.granted.unwrap();
    let link = Trb::from_bytes(
        b.d.read_buffer(g.data_ring[0] + (RING_TRBS - 1) * 16, 16)
            .try_into()
            .unwrap(),
    );
    assert_eq!(link.trb_type(), Some(TrbType::Link));
    assert_eq!(link.parameter(), g.data_ring[0], "not segment 1");
    assert_ne!(link.control() & bits::TC, 0);

    // stream-disable: the engine is gone first, then the guest releases everything.
    drop(engine);
    b.disable();
    assert_eq!(b.smmu.faults().1, 0);
}

#[test]
fn unplug_mid_stream_the_dsp_stops_then_disables_and_a_new_stream_is_exact() {
    let mut b = Bench::new();
    b.plug();
    let res = b.enable();
    // stream-start: the DSP streams until something stops it.
    let mut engine = b.engine(&res, 3600 * SAMPLES_PER_SECOND);
    b.clock(&mut engine, 250);
    let before = engine.stats();
    assert!(before.completed >= 1990, "{before:?}");
    let heard = b.heard().packets;
    b.d.irqs.take();

    // unplug 1: the device is gone at once; the DSP learns of it only from the guest.
    let parked = b.d.xhci.detach(HEADSET_PORT).unwrap();
    assert!(parked.is_some());
    b.unplugged = true;
    b.clock(&mut engine, 5);
    let s = engine.stats();
    assert!(
        s.errors >= 30,
        "TDs due after the unplug fail on the bus: {s:?}"
    );
    assert!(!engine.is_stopped(), "the engine does not stop by itself");
    let packets = b.heard().packets;
    assert_eq!(packets, heard, "nothing reaches a headset that is gone");
    assert_eq!(
        b.port_changes(),
        vec![HEADSET_PORT],
        "the hub sees the disconnect"
    );
    assert_eq!(b.d.read32(Driver::portsc(HEADSET_PORT)) & portsc::CCS, 0);
    assert!(b.d.irqs.take().contains(&0), "on the primary interrupter");

    // usb_disconnect -> qc_usb_audio_offload_disconnect -> uaudio_send_disconnect_ind.
    let ind = wire::disconnect_ind(1, u32::from(b.slot), 0);
    let out = b.dsp.receive(&wire::from_service(false, &ind), b.now());
    assert!(out.packets.is_empty());
    let [Event::StopRequested(ind)] = out.events.as_slice() else {
        panic!("expected StopRequested, got {:?}", out.events);
    };
    assert_eq!((ind.dev_event, ind.slot_id), (1, u32::from(b.slot)));
    assert!(matches!(
        b.dsp.client().state(),
        State::Streaming {
            stop_requested: true,
            ..
        }
    ));

    // The backend's answer (OnIndication::Disable): stop the engine, take it off the clock,
    // then send the disable. Stopped, it queues nothing and rings no doorbell.
    engine.stop();
    let queued = engine.stats().tds_queued;
    let actions = b.serve(&mut engine);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Doorbell { .. })),
        "{actions:?}"
    );
    assert_eq!(engine.stats().tds_queued, queued);
    let figures = engine.stats();
    drop(engine);
    b.disable();
    assert_eq!((figures.smmu_faults, b.smmu.faults().1), (0, 0));
    assert_eq!(figures.missed_service, 0);
    // usb_disconnect goes on: xhci_free_dev.
    let slot = u32::from(b.slot) << 24;
    assert_eq!(b.command(TrbType::DisableSlot, slot), Cc::Success as u8);

    // Up to the unplug, the headset heard an unbroken prefix of the counter pattern.
    let got = b.recorded();
    assert_eq!(got.len() as u64, heard * 24);
    assert_eq!(got, counter(got.len() as u64 / 2));

    // plug 1, and a new offloaded stream of 0.5 s is bit-exact (ktap_new_stream_exact).
    drop(parked);
    b.plug();
    let res = b.enable();
    let mut engine = b.engine(&res, SAMPLES_PER_SECOND / 2);
    let mut ms = 0;
    while !engine.finished() {
        b.clock(&mut engine, 1);
        ms += 1;
        assert!(ms <= 600, "not finished: {:?}", engine.stats());
    }
    assert_eq!(b.recorded(), counter(SAMPLES_PER_SECOND / 2));
    drop(engine);
    b.disable();
}
