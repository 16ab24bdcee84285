//! The devices' own judgement of a run: what the emulated hardware saw go wrong, which the
//! guest's kernel log may never show.
//!
//! - An SMMU translation fault is the DSP touching an IOVA the driver does not map (on a phone:
//!   a DSP crash or a corrupted stream).
//! - An error event on the DSP's event ring is a transfer of the offloaded stream that failed.
//! - A Host System Error or Host Controller Error no `hc-error` request asked for is a controller
//!   that died by itself (a model bug or a guest that broke it).
//! - A command the guest issued that completed with TRB Error, Context State Error or Parameter
//!   Error is a driver (or model) bug.
//! - A stream the DSP asked for because q6afe started its USB port (the platform card's trigger)
//!   that the guest refused, or whose disable failed, is audio user space thinks it plays and
//!   nobody hears.
//!
//! Each is a [`DeviceProblem`] with the backend's figures; whether it fails the scenario is the
//! verdict's decision (a scenario's header may allow a kind: `# allow-device: KIND...`).
//! [`judge`] is a pure function of [`DeviceFigures`], which `RunningDevices::judgement` gathers.

use std::fmt;

use sideband_device::adsp::engine::EngineStats;
use sideband_device::smmu::{Fault, FaultReason};

/// A kind of device problem; [`name`](Self::name) is the word a scenario header uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceProblemKind {
    /// An access of the DSP failed translation in its SMMU.
    SmmuFault,
    /// The DSP's event ring reported a failed transfer (or an event that is no transfer's).
    DspRingError,
    /// The controller raised Host System Error or Host Controller Error unasked.
    HcError,
    /// A command the guest issued completed with TRB Error, Context State Error or Parameter
    /// Error.
    CommandError,
    /// An AFE-driven stream enable or disable failed.
    AfeStream,
}

impl DeviceProblemKind {
    /// Every kind, in report order.
    pub const ALL: [DeviceProblemKind; 5] = [
        DeviceProblemKind::SmmuFault,
        DeviceProblemKind::DspRingError,
        DeviceProblemKind::AfeStream,
        DeviceProblemKind::HcError,
        DeviceProblemKind::CommandError,
    ];

    /// The header word: `smmu-fault`, `dsp-ring-error`, `afe-stream`, `hc-error`,
    /// `command-error`.
    pub fn name(self) -> &'static str {
        match self {
            DeviceProblemKind::SmmuFault => "smmu-fault",
            DeviceProblemKind::DspRingError => "dsp-ring-error",
            DeviceProblemKind::HcError => "hc-error",
            DeviceProblemKind::CommandError => "command-error",
            DeviceProblemKind::AfeStream => "afe-stream",
        }
    }

    /// The kind a header word names.
    pub fn from_name(word: &str) -> Option<DeviceProblemKind> {
        Self::ALL.into_iter().find(|k| k.name() == word)
    }
}

/// Something the devices saw go wrong in a run, with the backend's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceProblem {
    /// What kind of problem.
    pub kind: DeviceProblemKind,
    /// The figures, e.g. `adsp-smmu: 3 translation fault(s) by the DSP (first at iova 0x1000 ...)`.
    pub detail: String,
}

impl fmt::Display for DeviceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

/// The DSP's streams in one run, every one of them (a stopped stream's figures stay).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DspFigures {
    /// Streams the DSP ran.
    pub streams: u64,
    /// Events the DSP consumed from its event rings.
    pub events: u64,
    /// Of those, the errors nothing explains: completion codes other than Success, Short Packet,
    /// Missed Service, Ring Underrun, USB Transaction Error (a headset unplugged mid-stream, an
    /// `xact-errors` request) and Stopped (the guest's Stop Endpoint), and events that are not
    /// transfer events.
    pub ring_errors: u64,
    /// The first such event's completion code (0: not a transfer event).
    pub first_ring_error_code: Option<u8>,
    /// SMMU translation faults (a stream stops at its first).
    pub smmu_faults: u64,
    /// The run's first fault.
    pub first_fault: Option<Fault>,
}

impl DspFigures {
    /// Adds one stream's figures.
    pub fn add_stream(&mut self, s: &EngineStats, fault: Option<Fault>) {
        self.streams += 1;
        self.events += s.events;
        self.ring_errors += s.unexplained_errors;
        if self.first_ring_error_code.is_none() {
            self.first_ring_error_code = s.first_unexplained_code;
        }
        self.smmu_faults += s.smmu_faults;
        if self.first_fault.is_none() {
            self.first_fault = fault;
        }
    }
}

/// Commands the guest issued that completed with an error, by completion code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandErrors {
    /// TRB Error (5).
    pub trb_error: u64,
    /// Context State Error (19).
    pub context_state_error: u64,
    /// Parameter Error (17).
    pub parameter_error: u64,
}

impl CommandErrors {
    fn total(&self) -> u64 {
        self.trb_error + self.context_state_error + self.parameter_error
    }
}

/// The controller in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XhciFigures {
    /// Commands completed.
    pub commands: u64,
    /// Host System Errors raised (the model's count: requested ones included).
    pub host_system_errors: u64,
    /// Host Controller Errors the bus clock saw begin.
    pub host_controller_errors: u64,
    /// `hc-error hse` requests.
    pub hse_requested: u64,
    /// `hc-error hce` requests.
    pub hce_requested: u64,
    /// Commands by error code; `None` while the model counts no completion codes.
    pub command_errors: Option<CommandErrors>,
}

/// What [`judge`] reads: the backend's own figures of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceFigures {
    /// The DSP's streams.
    pub dsp: DspFigures,
    /// The controller; `None` when the boot had no xHCI.
    pub xhci: Option<XhciFigures>,
    /// AFE-driven stream enables and disables that failed, with the first one's reason.
    pub afe_failures: (u64, Option<String>),
}

/// The problems in `f`, one per kind at most, in [`DeviceProblemKind::ALL`] order.
pub fn judge(f: &DeviceFigures) -> Vec<DeviceProblem> {
    let mut out = Vec::new();
    let mut problem = |kind, detail| out.push(DeviceProblem { kind, detail });
    let dsp = &f.dsp;
    if dsp.smmu_faults > 0 {
        let first = dsp.first_fault.map_or(String::new(), |x| {
            format!(
                " (first: a {} at iova {:#x} by endpoint {:#x}, {})",
                if x.write { "write" } else { "read" },
                x.iova,
                x.endpoint,
                reason(x.reason)
            )
        });
        problem(
            DeviceProblemKind::SmmuFault,
            format!(
                "adsp-smmu: {} translation fault(s) by the DSP in {} stream(s){first}",
                dsp.smmu_faults, dsp.streams
            ),
        );
    }
    if dsp.ring_errors > 0 {
        problem(
            DeviceProblemKind::DspRingError,
            format!(
                "adsp: {} error event(s) on the DSP's event ring (the first with completion code {}), of {} event(s) in {} stream(s)",
                dsp.ring_errors,
                dsp.first_ring_error_code.unwrap_or_default(),
                dsp.events,
                dsp.streams
            ),
        );
    }
    if let (n @ 1.., first) = &f.afe_failures {
        problem(
            DeviceProblemKind::AfeStream,
            format!(
                "adsp-afe: {n} AFE-driven stream enable(s)/disable(s) failed (first: {})",
                first.as_deref().unwrap_or("?")
            ),
        );
    }
    let Some(x) = &f.xhci else {
        return out;
    };
    let hse = x.host_system_errors.saturating_sub(x.hse_requested);
    let hce = x.host_controller_errors.saturating_sub(x.hce_requested);
    if hse + hce > 0 {
        problem(
            DeviceProblemKind::HcError,
            format!(
                "xhci: {} Host System Error(s) ({} asked for by hc-error hse), {} Host Controller Error(s) ({} asked for by hc-error hce)",
                x.host_system_errors, x.hse_requested, x.host_controller_errors, x.hce_requested
            ),
        );
    }
    if let Some(c) = x.command_errors.filter(|c| c.total() > 0) {
        let codes: Vec<String> = [
            (c.trb_error, "TRB Error"),
            (c.context_state_error, "Context State Error"),
            (c.parameter_error, "Parameter Error"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n} {name}"))
        .collect();
        problem(
            DeviceProblemKind::CommandError,
            format!(
                "xhci: {} of {} command(s) completed with an error: {}",
                c.total(),
                x.commands,
                codes.join(", ")
            ),
        );
    }
    out
}

fn reason(r: FaultReason) -> &'static str {
    match r {
        FaultReason::NotAttached => "endpoint not attached to a domain",
        FaultReason::Unmapped => "not mapped",
        FaultReason::Permission => "the mapping does not allow it",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(f: &DeviceFigures) -> Vec<&'static str> {
        judge(f).iter().map(|p| p.kind.name()).collect()
    }

    #[test]
    fn a_clean_run_has_no_problems() {
        assert!(judge(&DeviceFigures::default()).is_empty());
        let clean = DeviceFigures {
            dsp: DspFigures {
                streams: 2,
                events: 16002,
                ..DspFigures::default()
            },
            xhci: Some(XhciFigures {
                commands: 31,
                command_errors: Some(CommandErrors::default()),
                ..XhciFigures::default()
            }),
            afe_failures: (0, None),
        };
        assert!(judge(&clean).is_empty());
    }

    #[test]
    fn smmu_faults_and_ring_errors_of_every_stream_count() {
        let mut dsp = DspFigures::default();
        let first = Fault {
            endpoint: 0x2000f,
            iova: 0x1000,
            write: true,
            reason: FaultReason::Unmapped,
        };
        dsp.add_stream(
            &EngineStats {
                events: 100,
                errors: 7,
                unexplained_errors: 2,
                first_unexplained_code: Some(5),
                smmu_faults: 1,
                ..EngineStats::default()
            },
            Some(first),
        );
        dsp.add_stream(
            &EngineStats {
                events: 50,
                errors: 1,
                unexplained_errors: 1,
                first_unexplained_code: Some(3),
                smmu_faults: 1,
                ..EngineStats::default()
            },
            Some(Fault {
                iova: 0x9000,
                ..first
            }),
        );
        let p = judge(&DeviceFigures {
            dsp,
            ..DeviceFigures::default()
        });
        assert_eq!(
            p[0].to_string(),
            "smmu-fault: adsp-smmu: 2 translation fault(s) by the DSP in 2 stream(s) (first: a write at iova 0x1000 by endpoint 0x2000f, not mapped)"
        );
        assert_eq!(
            p[1].to_string(),
            "dsp-ring-error: adsp: 3 error event(s) on the DSP's event ring (the first with completion code 5), of 150 event(s) in 2 stream(s)"
        );
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn controller_errors_count_only_when_nobody_asked_for_them() {
        let asked = XhciFigures {
            host_system_errors: 1,
            hse_requested: 1,
            host_controller_errors: 1,
            hce_requested: 1,
            ..XhciFigures::default()
        };
        let f = |x| DeviceFigures {
            dsp: DspFigures::default(),
            xhci: Some(x),
            afe_failures: (0, None),
        };
        assert!(judge(&f(asked)).is_empty());
        // An injected HCE reset before the clock saw it: asked for more than seen is no problem.
        assert!(judge(&f(XhciFigures {
            host_controller_errors: 0,
            ..asked
        }))
        .is_empty());
        let p = judge(&f(XhciFigures {
            host_system_errors: 2,
            ..asked
        }));
        assert_eq!(
            p[0].to_string(),
            "hc-error: xhci: 2 Host System Error(s) (1 asked for by hc-error hse), 1 Host Controller Error(s) (1 asked for by hc-error hce)"
        );
        assert_eq!(
            names(&f(XhciFigures {
                host_controller_errors: 1,
                ..XhciFigures::default()
            })),
            ["hc-error"]
        );
    }

    #[test]
    fn command_errors_name_their_codes() {
        let x = XhciFigures {
            commands: 31,
            command_errors: Some(CommandErrors {
                trb_error: 1,
                context_state_error: 2,
                parameter_error: 0,
            }),
            ..XhciFigures::default()
        };
        let p = judge(&DeviceFigures {
            dsp: DspFigures::default(),
            xhci: Some(x),
            afe_failures: (0, None),
        });
        assert_eq!(
            p[0].to_string(),
            "command-error: xhci: 3 of 31 command(s) completed with an error: 1 TRB Error, 2 Context State Error"
        );
        let uncounted = XhciFigures {
            command_errors: None,
            ..x
        };
        assert!(judge(&DeviceFigures {
            dsp: DspFigures::default(),
            xhci: Some(uncounted),
            afe_failures: (0, None),
        })
        .is_empty());
    }

    #[test]
    fn kinds_round_trip_through_their_header_words() {
        for k in DeviceProblemKind::ALL {
            assert_eq!(DeviceProblemKind::from_name(k.name()), Some(k));
        }
        assert_eq!(DeviceProblemKind::from_name("smmu"), None);
        let all = DeviceFigures {
            dsp: DspFigures {
                streams: 1,
                events: 1,
                ring_errors: 1,
                first_ring_error_code: Some(5),
                smmu_faults: 1,
                first_fault: None,
            },
            xhci: Some(XhciFigures {
                host_system_errors: 1,
                command_errors: Some(CommandErrors {
                    parameter_error: 1,
                    ..CommandErrors::default()
                }),
                ..XhciFigures::default()
            }),
            afe_failures: (
                1,
                Some("the guest refused the stream: internal status -16".into()),
            ),
        };
        assert_eq!(
            names(&all),
            [
                "smmu-fault",
                "dsp-ring-error",
                "afe-stream",
                "hc-error",
                "command-error"
            ]
        );
        assert!(judge(&all)[2]
            .detail
            .contains("1 AFE-driven stream enable(s)/disable(s) failed (first: the guest refused"));
    }
}
