//! `sideband`: boots an unmodified arm64 Linux guest in stock QEMU against emulated Qualcomm USB
//! audio offload hardware, runs scenarios in it and reports KTAP and JUnit.

mod audio;
mod capture;
mod ctl;
mod devices;
mod fatal;
mod image;
mod paths;
mod report;
mod request;
mod runner;
mod scenario;
mod transport;
mod verdict;
mod vm;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

use image::KernelChoice;
use runner::RunOptions;
use vm::machine::{DeviceSet, Machine};
use vm::session::{self, BootSpec};

#[derive(Parser, Debug)]
#[command(
    name = "sideband",
    version,
    about = "USB audio offload on emulated Qualcomm hardware, for kernel CI"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Install and build whatever is missing (QEMU prefix, kernel, initramfs, DTB); print the paths.
    Setup(Common),
    /// The main job: set up, boot the guest, play an offloaded stream, print a one-screen summary.
    Run(Common),
    /// Run scenarios, each on a fresh boot; KTAP on stdout, JUnit in the output folder; exit 1 if
    /// any failed (known kernel failures marked in a scenario's header do not count). Several
    /// `--kernel` values run every scenario on each and print a scenario × kernel table.
    Test {
        #[command(flatten)]
        common: Common,
        /// Scenarios to run: names or patterns (`'fault-*'`) of guest-tests/scenarios/NAME.sh.
        /// Default: smoke.
        #[arg(value_name = "SCENARIO")]
        names: Vec<String>,
        /// The same, as an option (repeatable).
        #[arg(long = "scenario", short = 's')]
        scenarios: Vec<String>,
        /// List the scenarios with their purpose and expectations, then exit.
        #[arg(long)]
        list: bool,
        /// Run every scenario this many times (each on a fresh boot), e.g. to measure how often
        /// a race is hit.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        repeat: u32,
        /// JUnit XML file (default: OUT/junit.xml).
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Boot the guest with the console on this terminal (a shell), or run one scenario.
    Boot {
        #[command(flatten)]
        common: Common,
        /// Scenario to run instead of the shell.
        #[arg(long, short = 's')]
        scenario: Option<String>,
    },
    /// Check a kernel .config (or a tree holding one) against images/kernel/*.config.
    CheckConfig {
        /// A .config file or a kernel build tree.
        path: PathBuf,
    },
    /// Send a request to a running boot's control socket (`stats`, `unplug 1`, ...); print the
    /// answer; exit 1 when the request failed.
    #[command(after_help = request::help())]
    Ctl {
        /// The socket (default: OUT/sideband-ctl.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// The output folder of the boot.
        #[arg(long, default_value = "sideband-out")]
        out: PathBuf,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// The request, e.g. `stats`.
        #[arg(required = true)]
        request: Vec<String>,
    },
    /// Measure boot-to-ready time over several boots.
    BenchBoot {
        #[command(flatten)]
        common: Common,
        /// Number of boots.
        #[arg(long, short = 'n', default_value_t = 5)]
        count: u32,
        /// Alternate boots without and with the TCG plugin loaded (idle: no trigger) and print
        /// both figures and their ratio.
        #[arg(long)]
        plugin_overhead: bool,
    },
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Kernel: a Debian series (7.3, 7.2), optionally with a variant of images/kernel/variants
    /// (7.3+fixture, 7.3+kasan), or a kernel source/build tree. `test` takes several.
    #[arg(long, default_value = "7.3")]
    kernel: Vec<KernelChoice>,
    /// Output folder for console logs and reports.
    #[arg(long, default_value = "sideband-out")]
    out: PathBuf,
    /// Extra kernel command-line word (repeatable).
    #[arg(long)]
    append: Vec<String>,
    /// Seconds to wait for the guest's ready marker.
    #[arg(long, default_value_t = 120)]
    ready_timeout: u64,
    /// Seconds a scenario may run after the guest is ready.
    #[arg(long, default_value_t = 300)]
    run_timeout: u64,
    /// Echo the guest console live.
    #[arg(long, short = 'v')]
    verbose: bool,
    /// Guest vCPUs.
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// Guest memory in MiB (at least 1024: the ADSP's message RAM is the last MiB of the first
    /// GiB).
    #[arg(long, default_value_t = 1024)]
    memory: u32,
    /// Boot without the emulated devices (the offload drivers load with no hardware behind them).
    #[arg(long)]
    bare: bool,
    /// The ADSP's QRTR link: `serial` (a virtio-serial port and the guest's relay to qrtr-tun) or
    /// `mhi` (an emulated MHI PCI function and the guest's qrtr-mhi; it works across suspend).
    /// A scenario header `# adsp-link: mhi` picks MHI for that scenario.
    #[arg(long, value_name = "serial|mhi", default_value = "serial", value_parser = ["serial", "mhi"])]
    adsp_link: String,
    /// The headset: a named profile (headset-uac2, headset-uac1, uac2-implicit) or a description
    /// such as `uac2:rates=48000,96000:bits=16,24:ch=2:ppm=+100`.
    #[arg(long, default_value = devices::DEFAULT_HEADSET)]
    headset: String,
    /// Capture every USB transfer (offloaded streams included) to this pcap file (usbmon format,
    /// for Wireshark); with several scenarios, one file each (FILE-SCENARIO.pcap).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Size cap of a capture file, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pcap_limit: u64,
    /// Fault at an exact kernel function: `FUNC[:return][+HIT] REQUEST...`, e.g.
    /// `usb_reset_device+1 unplug 2` (repeatable). Loads the TCG plugin.
    #[arg(long = "at", value_name = "TRIGGER REQUEST")]
    fault_at: Vec<vm::plugin::FaultAt>,
    /// Load the TCG plugin even with no trigger (to measure its idle cost).
    #[arg(long)]
    plugin: bool,
}

impl Common {
    fn options(&self) -> Result<RunOptions> {
        if self.kernel.len() > 1 {
            bail!("only `sideband test` takes several --kernel values");
        }
        self.options_for(self.kernel.first().cloned().unwrap_or_default(), &self.out)
    }

    fn options_for(&self, kernel: KernelChoice, out: &std::path::Path) -> Result<RunOptions> {
        std::fs::create_dir_all(out)?;
        if self.cpus == 0 || self.memory < 1024 {
            bail!("--cpus must be at least 1 and --memory at least 1024 (MiB): the ADSP's message RAM is reserved at 0x7ff00000, the last MiB of the first GiB");
        }
        Ok(RunOptions {
            kernel,
            out_dir: out.to_path_buf(),
            append: self.append.clone(),
            ready_timeout: Duration::from_secs(self.ready_timeout),
            run_timeout: Duration::from_secs(self.run_timeout),
            echo: self.verbose,
            machine: Machine {
                memory_mib: self.memory,
                cpus: self.cpus,
            },
            devices: if self.bare {
                DeviceSet::default()
            } else {
                DeviceSet {
                    adsp_mhi: self.adsp_link == "mhi",
                    ..DeviceSet::all()
                }
            },
            headset: self.headset.clone(),
            pcap: self.pcap.as_ref().map(|p| runner::Capture {
                path: p.clone(),
                cap: self.pcap_limit.saturating_mul(1 << 20),
                per_scenario: false,
            }),
            progress: false,
            fault_at: self.fault_at.clone(),
            plugin: self.plugin,
        })
    }
}

fn setup(common: &Common) -> Result<ExitCode> {
    let opts = common.options()?;
    let p = runner::prepare(&opts)?;
    println!(
        "kernel     {} ({})",
        p.image.release,
        p.image.kernel().display()
    );
    println!("initramfs  {}", p.image.initramfs.display());
    println!("dtb        {}", p.dtb.display());
    println!("qemu       {}", p.image.qemu.display());
    println!("cache      {}", paths::cache_dir().display());
    Ok(ExitCode::SUCCESS)
}

/// The scenario of the main job: an offloaded playback stream checked bit for bit.
const MAIN_SCENARIO: &str = "offload-playback";

fn run_main_job(common: &Common) -> Result<ExitCode> {
    let mut opts = common.options()?;
    opts.progress = true;
    let p = runner::prepare(&opts)?;
    let r = runner::run_scenario(&p, &opts, MAIN_SCENARIO)?;
    runner::write_reports(
        std::slice::from_ref(&r),
        &opts.out_dir,
        &opts.out_dir.join("junit.xml"),
    )?;
    let o = &r.outcome;
    println!(
        "sideband run: {} on QEMU {}",
        p.image.release,
        qemu_version(&p)
    );
    println!("  kernel         {}", p.image.identity);
    println!(
        "  boot to ready  {}",
        o.ready_after
            .map_or("never".into(), |d| format!("{:.1}s", d.as_secs_f64()))
    );
    for c in &o.ktap.cases {
        let mark = match c.status {
            report::ktap::Status::Pass => "ok  ",
            report::ktap::Status::Fail(_) => "FAIL",
            report::ktap::Status::Skip(_) => "skip",
        };
        println!("  {mark}  {}", c.name);
    }
    for line in &r.requests {
        println!("  dsp> {line}");
    }
    for line in &r.devices {
        println!("  {line}");
    }
    println!("  kernel reports {}", o.findings.len());
    println!("  console        {}", o.console_log.display());
    match (r.verdict(), &r.failure) {
        (runner::Verdict::Pass, _) => {
            println!("verdict: PASS");
            Ok(ExitCode::SUCCESS)
        }
        (_, why) => {
            println!(
                "verdict: FAIL\n{}",
                why.as_deref().unwrap_or("(no reason recorded)")
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn qemu_version(p: &runner::Prepared) -> String {
    std::process::Command::new(&p.image.qemu)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.replace("QEMU emulator version ", ""))
        })
        .unwrap_or_else(|| "?".into())
}

fn test(
    common: &Common,
    patterns: &[String],
    repeat: u32,
    junit: Option<PathBuf>,
) -> Result<ExitCode> {
    let patterns = if patterns.is_empty() {
        vec!["smoke".to_string()]
    } else {
        patterns.to_vec()
    };
    let selected = scenario::select(&patterns)?;
    let matrix = common.kernel.len() > 1;
    let started = std::time::Instant::now();
    let mut results = Vec::new();
    let mut booted = Vec::new();
    for kernel in &common.kernel {
        // One folder per kernel when there are several.
        let out = match matrix {
            true => common.out.join(kernel.to_string().replace('/', "_")),
            false => common.out.clone(),
        };
        let mut opts = common.options_for(kernel.clone(), &out)?;
        if let Some(c) = opts.pcap.as_mut() {
            c.per_scenario = selected.len() > 1;
            if matrix {
                // Each kernel's captures go to its own folder.
                if let Some(name) = c.path.file_name() {
                    c.path = out.join(name);
                }
            }
        }
        let p = runner::prepare(&opts)?;
        booted.push(format!(
            "# kernel {kernel}: {} ({})",
            p.image.release, p.image.identity
        ));
        let total = selected.len() * repeat as usize;
        let runs = selected
            .iter()
            .flat_map(|s| (1..=repeat).map(move |r| (s, r)));
        for (i, (s, round)) in runs.enumerate() {
            eprintln!(
                "[sideband] [{}/{total}] {} on {kernel}: {}",
                i + 1,
                s.name,
                s.purpose
            );
            let mut r = runner::run_scenario(&p, &opts, &s.name)?;
            if repeat > 1 {
                r.name = format!("{}#{round}", r.name);
            }
            results.push(r);
        }
    }
    let junit = junit.unwrap_or_else(|| common.out.join("junit.xml"));
    print!("{}", runner::write_reports(&results, &common.out, &junit)?);
    if matrix {
        print!("{}", runner::matrix_table(&results));
    }
    for line in &booted {
        println!("{line}");
    }
    let failed = results.iter().filter(|r| r.verdict().fails_run()).count();
    let known = results
        .iter()
        .filter(|r| matches!(r.verdict(), runner::Verdict::KnownFailure(_)))
        .count();
    println!(
        "# {} passed, {} failed, {} known kernel failure(s); {} scenario run(s) in {:.0}s",
        results.len() - failed - known,
        failed,
        known,
        results.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn list_scenarios() -> Result<ExitCode> {
    for s in scenario::all()? {
        println!("{:<32} {}", s.name, s.purpose);
        for (v, e) in s.expectations() {
            let word = match &e.kind {
                scenario::MarkKind::Race(rate) => format!("known race ({rate})"),
                _ => e.word().to_string(),
            };
            println!("{:<32}   {word} on {v}: {}", "", e.reason);
            for ev in &e.evidence {
                println!("{:<32}     evidence: {ev}", "");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn boot(common: &Common, scenario: Option<String>) -> Result<ExitCode> {
    let opts = common.options()?;
    let p = runner::prepare(&opts)?;
    if let Some(name) = scenario {
        let r = runner::run_scenario(&p, &opts, &name)?;
        return Ok(match r.failure {
            None => ExitCode::SUCCESS,
            Some(why) => {
                eprintln!("{why}");
                ExitCode::FAILURE
            }
        });
    }
    let plan = if opts.plugin || !opts.fault_at.is_empty() {
        Some(vm::plugin::PluginPlan::prepare(
            &p.image.qemu,
            &p.image.kernel_dir,
            &opts.fault_at,
        )?)
    } else {
        None
    };
    let running = devices::RunningDevices::start_shared(
        &opts.devices,
        &opts.out_dir.join("boot"),
        &opts.headset,
    )?;
    let fault_at = runner::serve_plugin(plan, &running)?;
    let spec = BootSpec {
        machine: opts.machine.clone(),
        sockets: running.sockets.clone(),
        dtb: p.dtb.clone(),
        scenario: None,
        append: runner::kernel_append(&opts, fault_at.as_ref()),
        ready_timeout: opts.ready_timeout,
        run_timeout: opts.run_timeout,
        console_log: session::console_log_path(&opts.out_dir, "boot"),
        echo: true,
        qemu_args: fault_at
            .as_ref()
            .map(|f| f.qemu_args.clone())
            .unwrap_or_default(),
    };
    eprintln!(
        "[sideband] booting {}; Ctrl-A X quits QEMU, `poweroff -f` leaves the guest",
        p.image.release
    );
    let status = session::boot_interactive(&p.image, &spec)?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn ctl_request(
    socket: Option<PathBuf>,
    out: &std::path::Path,
    timeout: u64,
    request: &[String],
) -> Result<ExitCode> {
    let socket = socket.unwrap_or_else(|| ctl::socket_path(out));
    match ctl::client::request(&socket, &request.join(" "), Duration::from_secs(timeout))? {
        Ok(answer) => {
            println!("{answer}");
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("sideband ctl: {why}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn check_config(path: &std::path::Path) -> Result<ExitCode> {
    let config = if path.is_dir() {
        path.join(".config")
    } else {
        path.to_path_buf()
    };
    image::check_config(&config)?;
    println!("{}: every required symbol is set", config.display());
    Ok(ExitCode::SUCCESS)
}

/// Boot-to-ready seconds of one boot of the main scenario.
fn ready_seconds(p: &runner::Prepared, opts: &RunOptions, label: &str) -> Result<f64> {
    let r = runner::run_scenario(p, opts, MAIN_SCENARIO)?;
    let Some(t) = r.outcome.ready_after else {
        bail!(
            "boot {label} never became ready: {}",
            r.failure.unwrap_or_default()
        );
    };
    eprintln!(
        "[sideband] boot {label}: ready after {:.2}s, powered off after {:.2}s",
        t.as_secs_f64(),
        r.outcome.wall.as_secs_f64()
    );
    Ok(t.as_secs_f64())
}

/// `min / median / max` of some seconds.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn bench_boot(common: &Common, count: u32, plugin_overhead: bool) -> Result<ExitCode> {
    let opts = common.options()?;
    let p = runner::prepare(&opts)?;
    let setting = format!(
        "{} vCPUs, {} MiB, kernel {}",
        opts.machine.cpus, opts.machine.memory_mib, p.image.release
    );
    if plugin_overhead {
        // Alternating keeps a busy host from favouring one side.
        let with = RunOptions {
            plugin: true,
            ..opts.clone()
        };
        let without = RunOptions {
            plugin: false,
            fault_at: Vec::new(),
            ..opts.clone()
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 1..=count.max(1) {
            a.push(ready_seconds(&p, &without, &format!("{i} without plugin"))?);
            b.push(ready_seconds(&p, &with, &format!("{i} with idle plugin"))?);
        }
        let (a, b) = (spread(a), spread(b));
        println!(
            "boot-to-ready over {count} boots each ({setting}):\n  without plugin      min {:.2}s median {:.2}s max {:.2}s\n  with idle plugin    min {:.2}s median {:.2}s max {:.2}s\n  ratio of medians    {:.3}x (of minimums {:.3}x)",
            a.0, a.1, a.2, b.0, b.1, b.2,
            b.1 / a.1,
            b.0 / a.0
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut ready = Vec::new();
    for i in 1..=count.max(1) {
        ready.push(ready_seconds(&p, &opts, &i.to_string())?);
    }
    let n = ready.len();
    let (min, median, max) = spread(ready);
    println!(
        "boot-to-ready over {n} boots: min {min:.2}s median {median:.2}s max {max:.2}s ({setting}{})",
        if opts.plugin || !opts.fault_at.is_empty() {
            ", TCG plugin loaded"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// sideband's own log lines at info; third-party crates (vfio-user's handshake, vhost-user) only
/// at warn and above; `-v` shows everything down to debug (the transports' chatter), `RUST_LOG`
/// overrides both.
const QUIET_LOG_FILTER: &str = "warn,sideband=info,sideband_device=info";

fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { QUIET_LOG_FILTER };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default)).init();
}

impl Cmd {
    /// Whether the command was given `-v`.
    fn verbose(&self) -> bool {
        match self {
            Cmd::Setup(c)
            | Cmd::Run(c)
            | Cmd::Boot { common: c, .. }
            | Cmd::BenchBoot { common: c, .. } => c.verbose,
            Cmd::Test { common, .. } => common.verbose,
            _ => false,
        }
    }
}

fn main() -> ExitCode {
    // A panic in any backend thread ends the run with its message (see `fatal`).
    fatal::install();
    let cli = Cli::parse();
    init_logging(cli.command.verbose());
    let result = match &cli.command {
        Cmd::Setup(c) => setup(c),
        Cmd::Run(c) => run_main_job(c),
        Cmd::Test { list: true, .. } => list_scenarios(),
        Cmd::Test {
            common,
            names,
            scenarios,
            junit,
            repeat,
            ..
        } => test(
            common,
            &[names.clone(), scenarios.clone()].concat(),
            *repeat,
            junit.clone(),
        ),
        Cmd::Boot { common, scenario } => boot(common, scenario.clone()),
        Cmd::CheckConfig { path } => check_config(path),
        Cmd::Ctl {
            socket,
            out,
            timeout,
            request,
        } => ctl_request(socket.clone(), out, *timeout, request),
        Cmd::BenchBoot {
            common,
            count,
            plugin_overhead,
        } => bench_boot(common, *count, *plugin_overhead),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sideband: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
