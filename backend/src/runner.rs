//! Scenario runs: build or reuse the image, boot once per scenario, judge, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::devices::RunningDevices;
use crate::image::{self, Image, KernelChoice};
use crate::paths;
use crate::report::{junit, ktap};
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
    /// Faults at exact kernel functions (loads the TCG plugin).
    pub fault_at: Vec<FaultAt>,
    /// Load the TCG plugin even when nothing needs it (idle-cost measurement).
    pub plugin: bool,
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
    let running = Arc::new(RunningDevices::start(
        &opts.devices,
        &opts.out_dir.join(scenario),
        &opts.headset,
    )?);
    let fault_at: Option<RunningPlugin> = match plan {
        Some(plan) => {
            let devices = running.clone();
            Some(plan.serve(Box::new(move |action, hit| {
                devices.control(action, hit.pid)
            }))?)
        }
        None => None,
    };
    let mut backend_failures = Vec::new();
    let mut requests = Vec::new();
    let spec = BootSpec {
        machine: opts.machine.clone(),
        sockets: running.sockets.clone(),
        dtb: p.dtb.clone(),
        scenario: Some(scenario.to_string()),
        append: [opts.devices.cmdline(), opts.append.clone()].concat(),
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
        "[sideband] scenario {scenario}: booting {}",
        p.image.release
    );
    let outcome = session::boot(&p.image, &spec, &mut |req, qemu_pid| {
        let answer = match req.strip_prefix("at-arm ") {
            Some(rest) => arm_at_run_time(fault_at.as_ref(), rest),
            None => running.control(req, qemu_pid),
        };
        match &answer {
            Ok(a) => requests.push(format!("{req}: {a}")),
            Err(e) => {
                requests.push(format!("{req}: FAILED: {e:#}"));
                backend_failures.push(format!("backend request `{req}` failed: {e:#}"));
            }
        }
        answer
    })?;
    if let Some(f) = &fault_at {
        requests.extend(f.server.hits().iter().map(|h| h.to_string()));
    }
    drop(fault_at);
    let devices = running.summary();
    drop(running);
    for line in &devices {
        eprintln!("[sideband] scenario {scenario}: {line}");
    }
    let failure = match (outcome.failure(), backend_failures.is_empty()) {
        (f, true) => f,
        (None, false) => Some(backend_failures.join("\n")),
        (Some(f), false) => Some(format!("{}\n{f}", backend_failures.join("\n"))),
    };
    eprintln!(
        "[sideband] scenario {scenario}: {} in {:.1}s",
        if failure.is_none() {
            "passed"
        } else {
            "FAILED"
        },
        outcome.wall.as_secs_f64()
    );
    Ok(ScenarioResult {
        name: scenario.to_string(),
        outcome,
        devices,
        requests,
        failure,
    })
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

/// `at-arm TRIGGER ADDR[-END] [REQUEST...]` from a scenario: a trigger whose address only the
/// guest knows (a module function, from /proc/kallsyms).
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
    let host: Vec<ktap::HostResult<'_>> = results
        .iter()
        .map(|r| ktap::HostResult {
            name: &r.name,
            cases: &r.outcome.ktap.cases,
            failure: r.failure.clone(),
        })
        .collect();
    let text = ktap::render(&host);
    std::fs::write(out_dir.join("results.ktap"), &text)?;

    let mut cases = Vec::new();
    for r in results {
        for c in &r.outcome.ktap.cases {
            cases.push(junit::JunitCase {
                class: r.name.clone(),
                name: c.name.clone(),
                seconds: 0.0,
                failure: match &c.status {
                    ktap::Status::Fail(why) => Some((why.clone(), c.diagnostics.join("\n"))),
                    _ => None,
                },
                skipped: match &c.status {
                    ktap::Status::Skip(why) => Some(why.clone()),
                    _ => None,
                },
            });
        }
        // The scenario as a whole: boot, kernel reports, completeness.
        cases.push(junit::JunitCase {
            class: r.name.clone(),
            name: "boot".into(),
            seconds: r.outcome.wall.as_secs_f64(),
            failure: r
                .failure
                .as_ref()
                .map(|f| (f.lines().next().unwrap_or("failed").to_string(), f.clone())),
            skipped: None,
        });
    }
    if let Some(dir) = junit_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(junit_path, junit::render("sideband", &cases))
        .with_context(|| format!("cannot write {}", junit_path.display()))?;
    Ok(text)
}
