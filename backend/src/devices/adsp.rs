//! The ADSP as the guest meets it: QRTR node 5 behind the QRTR link, the UAUDIO client that asks
//! the offload driver for USB resources, and the checks that what the driver answered is real
//! (every IOVA maps through the SMMU to the address the xHCI uses).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sideband_device::adsp::uaudio::{errno_name, MemRegion};
use sideband_device::adsp::{AdspLink, Event, State, StreamParams, StreamResources};
use sideband_device::smmu::SmmuTable;

use crate::request::RawKind;
use crate::transport::mhi_link::MhiLink;
use crate::transport::qrtr_link::{PacketHandler, QrtrLink};

/// How long a request to the guest's UAUDIO service may take (the guest's own waits are 10 s).
pub const QMI_TIMEOUT: Duration = Duration::from_secs(15);
/// Events kept for the summary.
const EVENT_LOG: usize = 64;

/// What the DSP does when the guest sends a DISCONNECT indication.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnIndication {
    /// Stop the stream, then send the disable (the protocol's obligation).
    #[default]
    Disable,
    /// Stop the stream and say BYE (a DSP that dies right then), then come back.
    Bye,
    /// Stop the stream and never answer (the guest's 10 s wait runs out).
    Ignore,
    /// Stop the stream and keep it enabled: the disable goes out when a scenario asks for it
    /// (`stream-disable`), as a DSP that answers late.
    Hold,
    /// A broken DSP: keep streaming and never answer, so it goes on touching the rings after the
    /// guest unmaps them (the harness's SMMU-fault self-test).
    KeepStreaming,
}

impl OnIndication {
    /// Every mode, in the order the usage lists them.
    pub const ALL: [OnIndication; 5] = [
        OnIndication::Disable,
        OnIndication::Bye,
        OnIndication::Ignore,
        OnIndication::Hold,
        OnIndication::KeepStreaming,
    ];

    /// The request's word (`dsp-on-indication NAME`).
    pub fn name(self) -> &'static str {
        match self {
            OnIndication::Disable => "disable",
            OnIndication::Bye => "bye",
            OnIndication::Ignore => "ignore",
            OnIndication::Hold => "hold",
            OnIndication::KeepStreaming => "keep-streaming",
        }
    }
}

impl std::str::FromStr for OnIndication {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match Self::ALL.into_iter().find(|m| m.name() == s) {
            Some(m) => Ok(m),
            None => bail!(
                "'{s}': the DSP answers an indication with disable, bye, ignore, hold or keep-streaming"
            ),
        }
    }
}

/// Stops the DSP's stream engine.
pub struct EngineStop(pub Box<dyn FnMut() + Send>);

impl std::fmt::Debug for EngineStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineStop")
    }
}

/// The DSP's protocol state, fed by the link thread.
#[derive(Debug)]
pub struct Adsp {
    link: AdspLink,
    epoch: Instant,
    /// Everything that happened, oldest first (bounded).
    pub log: Vec<String>,
    /// The last stream's resources.
    pub resources: Option<StreamResources>,
    /// The last enabled stream's parameters.
    params: Option<StreamParams>,
    /// The last outcome of a request: Ok(summary) or Err(reason); taken by the waiter.
    outcome: Option<Result<String, String>>,
    packets_in: u64,
    packets_out: u64,
    /// Where NEW_SERVER announced the UAUDIO service (node:port), once seen.
    service_seen: Option<String>,
    /// How many times the service came up (again after a link drop).
    service_ups: u64,
    /// Indications from the guest, decoded, oldest first.
    indications: Vec<String>,
    /// Answers to transactions that were not outstanding (raw requests), by transaction id.
    strays: Vec<(u16, String)>,
    /// Transaction ids for raw requests (outside the client's range).
    next_raw_txn: u16,
    /// Stops the DSP's stream engine (set by the devices that own it).
    stop_engine: Option<EngineStop>,
    /// The answer to a DISCONNECT indication.
    on_indication: OnIndication,
}

impl Adsp {
    fn new() -> Self {
        Adsp {
            link: AdspLink::new(),
            epoch: Instant::now(),
            log: Vec::new(),
            resources: None,
            params: None,
            outcome: None,
            packets_in: 0,
            packets_out: 0,
            service_seen: None,
            service_ups: 0,
            indications: Vec::new(),
            strays: Vec::new(),
            next_raw_txn: 0xf000,
            stop_engine: None,
            on_indication: OnIndication::default(),
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn note(&mut self, line: String) {
        log::info!("ADSP: {line}");
        if self.log.len() == EVENT_LOG {
            self.log.remove(0);
        }
        self.log.push(line);
    }

    /// Records events; answers a DISCONNECT indication the way the DSP must: stop the stream
    /// engine (through `stop_engine`), then send the disable. Returns packets to send.
    fn on_events(&mut self, events: Vec<Event>) -> Vec<Vec<u8>> {
        let mut send = Vec::new();
        for e in events {
            match e {
                Event::ServiceUp(addr) => {
                    self.service_seen = Some(format!("{}:{}", addr.node, addr.port));
                    self.service_ups += 1;
                    self.note(format!("UAUDIO service up at {}:{}", addr.node, addr.port))
                }
                Event::ServiceDown {
                    reason,
                    stream_lost,
                    ..
                } => self.note(format!(
                    "UAUDIO service down ({reason:?}), stream lost: {stream_lost}"
                )),
                Event::Enabled(r) => {
                    self.note(format!(
                        "stream enabled: slot {}, interrupter {}, data ep {:#04x}",
                        r.slot_id, r.interrupter_num, r.data_ep.b_endpoint_address
                    ));
                    self.outcome = Some(Ok(String::new()));
                    self.resources = Some(*r);
                }
                Event::EnableFailed { failure, .. } => {
                    self.note(format!("stream enable refused: {failure}"));
                    self.outcome = Some(Err(format!("the guest refused the stream: {failure}")));
                }
                Event::Disabled { outcome, .. } => {
                    self.note(format!("stream disabled: {outcome:?}"));
                    self.outcome = Some(
                        outcome
                            .map(|()| "disabled".into())
                            .map_err(|f| f.to_string()),
                    );
                }
                Event::StopRequested(ind) => {
                    self.note(format!(
                        "DISCONNECT indication: dev_event {}, slot {}; the DSP stops and disables",
                        ind.dev_event, ind.slot_id
                    ));
                    self.indications.push(format!(
                        "dev_event {} (DISCONNECT) slot {}",
                        ind.dev_event, ind.slot_id
                    ));
                    if self.on_indication != OnIndication::KeepStreaming {
                        if let Some(stop) = self.stop_engine.as_mut() {
                            (stop.0)();
                        }
                    }
                    let now = self.now();
                    match self.on_indication {
                        OnIndication::Disable => match self.link.disable(now) {
                            Ok(p) => send.extend(p),
                            Err(e) => self.note(format!("cannot send the disable: {e}")),
                        },
                        OnIndication::Bye => {
                            self.note("the DSP says BYE instead of disabling".into());
                            send.extend(self.restart(false));
                            self.outcome = Some(Err("the DSP said BYE".into()));
                        }
                        OnIndication::Hold => {
                            self.note("the DSP holds its disable until asked".into());
                        }
                        OnIndication::KeepStreaming => {
                            self.note("the DSP keeps streaming and never answers".into());
                        }
                        OnIndication::Ignore => {
                            self.note("the DSP ignores the indication".into());
                            self.link.forget_stream();
                            self.outcome = Some(Err("the DSP ignored it".into()));
                        }
                    }
                }
                Event::Indication(ind) => {
                    self.note(format!(
                        "indication: dev_event {}, slot {}",
                        ind.dev_event, ind.slot_id
                    ));
                    self.indications
                        .push(format!("dev_event {} slot {}", ind.dev_event, ind.slot_id));
                }
                Event::StrayResponse {
                    txn,
                    status,
                    internal_status,
                } => {
                    let what = format!(
                        "status {}, internal status {}",
                        status.map_or("-".into(), |s| s.to_string()),
                        internal_status.map_or("-".into(), |s| errno_name(s as i32)),
                    );
                    self.note(format!("response to raw transaction {txn}: {what}"));
                    self.strays.push((txn, what));
                }
                Event::BadMessage { error, .. } => {
                    self.note(format!("unusable message from the guest: {error}"))
                }
            }
        }
        send
    }
}

impl Adsp {
    /// A DSP restart seen on a link that stays up: its goodbye (BYE, with DEL_CLIENT first when
    /// `del_client`), its state forgotten, then a fresh HELLO. Returns the packets, in order.
    fn restart(&mut self, del_client: bool) -> Vec<Vec<u8>> {
        let mut send = self.link.goodbye();
        if !del_client {
            send.remove(0);
        }
        let events = self.link.link_down();
        let _ = self.on_events(events);
        self.resources = None;
        let now = self.now();
        send.extend(self.link.start(now));
        send
    }
}

/// The link thread's handler: shares [`Adsp`] with the request side and wakes waiters.
#[derive(Debug, Clone)]
pub struct AdspHandler(pub Arc<(Mutex<Adsp>, Condvar)>);

impl PacketHandler for AdspHandler {
    fn on_packet(&mut self, packet: &[u8]) -> Vec<Vec<u8>> {
        let (lock, cv) = &*self.0;
        let Some(mut a) = crate::fatal::lock(lock, "ADSP") else {
            return Vec::new();
        };
        a.packets_in += 1;
        let now = a.now();
        let out = a.link.receive(packet, now);
        if let Some(e) = &out.error {
            log::warn!("ADSP: dropped a packet from the guest: {e}");
        }
        let mut packets = out.packets;
        packets.extend(a.on_events(out.events));
        a.packets_out += packets.len() as u64;
        cv.notify_all();
        packets
    }

    fn on_connect(&mut self) -> Vec<Vec<u8>> {
        let Some(mut a) = crate::fatal::lock(&self.0 .0, "ADSP") else {
            return Vec::new();
        };
        let now = a.now();
        let hello = a.link.start(now);
        a.packets_out += hello.len() as u64;
        hello
    }

    fn on_disconnect(&mut self) {
        let (lock, cv) = &*self.0;
        if let Some(mut a) = crate::fatal::lock(lock, "ADSP") {
            let ev = a.link.link_down();
            let _ = a.on_events(ev);
            cv.notify_all();
        }
    }
}

/// How the DSP's QRTR packets reach the guest.
#[derive(Debug)]
enum Link {
    /// A virtio-serial port and the guest's relay to `/dev/qrtr-tun`.
    Serial(QrtrLink),
    /// An emulated MHI PCI function and the guest's `qrtr-mhi`.
    Mhi(MhiLink),
}

impl Link {
    fn send(&self, packet: &[u8]) -> std::io::Result<()> {
        match self {
            Link::Serial(l) => l.send(packet),
            Link::Mhi(l) => l.send(packet),
        }
    }

    fn hang_up(&self) -> Result<()> {
        match self {
            Link::Serial(l) => {
                l.hang_up();
                Ok(())
            }
            Link::Mhi(_) => bail!(
                "a DSP crash that drops the link is modelled on the virtio-serial link only (this boot uses MHI); use dsp-bye"
            ),
        }
    }
}

/// The DSP with its link; requests come from guest scenarios.
#[derive(Debug)]
pub struct RunningAdsp {
    state: Arc<(Mutex<Adsp>, Condvar)>,
    link: Link,
}

/// Checks that each region's IOVA translates through the SMMU to the same guest-physical
/// address the driver reported as its xHCI-side `dma` address.
fn check_mappings(r: &StreamResources, smmu: &mut SmmuTable, endpoint: u32) -> Result<String> {
    let mut regions: Vec<(&str, &MemRegion)> = vec![
        ("event ring", &r.mem.event_ring),
        ("transfer ring", &r.mem.transfer_ring),
        ("transfer buffer", &r.mem.transfer_buffer),
    ];
    if let Some(s) = &r.mem.sync_ring {
        regions.push(("sync ring", s));
    }
    let mut parts = Vec::new();
    for (name, m) in regions {
        let pieces = smmu
            .translate(endpoint, m.iova, u64::from(m.size), true)
            .map_err(|f| {
                anyhow::anyhow!(
                    "{name} IOVA {:#x}+{:#x} does not translate: {f:?}",
                    m.iova,
                    m.size
                )
            })?;
        let first = pieces.first().map(|p| p.0).unwrap_or_default();
        if first != m.dma {
            bail!(
                "{name}: IOVA {:#x} maps to {first:#x}, but the driver's dma address is {:#x}",
                m.iova,
                m.dma
            );
        }
        parts.push(format!(
            "{name} iova {:#x} -> {:#x} ({} B)",
            m.iova, first, m.size
        ));
    }
    Ok(parts.join(", "))
}

impl RunningAdsp {
    /// Serves the link on `socket`: a virtio-serial stream, or with `mhi` a vfio-user MHI
    /// function.
    pub fn start(socket: &std::path::Path, mhi: bool) -> Result<Self> {
        let state = Arc::new((Mutex::new(Adsp::new()), Condvar::new()));
        let handler = Arc::new(Mutex::new(AdspHandler(state.clone())));
        let link = if mhi {
            Link::Mhi(
                MhiLink::serve(socket, handler).context("cannot start the ADSP's MHI function")?,
            )
        } else {
            Link::Serial(
                QrtrLink::serve(socket, handler).context("cannot start the ADSP's QRTR link")?,
            )
        };
        Ok(RunningAdsp { state, link })
    }

    #[track_caller]
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Adsp>> {
        crate::fatal::lock(&self.state.0, "ADSP").context("ADSP lock poisoned")
    }

    fn wait<T>(&self, what: &str, ready: impl FnMut(&mut Adsp) -> Option<T>) -> Result<T> {
        self.wait_for(QMI_TIMEOUT, what, ready)
    }

    fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut ready: impl FnMut(&mut Adsp) -> Option<T>,
    ) -> Result<T> {
        let (lock, cv) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut a = lock
            .lock()
            .map_err(|_| anyhow::anyhow!("ADSP lock poisoned"))?;
        loop {
            if let Some(v) = ready(&mut a) {
                return Ok(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "no answer from the guest within {}s while {what} (the DSP's client: {})",
                    timeout.as_secs(),
                    a.link.client().state().name()
                );
            }
            a = cv
                .wait_timeout(a, left)
                .map_err(|_| anyhow::anyhow!("ADSP lock poisoned"))?
                .0;
        }
    }

    /// `stream-enable card=N [pcm= dir= bits= ch= rate= buffer= si=]`: asks the guest's UAUDIO
    /// service for a stream and checks the answer against the SMMU.
    pub fn enable(
        &self,
        params: StreamParams,
        smmu: Option<&Arc<Mutex<SmmuTable>>>,
        endpoint: u32,
    ) -> Result<String> {
        self.wait("waiting for the UAUDIO service", |a| {
            matches!(a.link.client().state(), State::ServiceUp { .. }).then_some(())
        })?;
        let packets = {
            let mut a = self.lock()?;
            a.outcome = None;
            let now = a.now();
            a.link
                .enable(params, now)
                .map_err(|e| anyhow::anyhow!("cannot send the enable: {e}"))?
        };
        for p in packets {
            self.link.send(&p).context("sending the enable request")?;
        }
        self.wait("waiting for the enable response", |a| a.outcome.take())?
            .map_err(|e| anyhow::anyhow!(e))?;
        if let Some(mut a) = crate::fatal::lock(&self.state.0, "ADSP") {
            a.params = Some(params);
        }
        let r = {
            let a = self.lock()?;
            a.resources.context("enabled without resources")?
        };
        let maps = match smmu {
            Some(t) => {
                let mut t = t
                    .lock()
                    .map_err(|_| anyhow::anyhow!("SMMU lock poisoned"))?;
                check_mappings(&r, &mut t, endpoint)?
            }
            None => "no SMMU to check".into(),
        };
        Ok(format!(
            "slot {}, interrupter {}, data ep {:#04x}, {:?}; {maps}",
            r.slot_id, r.interrupter_num, r.data_ep.b_endpoint_address, r.speed
        ))
    }

    /// Lets the DSP stop its stream engine when the guest sends DISCONNECT.
    pub fn set_engine_stop(&self, stop: EngineStop) {
        if let Some(mut a) = crate::fatal::lock(&self.state.0, "ADSP") {
            a.stop_engine = Some(stop);
        }
    }

    /// `expect-indication`: waits (bounded) for an indication from the guest and reports it
    /// decoded, and for the DSP's disable that answered it.
    pub fn expect_indication(&self) -> Result<String> {
        let ind = self.wait("waiting for an indication", |a| {
            (!a.indications.is_empty()).then(|| a.indications.remove(0))
        })?;
        let answer = self.wait("waiting for the disable that answers it", |a| {
            a.outcome.take()
        })?;
        Ok(format!(
            "indication {ind}; the DSP's disable: {}",
            answer.unwrap_or_else(|e| format!("refused: {e}"))
        ))
    }

    /// `dsp-crash`: the DSP vanishes (the backend drops the QRTR link: the relay exits, the
    /// guest's qrtr-tun endpoint goes away with node 5) and comes back; reports how long the
    /// guest took to announce UAUDIO to the new DSP.
    pub fn crash(&self) -> Result<String> {
        let before = self.lock().map(|a| a.service_ups).unwrap_or(0);
        let t0 = Instant::now();
        self.link.hang_up()?;
        self.wait(
            "waiting for the guest to announce UAUDIO to the restarted DSP",
            |a| (a.service_ups > before).then_some(()),
        )?;
        let a = self.lock()?;
        Ok(format!(
            "link dropped; the guest announced UAUDIO again at {} after {:.1}s",
            a.service_seen.as_deref().unwrap_or("?"),
            t0.elapsed().as_secs_f64()
        ))
    }

    /// `dsp-on-indication disable|bye|ignore|hold|keep-streaming`: how the DSP answers the next indications.
    pub fn set_on_indication(&self, mode: OnIndication) -> Result<String> {
        let mut a = self.lock()?;
        a.on_indication = mode;
        Ok(format!("the DSP answers indications with {mode:?}"))
    }

    /// `dsp-bye` / `dsp-del-client`: the DSP restarts on a link that stays up, saying BYE (or
    /// DEL_CLIENT for its client port, then BYE) first; waits for the guest to announce UAUDIO
    /// to it again.
    pub fn bye(&self, del_client: bool) -> Result<String> {
        let before = self.lock().map(|a| a.service_ups).unwrap_or(0);
        let t0 = Instant::now();
        let packets = {
            let mut a = self.lock()?;
            a.restart(del_client)
        };
        for p in packets {
            self.link.send(&p).context("sending the goodbye")?;
        }
        self.wait(
            "waiting for the guest to announce UAUDIO after the goodbye",
            |a| (a.service_ups > before).then_some(()),
        )?;
        Ok(format!(
            "{} sent; the guest announced UAUDIO again after {:.1}s",
            if del_client {
                "DEL_CLIENT and BYE"
            } else {
                "BYE"
            },
            t0.elapsed().as_secs_f64()
        ))
    }

    /// The parameters of the current stream.
    pub fn params(&self) -> Option<StreamParams> {
        crate::fatal::lock(&self.state.0, "ADSP").and_then(|a| a.params)
    }

    /// Whether the DSP's client holds an enabled stream.
    pub fn streaming(&self) -> bool {
        crate::fatal::lock(&self.state.0, "ADSP")
            .is_some_and(|a| matches!(a.link.client().state(), State::Streaming { .. }))
    }

    /// The resources of the current stream.
    pub fn resources(&self) -> Option<StreamResources> {
        crate::fatal::lock(&self.state.0, "ADSP").and_then(|a| a.resources)
    }

    /// `stream-disable`: the guest releases the stream.
    pub fn disable(&self) -> Result<String> {
        let packets = {
            let mut a = self.lock()?;
            a.outcome = None;
            let now = a.now();
            a.link
                .disable(now)
                .map_err(|e| anyhow::anyhow!("cannot send the disable: {e}"))?
        };
        for p in packets {
            self.link.send(&p).context("sending the disable request")?;
        }
        self.wait("waiting for the disable response", |a| a.outcome.take())?
            .map_err(|e| anyhow::anyhow!(e))
    }

    /// `dsp-raw KIND card=N [...]`: sends a stream request outside the client's bookkeeping
    /// and reports what the guest made of it within 3 s: no answer, or the status it answered
    /// with. KIND is `enable` or `disable` (well-formed), or a way to break an enable (see
    /// [`RawKind`]).
    pub fn raw_request(&self, kind: RawKind, params: StreamParams) -> Result<String> {
        let (request, broken) = match kind {
            RawKind::Enable => (params.request(true), None),
            RawKind::Disable => (params.request(false), None),
            RawKind::Malformed(k) => (params.request(true), Some(k)),
        };
        let (txn, packets) = {
            let mut a = self.lock()?;
            let txn = a.next_raw_txn;
            a.next_raw_txn = a.next_raw_txn.wrapping_add(1).max(0xf000);
            let message = match broken {
                Some(k) => k.encode(&request, txn),
                None => request.encode(txn),
            }
            .map_err(|e| anyhow::anyhow!("cannot encode the request: {e}"))?;
            let packets = a
                .link
                .send_raw(&message)
                .context("the UAUDIO service is not known yet")?
                .map_err(|e| anyhow::anyhow!("cannot send: {e}"))?;
            (txn, packets)
        };
        for p in packets {
            self.link.send(&p).context("sending the raw request")?;
        }
        let answer = self.wait_for(Duration::from_secs(3), "", |a| {
            let i = a.strays.iter().position(|(t, _)| *t == txn)?;
            Some(a.strays.remove(i).1)
        });
        Ok(match answer {
            Ok(what) => format!("{kind} request (txn {txn}): answered, {what}"),
            Err(_) => format!("{kind} request (txn {txn}): no answer in 3 s"),
        })
    }

    /// One line for the summary.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Link::Mhi(m) = &self.link {
            lines.push(m.summary());
        }
        lines.push(match crate::fatal::lock(&self.state.0, "ADSP") {
            Some(a) => format!(
                "adsp: {} QRTR packet(s) in, {} out, UAUDIO service {}, client {:?}; last: {}",
                a.packets_in,
                a.packets_out,
                a.service_seen
                    .as_deref()
                    .map_or("never seen".into(), |s| format!("announced at {s}")),
                a.link.client().state(),
                a.log.last().map(String::as_str).unwrap_or("nothing")
            ),
            None => "adsp: state lock poisoned".into(),
        });
        lines
    }
}
