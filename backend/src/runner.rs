//! Scenario runs: build or reuse the image, boot once per scenario, judge, report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use crate::ctl;
use crate::devices::RunningDevices;
use crate::image::{self, Image, KernelChoice};
use crate::paths;
use crate::report::{junit, ktap};
use crate::request::Request;
use crate::scenario::{self, Expectation};

use crate::vm::dt;
use crate::vm::machine::{DeviceSet, Machine};
use crate::vm::plugin::{self, FaultAt, PluginPlan, RunningPlugin};
use crate::vm::session::{self, BootOutcome, BootSpec};

/// Options shared by every command that boots the guest.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The kernel to run.
    pub kernel: KernelChoice,
    /// Output folder for console logs and reports.
    pub out_dir: PathBuf,
    /// Extra kernel command-line words.
    pub append: Vec<String>,
    /// Deadline for the guest to become ready.
    pub ready_timeout: Duration,
    /// Deadline for each scenario once the guest is ready.
    pub run_timeout: Duration,
    /// Echo the console live.
    pub echo: bool,
    /// The machine.
    pub machine: Machine,
    /// The devices the backend serves.
    pub devices: DeviceSet,
    /// The headset's profile (`headset-uac2`, `uac2:rates=48000:bits=16:ch=8`, `uac1`, ...).
    pub headset: String,
    /// Capture every USB transfer to this pcap file (one per scenario when several run).
    pub pcap: Option<Capture>,
    /// Print a progress line while the DSP streams.
    pub progress: bool,
    /// Faults at exact kernel functions (loads the TCG plugin).
    pub fault_at: Vec<FaultAt>,
    /// Load the TCG plugin even when nothing needs it (idle-cost measurement).
    pub plugin: bool,
}

/// Where `--pcap` captures go.
#[derive(Clone, Debug)]
pub struct Capture {
    /// The file (a scenario's name is added when several scenarios run).
    pub path: PathBuf,
    /// Size cap in bytes.
    pub cap: u64,
    /// Several scenarios run: one file each.
    pub per_scenario: bool,
}

impl Capture {
    /// The file for `scenario`: `FILE` itself, or `STEM-SCENARIO.EXT` when several run.
    pub fn path_for(&self, scenario: &str) -> PathBuf {
        if !self.per_scenario {
            return self.path.clone();
        }
        let stem = self
            .path
            .file_stem()
            .map_or("capture".into(), |s| s.to_string_lossy().into_owned());
        let ext = self
            .path
            .extension()
            .map_or("pcap".into(), |s| s.to_string_lossy().into_owned());
        self.path.with_file_name(format!("{stem}-{scenario}.{ext}"))
    }
}

/// A booted-and-judged scenario.
#[derive(Debug)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// What the boot produced.
    pub outcome: BootOutcome,
    /// What the emulated devices saw, one line each.
    pub devices: Vec<String>,
    /// Requests the scenario made of the backend, each with its answer.
    pub requests: Vec<String>,
    /// Why it failed, if it did.
    pub failure: Option<String>,
    /// The kernel it ran on (`7.3`, `7.3+fixture`, a tree).
    pub kernel: String,
    /// The judgement of all of it against the header.
    pub verdict: Verdict,
    /// What the emulated devices judge wrong in the run (SMMU faults, DSP ring errors,
    /// controller errors), with the backend's figures; not part of `failure`.
    pub device_problems: Vec<crate::devices::DeviceProblem>,
}

pub use crate::verdict::Verdict;

impl ScenarioResult {
    /// The verdict: the failure (or pass) judged against the header's marks for this kernel.
    pub fn verdict(&self) -> Verdict {
        self.verdict.clone()
    }
}

/// Kernel reports the header expects (`# expect-report:`) are not failures: they move out of
/// the outcome's findings and are listed as requests-style lines instead.
fn take_expected_reports(
    header: &scenario::Scenario,
    outcome: &mut session::BootOutcome,
) -> Vec<String> {
    let mut seen = Vec::new();
    outcome.findings.retain(|f| {
        let expected = header.expected_reports.iter().any(|e| {
            e.kind == f.kind.name()
                && e.pattern
                    .as_ref()
                    .is_none_or(|re| f.evidence.iter().any(|l| re.is_match(l)))
        });
        if expected {
            seen.push(format!(
                "expected kernel report ({}): {}",
                f.kind,
                f.evidence.first().map_or("", |l| l.as_str())
            ));
        }
        !expected
    });
    seen
}

/// A ready-to-boot image plus the DTB for the devices attached.
#[derive(Debug)]
pub struct Prepared {
    /// Kernel, initramfs and QEMU.
    pub image: Image,
    /// Device tree.
    pub dtb: PathBuf,
}

/// Builds or reuses everything needed to boot.
pub fn prepare(opts: &RunOptions) -> Result<Prepared> {
    let image = image::ensure(&opts.kernel)?;
    let dtb = dt::build(
        &image.qemu,
        &opts.machine,
        &opts.devices.dt_spec(),
        &paths::cache_dir(),
    )
    .context("cannot build the device tree")?;
    Ok(Prepared { image, dtb })
}

/// Boots once and runs `scenario`.
pub fn run_scenario(p: &Prepared, opts: &RunOptions, scenario: &str) -> Result<ScenarioResult> {
    let header = scenario::select(&[scenario.to_string()])?
        .pop()
        .context("scenario vanished")?;
    let expected: Vec<Expectation> = header
        .expectations_for(opts.kernel.variant())
        .into_iter()
        .cloned()
        .collect();
    let mut devices = opts.devices;
    devices.adsp_mhi |= header.adsp_mhi;
    devices.adsp_glink |= header.adsp_glink;
    devices.q6_card |= header.q6_card;
    // A header that changes the device tree (the platform card) gets its own DTB.
    let dtb = if devices.dt_spec() == opts.devices.dt_spec() {
        p.dtb.clone()
    } else {
        dt::build(
            &p.image.qemu,
            &opts.machine,
            &devices.dt_spec(),
            &paths::cache_dir(),
        )
        .context("cannot build the device tree")?
    };
    let opts = &RunOptions {
        devices,
        ..opts.clone()
    };
    // Triggers are resolved and the plugin checked before anything starts.
    let plan = if needs_plugin(opts, scenario) {
        Some(PluginPlan::prepare(
            &p.image.qemu,
            &p.image.kernel_dir,
            &opts.fault_at,
        )?)
    } else {
        None
    };
    // A backend failure belongs to the run it happened in (the devices start here).
    crate::fatal::clear();
    let running =
        RunningDevices::start_shared(&opts.devices, &opts.out_dir.join(scenario), &opts.headset)?;
    let fault_at = serve_plugin(plan, &running)?;
    let pcap = opts.pcap.as_ref().map(|c| (c.path_for(scenario), c.cap));
    if let Some((path, cap)) = &pcap {
        running.start_capture(path, *cap)?;
        eprintln!(
            "[sideband] scenario {scenario}: capturing USB traffic to {}",
            path.display()
        );
    }
    let mut backend_failures = Vec::new();
    let mut requests = Vec::new();
    let spec = BootSpec {
        machine: opts.machine.clone(),
        sockets: running.sockets.clone(),
        dtb,
        scenario: Some(scenario.to_string()),
        append: kernel_append(opts, fault_at.as_ref()),
        ready_timeout: opts.ready_timeout,
        run_timeout: opts.run_timeout,
        console_log: session::console_log_path(&opts.out_dir, scenario),
        echo: opts.echo,
        qemu_args: fault_at
            .as_ref()
            .map(|f| f.qemu_args.clone())
            .unwrap_or_default(),
    };
    eprintln!(
        "[sideband] scenario {scenario}: booting {} ({})",
        p.image.release, p.image.identity
    );
    // The control socket (`sideband ctl`) and the progress line run beside the boot.
    let ctl_path = ctl::socket_path(&opts.out_dir);
    let listener = ctl::server::bind(&ctl_path)
        .with_context(|| format!("cannot create the control socket {}", ctl_path.display()))?;
    eprintln!(
        "[sideband] scenario {scenario}: control socket {} (`sideband ctl --socket PATH stats`)",
        ctl_path.display()
    );
    let qemu = AtomicU32::new(0);
    let stop = AtomicBool::new(false);
    let handle = |req: &str| running.control(req, qemu.load(Ordering::Relaxed));
    let mut outcome = std::thread::scope(|sc| {
        // A panic there must end the boot with its message, not unwind out of the scope.
        sc.spawn(|| crate::fatal::contain(|| ctl::server::serve(&listener, &stop, &handle)));
        if opts.progress {
            sc.spawn(|| crate::fatal::contain(|| progress(&running, &stop)));
        }
        let outcome = session::boot(&p.image, &spec, &mut |console, qemu_pid| {
            qemu.store(qemu_pid, Ordering::Relaxed);
            // A request the scenario waits on (`sbctl`) is judged by the scenario.
            let (req, asked) = (console.text, console.asked);
            let answer = match req.parse::<Request>() {
                Ok(Request::AtArm(rest)) => arm_at_run_time(fault_at.as_ref(), &rest),
                Ok(request) => running.execute(&request, qemu_pid),
                Err(e) => Err(e),
            };
            match &answer {
                Ok(a) => requests.push(format!("{req}: {a}")),
                Err(e) if asked => {
                    requests.push(format!("{req}: failed (the scenario asked): {e:#}"))
                }
                Err(e) => {
                    requests.push(format!("{req}: FAILED: {e:#}"));
                    backend_failures.push(format!("backend request `{req}` failed: {e:#}"));
                }
            }
            answer
        });
        stop.store(true, Ordering::Relaxed);
        outcome
    })?;
    let _ = std::fs::remove_file(&ctl_path);
    if let Some(f) = &fault_at {
        requests.extend(f.server.hits().iter().map(|h| h.to_string()));
    }
    drop(fault_at);
    let devices = running.summary();
    let device_problems = running.judgement();
    drop(running);
    // A backend thread that failed after the boot's last look (while the devices stopped).
    if let Some(f) = crate::fatal::take() {
        if !matches!(outcome.end, session::End::BackendFailed(_)) {
            backend_failures.push(format!("the backend failed after the boot: {f}"));
        }
    }
    write_backend_log(&opts.out_dir.join(scenario), &requests, &devices);
    for line in &devices {
        eprintln!("[sideband] scenario {scenario}: {line}");
    }
    requests.extend(take_expected_reports(&header, &mut outcome));
    let (allowed, device_problems): (Vec<_>, Vec<_>) = device_problems
        .into_iter()
        .partition(|p| header.allowed_device.iter().any(|k| k == p.kind.name()));
    requests.extend(
        allowed
            .iter()
            .map(|p| format!("allowed device judgement: {p}")),
    );
    let console: Vec<String> = std::fs::read_to_string(&outcome.console_log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let kernel = opts.kernel.to_string();
    let (verdict, why_not_known) = crate::verdict::judge(
        &crate::verdict::Run {
            kernel: &kernel,
            outcome: &outcome,
            backend_failures: &backend_failures,
            device_problems: &device_problems,
            console: &console,
        },
        &expected,
    );
    let mut reasons: Vec<String> = why_not_known.into_iter().collect();
    reasons.extend(backend_failures.iter().cloned());
    reasons.extend(
        device_problems
            .iter()
            .map(|p| format!("the devices judge: {p}")),
    );
    reasons.extend(outcome.failure());
    let failure = match verdict {
        Verdict::Pass => None,
        _ => Some(reasons.join("\n")),
    };
    // The capture of a failed scenario is evidence: name it with the failure.
    let failure = match (failure, &pcap) {
        (Some(f), Some((path, _))) => Some(format!("{f}\nUSB capture: {}", path.display())),
        (f, _) => f,
    };
    let result = ScenarioResult {
        name: scenario.to_string(),
        outcome,
        devices,
        requests,
        failure,
        kernel,
        verdict,
        device_problems,
    };
    for p in &result.device_problems {
        eprintln!("[sideband] scenario {scenario}: device problem {p}");
    }
    eprintln!(
        "[sideband] scenario {scenario}: {} in {:.1}s",
        match result.verdict() {
            Verdict::Pass => "passed".to_string(),
            Verdict::Fail => "FAILED".to_string(),
            v => v.word().to_string(),
        },
        result.outcome.wall.as_secs_f64()
    );
    Ok(result)
}

/// The scenario folder's `backend.log`: every request with its answer, then what the devices saw.
fn write_backend_log(dir: &Path, requests: &[String], devices: &[String]) {
    let mut text = String::from("# requests from the scenario, with the backend's answers\n");
    for r in requests {
        text += r;
        text.push('\n');
    }
    text += "# what the emulated devices saw\n";
    for d in devices {
        text += d;
        text.push('\n');
    }
    if let Err(e) =
        std::fs::create_dir_all(dir).and_then(|()| std::fs::write(dir.join("backend.log"), text))
    {
        log::warn!("cannot write {}/backend.log: {e}", dir.display());
    }
}

/// Prints the stream's figures while the DSP streams: on a terminal one line rewritten every
/// second, otherwise (CI logs) a line every 5 seconds.
fn progress(running: &RunningDevices, stop: &AtomicBool) {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let every = Duration::from_secs(if tty { 1 } else { 5 });
    let mut last = std::time::Instant::now();
    let mut shown = false;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() < every {
            continue;
        }
        last = std::time::Instant::now();
        match crate::devices::progress_line(&running.stats()) {
            Some(line) if tty => {
                eprint!("\r\x1b[2K[sideband] {line}");
                shown = true;
            }
            Some(line) => eprintln!("[sideband] {line}"),
            None if shown => {
                eprintln!();
                shown = false;
            }
            None => {}
        }
    }
    if shown {
        eprintln!();
    }
}

/// Whether a boot loads the TCG plugin: asked for, a fault given on the command line, or a
/// scenario that arms triggers itself.
fn needs_plugin(opts: &RunOptions, scenario: &str) -> bool {
    let script = paths::repo_root()
        .join("guest-tests/scenarios")
        .join(format!("{scenario}.sh"));
    opts.plugin
        || !opts.fault_at.is_empty()
        || std::fs::read_to_string(script).is_ok_and(|s| plugin::scenario_arms_triggers(&s))
}

/// The guest's extra kernel command line: the emulated devices' words, the plugin's when it is
/// loaded, then the user's `--append` words.
pub fn kernel_append(opts: &RunOptions, plugin: Option<&RunningPlugin>) -> Vec<String> {
    [
        opts.devices.cmdline(),
        plugin.map(|f| f.kernel_args.clone()).unwrap_or_default(),
        opts.append.clone(),
    ]
    .concat()
}

/// Starts the plugin's socket when the boot loads the plugin; its triggers' actions run as
/// control requests on `devices`.
pub fn serve_plugin(
    plan: Option<PluginPlan>,
    devices: &Arc<RunningDevices>,
) -> Result<Option<RunningPlugin>> {
    let Some(plan) = plan else {
        return Ok(None);
    };
    let devices = devices.clone();
    Ok(Some(plan.serve(Box::new(move |action, hit| {
        devices.control(action, hit.pid)
    }))?))
}

/// `at-arm TRIGGER ADDR[-END] [REQUEST...]` from a scenario (`rest` is [`Request::AtArm`]'s
/// text): a trigger whose address only the guest knows (a module function, from /proc/kallsyms).
fn arm_at_run_time(fault_at: Option<&RunningPlugin>, rest: &str) -> Result<String> {
    let f = fault_at.context("at-arm needs the TCG plugin, which this boot did not load")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (arm, action) = plugin::parse_runtime_arm(&words)?;
    f.server.arm(arm, &action)
}

/// Writes `results.ktap` and the JUnit file; returns the KTAP text.
pub fn write_reports(
    results: &[ScenarioResult],
    out_dir: &Path,
    junit_path: &Path,
) -> Result<String> {
    let several_kernels = results
        .first()
        .is_some_and(|f| results.iter().any(|o| o.kernel != f.kernel));
    let names: Vec<String> = results
        .iter()
        .map(|r| match several_kernels {
            true => format!("{}@{}", r.name, r.kernel),
            false => r.name.clone(),
        })
        .collect();
    let host: Vec<ktap::HostResult<'_>> = results
        .iter()
        .zip(&names)
        .map(|(r, name)| ktap::HostResult {
            name,
            cases: &r.outcome.ktap.cases,
            failure: r.failure.clone(),
            todo: match r.verdict() {
                Verdict::KnownFailure(why) => Some(format!("known failure on {}: {why}", r.kernel)),
                _ => None,
            },
        })
        .collect();
    let text = ktap::render(&host);
    std::fs::write(out_dir.join("results.ktap"), &text)?;

    let mut cases = Vec::new();
    for r in results {
        // A known failure is reported as skipped with its evidence, so CI stays green on the
        // harness while the finding stays readable.
        let known = match r.verdict() {
            Verdict::KnownFailure(why) => Some(format!("known failure on {}: {why}", r.kernel)),
            _ => None,
        };
        let class = match several_kernels {
            true => format!("{}.{}", r.kernel, r.name),
            false => r.name.clone(),
        };
        for c in &r.outcome.ktap.cases {
            let failure = match &c.status {
                ktap::Status::Fail(why) => Some((why.clone(), c.diagnostics.join("\n"))),
                _ => None,
            };
            let (failure, skipped) = match (&known, failure) {
                (Some(k), Some((why, details))) => (None, Some(format!("{k}; {why}\n{details}"))),
                (_, f) => (
                    f,
                    match &c.status {
                        ktap::Status::Skip(why) => Some(why.clone()),
                        _ => None,
                    },
                ),
            };
            cases.push(junit::JunitCase {
                class: class.clone(),
                name: c.name.clone(),
                seconds: 0.0,
                failure,
                skipped,
            });
        }
        // The scenario as a whole: boot, kernel reports, completeness, expectation.
        let failure = match r.verdict() {
            Verdict::MissedExpected(why) => Some((
                "expected to fail on this kernel, but passed".to_string(),
                why,
            )),
            Verdict::NotReproduced(why) => {
                Some(("the known failure did not reproduce".to_string(), why))
            }
            _ => r
                .failure
                .as_ref()
                .map(|f| (f.lines().next().unwrap_or("failed").to_string(), f.clone())),
        };
        let (failure, skipped) = match (&known, failure) {
            (Some(k), Some((_, details))) => (None, Some(format!("{k}\n{details}"))),
            (_, f) => (f, None),
        };
        cases.push(junit::JunitCase {
            class,
            name: "boot".into(),
            seconds: r.outcome.wall.as_secs_f64(),
            failure,
            skipped,
        });
    }
    if let Some(dir) = junit_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(junit_path, junit::render("sideband", &cases))
        .with_context(|| format!("cannot write {}", junit_path.display()))?;
    Ok(text)
}

/// A scenario × kernel table of verdicts (for several `--kernel` values).
pub fn matrix_table(results: &[ScenarioResult]) -> String {
    let mut kernels: Vec<&str> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for r in results {
        if !kernels.contains(&r.kernel.as_str()) {
            kernels.push(&r.kernel);
        }
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
    }
    let width = names.iter().map(|n| n.len()).max().unwrap_or(8).max(8);
    let mut out = format!("# {:<width$}", "scenario");
    for k in &kernels {
        out += &format!("  {k:<14}");
    }
    out.push('\n');
    for n in &names {
        out += &format!("# {n:<width$}");
        for k in &kernels {
            let cell = results
                .iter()
                .find(|r| r.name == *n && r.kernel == *k)
                .map_or("-", |r| r.verdict().word());
            out += &format!("  {cell:<14}");
        }
        out.push('\n');
    }
    out
}
