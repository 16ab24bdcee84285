//! Faults at an exact guest kernel function: the backend's side of `libsideband_plugin.so`.
//!
//! A trigger `FUNC[:return][+N][@OUTER]` names a function of the kernel (resolved in the kernel build's
//! `System.map`; the guest boots with `nokaslr`, so those addresses are the run-time ones), where
//! in it (entry, the default, or any `ret` inside it) and which execution (the N-th, default 1),
//! optionally counting only executions while OUTER is on the same kernel stack.
//! A [`FaultAt`] pairs a trigger with an action, a backend request as a scenario would print it
//! after `SIDEBAND-CTL` (`unplug 1`, `dsp-crash`, ...). The plugin holds the vCPU that executes
//! the trigger, this module's [`PluginServer`] runs the action and answers, then the vCPU goes on.
//!
//! Functions in modules are not in `System.map`; a scenario arms them at run time
//! (`SIDEBAND-CTL at-arm TRIGGER ADDR[-END] ACTION`, with the address from the guest's
//! `/proc/kallsyms`, see guest-tests/lib/at.sh), which reaches the plugin over its control
//! connection.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use sideband_plugin::protocol::{parse_u64, uptime, Arm, Hit, Kind, Reply, Within};

/// The plugin's file name in the cargo target folder.
pub const PLUGIN_FILE: &str = "libsideband_plugin.so";
/// The API version the plugin is built for (QEMU 11.1 loads only 7).
pub const API_VERSION: i32 = sideband_plugin::api::API_VERSION;
/// How long a held vCPU waits for the backend before it goes on without the fault.
pub const HOLD_TIMEOUT: Duration = Duration::from_secs(10);

/// `FUNC[/OFFSET][:return][+N][@OUTER]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// Bytes into the function (`/0x1c4`): the instruction there instead of the first one, for
    /// code of an inlined function (whose name is in no symbol table).
    pub offset: u64,
    /// Count only executions while this function is on the same kernel stack.
    pub within: Option<String>,
    /// Kernel function name.
    pub function: String,
    /// Entry or return.
    pub kind: Kind,
    /// Which execution fires (1 = the first).
    pub hit: u64,
}

impl FromStr for Trigger {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.strip_prefix("at=").unwrap_or(s);
        let full = s;
        let (s, within) = match s.split_once('@') {
            Some((t, w)) => (t, Some(w)),
            None => (s, None),
        };
        let name_ok = |f: &str| {
            !f.is_empty()
                && f.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$')
        };
        if within.is_some_and(|w| !name_ok(w)) {
            bail!("trigger '{full}': after '@' comes the enclosing function's name");
        }
        let (rest, hit) = match s.rsplit_once('+') {
            Some((f, n)) => (
                f,
                n.parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| anyhow!("trigger '{s}': the hit after '+' must be 1 or more"))?,
            ),
            None => (s, 1),
        };
        let (function, kind) = match rest.split_once(':') {
            None => (rest, Kind::Entry),
            Some((f, "return")) => (f, Kind::Return),
            Some((f, "entry")) => (f, Kind::Entry),
            Some((_, k)) => bail!("trigger '{s}': '{k}' is not entry or return"),
        };
        let (function, offset) = match function.split_once('/') {
            None => (function, 0),
            Some((f, off)) => (
                f,
                parse_u64(off)
                    .ok()
                    .filter(|o| o % 4 == 0)
                    .ok_or_else(|| {
                        anyhow!("trigger '{full}': the offset after '/' must be a multiple of 4 (A64 instructions)")
                    })?,
            ),
        };
        if offset != 0 && kind == Kind::Return {
            bail!("trigger '{full}': an offset and :return do not go together");
        }
        if !name_ok(function) {
            bail!(
                "trigger '{full}' is not FUNCTION[/OFFSET][:return][+HIT][@OUTER] (kernel function names)"
            );
        }
        Ok(Trigger {
            offset,
            within: within.map(str::to_string),
            function: function.to_string(),
            kind,
            hit,
        })
    }
}

impl Trigger {
    /// The name the plugin reports: `FUNC` or `FUNC/0xOFFSET`.
    pub fn label(&self) -> String {
        if self.offset == 0 {
            self.function.clone()
        } else {
            format!("{}/{:#x}", self.function, self.offset)
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.label())?;
        if self.kind == Kind::Return {
            write!(f, ":return")?;
        }
        write!(f, "+{}", self.hit)?;
        if let Some(w) = &self.within {
            write!(f, "@{w}")?;
        }
        Ok(())
    }
}

/// A trigger and the backend request to run when it fires: `FUNC[:return][+N] REQUEST...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultAt {
    /// Where.
    pub trigger: Trigger,
    /// What (a `SIDEBAND-CTL` request; empty = only report and release).
    pub action: String,
}

impl FromStr for FaultAt {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let (t, action) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        Ok(FaultAt {
            trigger: t.parse()?,
            action: action.trim().to_string(),
        })
    }
}

/// A kernel symbol with its extent (up to the next symbol).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// Address.
    pub addr: u64,
    /// Address of the next symbol.
    pub end: Option<u64>,
    /// `T`/`t` for text.
    pub kind: char,
}

/// The built-in kernel's symbols, from `System.map`.
#[derive(Debug, Default)]
pub struct SystemMap {
    by_name: HashMap<String, Symbol>,
    path: PathBuf,
}

impl SystemMap {
    /// Reads `System.map`.
    pub fn load(path: &Path) -> Result<SystemMap> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read {} (the kernel build's System.map is needed for at= triggers)",
                path.display()
            )
        })?;
        let mut m = SystemMap::parse(&text);
        m.path = path.to_path_buf();
        Ok(m)
    }

    /// Parses `ADDR TYPE NAME` lines (sorted by address, as the kernel writes them).
    pub fn parse(text: &str) -> SystemMap {
        let mut syms: Vec<(u64, char, &str)> = text
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let addr = u64::from_str_radix(w.next()?, 16).ok()?;
                let kind = w.next()?.chars().next()?;
                Some((addr, kind, w.next()?))
            })
            .collect();
        syms.sort_by_key(|s| s.0);
        let mut by_name = HashMap::new();
        for (i, &(addr, kind, name)) in syms.iter().enumerate() {
            let end = syms[i + 1..].iter().map(|s| s.0).find(|&a| a > addr);
            // The first of several same-named (static) symbols wins.
            by_name
                .entry(name.to_string())
                .or_insert(Symbol { addr, end, kind });
        }
        SystemMap {
            by_name,
            path: PathBuf::new(),
        }
    }

    /// The function `name`; the error says why it cannot be used.
    pub fn function(&self, name: &str) -> Result<&Symbol> {
        let Some(s) = self.by_name.get(name) else {
            bail!(
                "symbol '{name}' is not in {}: it is misspelled, inlined, or in a module \
                 (System.map lists only the built-in kernel; arm a module function at run time \
                 from the scenario with `at_arm` of guest-tests/lib/at.sh, which takes its address \
                 from the guest's /proc/kallsyms)",
                self.path.display()
            )
        };
        if !matches!(s.kind, 'T' | 't' | 'W' | 'w') {
            bail!(
                "symbol '{name}' in {} is not a function (type '{}')",
                self.path.display(),
                s.kind
            );
        }
        Ok(s)
    }

    /// Resolves a trigger into what the plugin needs; `id` numbers it.
    pub fn arm(&self, t: &Trigger, id: u32) -> Result<Arm> {
        let s = self.function(&t.function)?;
        if s.end.is_some_and(|e| s.addr + t.offset >= e) {
            bail!("trigger {t}: the offset is past the end of {}", t.function);
        }
        let within = match &t.within {
            None => None,
            Some(w) => {
                let o = self.function(w)?;
                Some(Within {
                    name: w.clone(),
                    addr: o.addr,
                    end: o
                        .end
                        .with_context(|| format!("'{w}' is the last symbol: no extent"))?,
                })
            }
        };
        Ok(Arm {
            id,
            within,
            name: t.label(),
            addr: s.addr + t.offset,
            end: s.end,
            kind: t.kind,
            hit: t.hit,
        })
    }

    /// Address of a data symbol (e.g. `jiffies`).
    pub fn data(&self, name: &str) -> Option<u64> {
        self.by_name.get(name).map(|s| s.addr)
    }
}

/// `CONFIG_HZ` of a kernel `.config`.
pub fn config_hz(config: &str) -> Option<u64> {
    config
        .lines()
        .find_map(|l| l.strip_prefix("CONFIG_HZ="))
        .and_then(|v| v.trim().parse().ok())
}

/// Where the plugin library is: `SIDEBAND_PLUGIN`, else next to the running binary. Cargo puts
/// `sideband` and `libsideband_plugin.so` in the same target folder (`cargo build -p
/// sideband-plugin` or `--workspace`), or only in its `deps/` when the plugin was built as the
/// backend's dependency; tests run from `deps/`. The newest candidate wins.
pub fn locate() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SIDEBAND_PLUGIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("cannot find the running binary")?;
    let mut tried = Vec::new();
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for dir in exe.ancestors().skip(1).take(2) {
        for p in [dir.join(PLUGIN_FILE), dir.join("deps").join(PLUGIN_FILE)] {
            if let Ok(t) = p.metadata().and_then(|m| m.modified()) {
                if best.as_ref().is_none_or(|(bt, _)| t > *bt) {
                    best = Some((t, p.clone()));
                }
            }
            tried.push(p.display().to_string());
        }
    }
    match best {
        Some((_, p)) => Ok(p),
        None => bail!(
            "the TCG plugin is not built (looked for {}); build it with `cargo build --release -p sideband-plugin` \
             (or `--workspace`), or name it with SIDEBAND_PLUGIN",
            tried.join(", ")
        ),
    }
}

/// Checks that QEMU loads the plugin's API version, before any boot: QEMU is started with the
/// plugin in probe mode, which answers with both versions and refuses to load.
pub fn check_api(qemu: &Path, plugin: &Path) -> Result<()> {
    let out = Command::new(qemu)
        .args([
            "-M", "none", "-display", "none", "-monitor", "none", "-serial", "none",
        ])
        .args(["-nodefaults", "-plugin"])
        .arg(format!("{},probe=on", plugin.display()))
        .output()
        .with_context(|| format!("cannot start {}", qemu.display()))?;
    judge_probe(&String::from_utf8_lossy(&out.stderr), plugin)
}

/// The verdict on a probe's stderr.
pub fn judge_probe(stderr: &str, plugin: &Path) -> Result<()> {
    if stderr.contains("sideband-plugin: probe: plugin API") {
        return Ok(());
    }
    if let Some(l) = stderr.lines().find(|l| l.contains("API version")) {
        bail!(
            "QEMU refuses the TCG plugin {} (this sideband's plugin is built for API version \
             {API_VERSION}; rebuild it with `cargo build --release -p sideband-plugin`): {}",
            plugin.display(),
            l.trim()
        );
    }
    bail!(
        "QEMU could not load the TCG plugin {}: {}",
        plugin.display(),
        stderr.trim()
    )
}

/// Runs a fault's action; returns the answer (the same shape as a scenario request's).
pub type Apply = dyn Fn(&str, &Hit) -> Result<String> + Send + Sync;

/// One fired trigger, as the run reports it.
#[derive(Clone, Debug)]
pub struct HitRecord {
    /// The trigger as written (`FUNC[:return]+N[@OUTER]`).
    pub trigger: String,
    /// What the plugin said.
    pub hit: Hit,
    /// The action run.
    pub action: String,
    /// Its answer or error.
    pub reply: Reply,
    /// Guest seconds since boot, from `jiffies`.
    pub guest_s: Option<f64>,
}

impl fmt::Display for HitRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.hit;
        write!(f, "at {}: hit {} on vCPU {}", self.trigger, h.hit, h.vcpu)?;
        match self.guest_s {
            Some(s) => write!(f, ", guest time {s:.3}s")?,
            None => write!(f, ", host time {:.3}s", h.host_ns as f64 / 1e9)?,
        }
        write!(f, " (pc {:#x}); vCPU held while ", h.addr)?;
        if self.action.is_empty() {
            write!(f, "nothing was asked: {}", self.reply)
        } else {
            write!(f, "`{}` ran: {}", self.action, self.reply)
        }
    }
}

struct Shared {
    actions: Mutex<Vec<(Arm, String)>>,
    hits: Mutex<Vec<HitRecord>>,
    control: Mutex<Option<UnixStream>>,
    apply: Box<Apply>,
    hz: Option<u64>,
    stop: AtomicBool,
}

/// The socket the plugin talks to, for one boot.
pub struct PluginServer {
    path: PathBuf,
    shared: Arc<Shared>,
    accept: Option<thread::JoinHandle<()>>,
}

impl fmt::Debug for PluginServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginServer")
            .field("path", &self.path)
            .finish()
    }
}

impl PluginServer {
    /// Listens on `path`; `arms` are the triggers given at start with their actions; `apply`
    /// runs an action when its trigger fires (the vCPU is held meanwhile). `hz` converts the
    /// guest's jiffies into seconds.
    pub fn serve(
        path: &Path,
        arms: Vec<(Arm, String)>,
        hz: Option<u64>,
        apply: Box<Apply>,
    ) -> Result<PluginServer> {
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        let shared = Arc::new(Shared {
            actions: Mutex::new(arms),
            hits: Mutex::default(),
            control: Mutex::default(),
            apply,
            hz,
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = thread::Builder::new()
            .name("plugin-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let s = s.clone();
                    let _ = thread::Builder::new()
                        .name("plugin-conn".into())
                        .spawn(move || serve_conn(&s, conn));
                }
            })?;
        Ok(PluginServer {
            path: path.to_path_buf(),
            shared,
            accept: Some(accept),
        })
    }

    /// Triggers fired so far.
    pub fn hits(&self) -> Vec<HitRecord> {
        self.shared
            .hits
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// Arms a trigger at run time (a module function whose address the guest gave); waits for
    /// the plugin's confirmation.
    pub fn arm(&self, mut arm: Arm, action: &str) -> Result<String> {
        let mut guard = self
            .shared
            .control
            .lock()
            .map_err(|_| anyhow!("lock poisoned"))?;
        let stream = guard
            .as_mut()
            .context("the plugin has not connected (is it loaded?)")?;
        {
            let mut actions = self
                .shared
                .actions
                .lock()
                .map_err(|_| anyhow!("lock poisoned"))?;
            arm.id = actions.len() as u32;
            actions.push((arm.clone(), action.to_string()));
        }
        stream.write_all(format!("{}\n", arm.to_line()).as_bytes())?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut line = String::new();
        // Byte by byte: the stream is shared with later arms, nothing may be read ahead.
        let mut b = [0u8; 1];
        while !line.ends_with('\n') {
            let n = std::io::Read::read(stream, &mut b).context("no answer from the plugin")?;
            if n == 0 {
                bail!("the plugin closed its control connection");
            }
            line.push(b[0] as char);
        }
        let line = line.trim();
        let flushed = if line.ends_with("flushed=pending") {
            " (translation cache flush still pending: a block already translated may miss it)"
        } else {
            ""
        };
        match line.strip_prefix("armed ") {
            Some(_) => Ok(format!(
                "armed {} at {:#x}{flushed}{}",
                trigger_of(&arm),
                arm.addr,
                if action.is_empty() {
                    String::new()
                } else {
                    format!(", then `{action}`")
                }
            )),
            None => bail!("the plugin refused: {line}"),
        }
    }

    /// The `-plugin` argument for QEMU.
    pub fn qemu_arg(&self, plugin: &Path, jiffies: Option<u64>) -> Result<String> {
        let hz = self.shared.hz;
        let mut a = format!("{},socket={}", plugin.display(), self.path.display());
        if a.matches(',').count() != 1 {
            bail!(
                "the plugin path or socket path contains a comma, which QEMU's -plugin cannot take"
            );
        }
        a.push_str(&format!(",timeout_ms={}", HOLD_TIMEOUT.as_millis()));
        if let Some(j) = jiffies {
            a.push_str(&format!(",jiffies={j:#x}"));
        }
        if let Some(hz) = hz {
            a.push_str(&format!(",hz={hz}"));
        }
        for (arm, _) in self
            .shared
            .actions
            .lock()
            .map_err(|_| anyhow!("lock poisoned"))?
            .iter()
        {
            a.push_str(&format!(",at={}", arm.to_option()));
        }
        Ok(a)
    }
}

impl Drop for PluginServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The trigger an arm was made from (its name already carries any `/OFFSET`).
fn trigger_of(arm: &Arm) -> Trigger {
    Trigger {
        offset: 0,
        function: arm.name.clone(),
        kind: arm.kind,
        hit: arm.hit,
        within: arm.within.as_ref().map(|w| w.name.clone()),
    }
}

fn serve_conn(s: &Shared, conn: UnixStream) {
    let Ok(read) = conn.try_clone() else { return };
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    if line.starts_with("hello ") {
        log::debug!("plugin connected: {}", line.trim());
        if let Some(mut c) = crate::fatal::lock(&s.control, "plugin control") {
            *c = Some(conn);
        }
        return;
    }
    let reply = match Hit::from_line(line.trim()) {
        Ok(hit) => on_hit(s, hit),
        Err(e) => Reply::Failed(format!("bad message: {e}")),
    };
    let mut conn = conn;
    let _ = conn.write_all(format!("{}\n", reply.to_line()).as_bytes());
}

fn on_hit(s: &Shared, hit: Hit) -> Reply {
    let armed = crate::fatal::lock(&s.actions, "plugin actions").and_then(|a| {
        a.iter()
            .find(|(arm, _)| arm.id == hit.id && arm.name == hit.name)
            .cloned()
    });
    let trigger = armed.as_ref().map_or_else(
        || format!("{}+{}", hit.name, hit.hit),
        |(arm, _)| trigger_of(arm).to_string(),
    );
    let action = armed.map(|(_, act)| act);
    let reply = match &action {
        None => Reply::Failed(format!("no fault armed for {}", hit.name)),
        Some(a) if a.is_empty() => Reply::Applied("no action".into()),
        Some(a) => match (s.apply)(a, &hit) {
            Ok(answer) => Reply::Applied(answer),
            Err(e) => Reply::Failed(format!("{e:#}")),
        },
    };
    let record = HitRecord {
        trigger,
        guest_s: hit.jiffies.zip(s.hz).map(|(j, hz)| uptime(j, hz)),
        hit,
        action: action.unwrap_or_default(),
        reply: reply.clone(),
    };
    eprintln!("[sideband] {record}");
    if let Some(mut h) = crate::fatal::lock(&s.hits, "plugin hits") {
        h.push(record);
    }
    reply
}

/// Everything a boot with the plugin needs, resolved before anything starts.
#[derive(Debug)]
pub struct PluginPlan {
    /// The library.
    pub plugin: PathBuf,
    /// Triggers given at start, with their actions.
    pub arms: Vec<(Arm, String)>,
    /// Address of the guest's `jiffies` (for the guest time of a hit).
    pub jiffies: Option<u64>,
    /// The kernel's `CONFIG_HZ`.
    pub hz: Option<u64>,
}

impl PluginPlan {
    /// Resolves `faults` against the kernel in `kernel_dir` (its `System.map` and `config`) and
    /// checks that `qemu` loads the plugin: every error here comes before the boot.
    pub fn prepare(qemu: &Path, kernel_dir: &Path, faults: &[FaultAt]) -> Result<PluginPlan> {
        let map = SystemMap::load(&kernel_dir.join("System.map"))?;
        let arms = faults
            .iter()
            .enumerate()
            .map(|(i, f)| Ok((map.arm(&f.trigger, i as u32)?, f.action.clone())))
            .collect::<Result<Vec<_>>>()?;
        let plugin = locate()?;
        check_api(qemu, &plugin)?;
        let hz = std::fs::read_to_string(kernel_dir.join("config"))
            .ok()
            .and_then(|c| config_hz(&c));
        Ok(PluginPlan {
            plugin,
            arms,
            jiffies: map.data("jiffies"),
            hz,
        })
    }

    /// Starts the socket; `apply` runs an action when its trigger fires.
    pub fn serve(self, apply: Box<Apply>) -> Result<RunningPlugin> {
        let dir = tempfile::Builder::new()
            .prefix("sideband-plugin-")
            .tempdir()
            .context("cannot create a folder for the plugin socket")?;
        let server =
            PluginServer::serve(&dir.path().join("plugin.sock"), self.arms, self.hz, apply)?;
        let qemu_args = vec![
            "-plugin".to_string(),
            server.qemu_arg(&self.plugin, self.jiffies)?,
        ];
        Ok(RunningPlugin {
            server,
            qemu_args,
            kernel_args: PERIODIC_TICK.iter().map(|w| w.to_string()).collect(),
            _dir: dir,
        })
    }
}

/// The plugin's socket for one boot, and the QEMU words that load the plugin.
#[derive(Debug)]
pub struct RunningPlugin {
    /// The server (hits, run-time arming).
    pub server: PluginServer,
    /// `-plugin PATH,socket=...`.
    pub qemu_args: Vec<String>,
    /// Kernel command-line words a boot with the plugin needs ([`PERIODIC_TICK`]).
    pub kernel_args: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A boot with the plugin keeps the periodic tick. With NOHZ idle, an idle CPU leaves its timers
/// to a busy one (7.x's timer migration hierarchy), and a vCPU the plugin holds looks busy but
/// expires nothing: the other CPU's timers wait until something else wakes it. Measured with
/// timer tracepoints in at-enable-reset: usbhid's 16 ms retry timer on the idle CPU 1 fired
/// 0.86 s late while CPU 0 was held, and usbhid queued no reset in half the runs.
pub const PERIODIC_TICK: &[&str] = &["nohz=off"];

/// Whether a scenario arms triggers itself (it uses the `at_arm` helper or an `at-arm` request).
pub fn scenario_arms_triggers(script: &str) -> bool {
    script.contains("at_arm") || script.contains("at-arm")
}

/// A run-time arming request from a scenario:
/// `at-arm TRIGGER ADDR[-END] [OUTER_ADDR-OUTER_END (with @OUTER)] [REQUEST...]`.
pub fn parse_runtime_arm(words: &[&str]) -> Result<(Arm, String)> {
    let [trigger, addr, rest @ ..] = words else {
        bail!("usage: at-arm FUNC[:return][+N][@OUTER] ADDR[-END] [OUTER_ADDR-OUTER_END] [REQUEST...]");
    };
    let t: Trigger = trigger.parse()?;
    let hex = |v: &str| {
        let v = v.strip_prefix("0x").unwrap_or(v);
        parse_u64(&format!("0x{v}")).map_err(|e| anyhow!(e))
    };
    let (addr, end) = match addr.split_once('-') {
        Some((a, e)) => (hex(a)?, Some(hex(e)?)),
        None => (hex(addr)?, None),
    };
    let (within, action) = match (&t.within, rest) {
        (None, action) => (None, action),
        (Some(w), [range, action @ ..]) => {
            let (a, e) = range
                .split_once('-')
                .with_context(|| format!("@{w} needs its extent OUTER_ADDR-OUTER_END"))?;
            let within = Within {
                name: w.clone(),
                addr: hex(a)?,
                end: hex(e)?,
            };
            (Some(within), action)
        }
        (Some(w), []) => bail!("@{w} needs its extent OUTER_ADDR-OUTER_END"),
    };
    let arm = Arm {
        id: 0,
        name: t.label(),
        addr: addr + t.offset,
        end,
        kind: t.kind,
        hit: t.hit,
        within,
    };
    if arm.kind == Kind::Return && arm.end.is_none() {
        bail!("a return trigger needs ADDR-END (the function's extent)");
    }
    Ok((arm, action.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "\
ffff800080000000 T _text
ffff8000803efe84 T usb_reset_device
ffff8000803f0e14 T usb_new_device
ffff8000803f0e14 t usb_new_device_alias
ffff8000803f1284 T usb_deauthorize_device
ffff800080909280 D jiffies
";

    #[test]
    fn trigger_syntax() {
        let t: Trigger = "usb_reset_device".parse().unwrap();
        assert_eq!((t.kind, t.hit), (Kind::Entry, 1));
        let t: Trigger = "at=handle_uaudio_stream_req+3".parse().unwrap();
        assert_eq!(t.function, "handle_uaudio_stream_req");
        assert_eq!(t.hit, 3);
        let t: Trigger = "f.isra.0:return+2".parse().unwrap();
        assert_eq!(
            (t.function.as_str(), t.kind, t.hit),
            ("f.isra.0", Kind::Return, 2)
        );
        assert_eq!(t.to_string(), "f.isra.0:return+2");
        let t: Trigger = "mutex_lock+2@qc_usb_audio_offload_disconnect"
            .parse()
            .unwrap();
        assert_eq!(t.within.as_deref(), Some("qc_usb_audio_offload_disconnect"));
        assert_eq!(
            t.to_string(),
            "mutex_lock+2@qc_usb_audio_offload_disconnect"
        );
        for bad in ["", "f+0", "f+x", "f:middle", "a b", "+3", "f@", "f@a b"] {
            assert!(bad.parse::<Trigger>().is_err(), "{bad}");
        }
        let f: FaultAt = "usb_reset_device+2 unplug 1".parse().unwrap();
        assert_eq!(f.trigger.hit, 2);
        assert_eq!(f.action, "unplug 1");
        let f: FaultAt = "usb_reset_device".parse().unwrap();
        assert_eq!(f.action, "");
    }

    #[test]
    fn system_map_resolves_functions_with_their_extent() {
        let m = SystemMap::parse(MAP);
        let s = m.function("usb_new_device").unwrap();
        assert_eq!(s.addr, 0xffff_8000_803f_0e14);
        assert_eq!(
            s.end,
            Some(0xffff_8000_803f_1284),
            "an alias at the same address is skipped"
        );
        let a = m
            .arm(&"usb_reset_device:return+2".parse().unwrap(), 0)
            .unwrap();
        assert_eq!(
            a.to_option(),
            "usb_reset_device:0xffff8000803efe84:2:return:0xffff8000803f0e14"
        );
        assert_eq!(m.data("jiffies"), Some(0xffff_8000_8090_9280));
        let a = m
            .arm(&"usb_new_device+1@usb_reset_device".parse().unwrap(), 3)
            .unwrap();
        assert_eq!(
            a.to_option(),
            "usb_new_device:0xffff8000803f0e14:1:entry:0xffff8000803f1284@usb_reset_device:0xffff8000803efe84:0xffff8000803f0e14"
        );
        let a = m.arm(&"usb_reset_device/0x10".parse().unwrap(), 0).unwrap();
        assert_eq!(
            (a.name.as_str(), a.addr),
            ("usb_reset_device/0x10", 0xffff_8000_803e_fe94)
        );
        assert!(m
            .arm(&"usb_reset_device/0x4000".parse().unwrap(), 0)
            .is_err());
        let e = m
            .arm(&"usb_new_device@qc_nope".parse().unwrap(), 0)
            .unwrap_err();
        assert!(e.to_string().contains("'qc_nope' is not in"), "{e}");
        assert_eq!(
            m.function("usb_deauthorize_device").unwrap().end,
            Some(0xffff_8000_8090_9280)
        );
    }

    #[test]
    fn a_missing_or_data_symbol_is_a_clear_error() {
        let m = SystemMap::parse(MAP);
        let e = m
            .function("qc_usb_audio_offload_disconnect")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'qc_usb_audio_offload_disconnect' is not in"),
            "{e}"
        );
        assert!(e.contains("in a module"), "{e}");
        assert!(e.contains("/proc/kallsyms"), "{e}");
        let e = m.function("jiffies").unwrap_err().to_string();
        assert!(e.contains("not a function"), "{e}");
    }

    #[test]
    fn guest_time_from_jiffies() {
        assert_eq!(config_hz("CONFIG_X=y\nCONFIG_HZ=250\n"), Some(250));
        // INITIAL_JIFFIES for HZ=250 is (u32)(-75000) = 4294892296.
        assert!((uptime(4_294_893_097, 250) - 3.204).abs() < 1e-9);
        assert!(
            (uptime(4_294_892_296 + 250 * 400, 250) - 400.0).abs() < 1e-9,
            "past the wrap"
        );
    }

    #[test]
    fn probe_verdicts_name_the_versions() {
        let p = Path::new("/t/libsideband_plugin.so");
        judge_probe(
            "sideband-plugin: probe: plugin API 7, QEMU supports 7..7; not loading\n",
            p,
        )
        .unwrap();
        let e = judge_probe(
            "qemu-system-aarch64: Could not load plugin /t/x.so: plugin requires API version 8, but this QEMU supports only up to version 7\n",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("built for API version 7"), "{e}");
        assert!(e.contains("supports only up to version 7"), "{e}");
        assert!(judge_probe("cannot open", p).is_err());
    }

    #[test]
    fn runtime_arm_requests() {
        let (a, act) = parse_runtime_arm(&["qc_foo+1", "ffff800001230000", "unplug", "1"]).unwrap();
        assert_eq!(a.addr, 0xffff_8000_0123_0000);
        assert_eq!(act, "unplug 1");
        let (a, _) = parse_runtime_arm(&["f:return", "0x10-0x40"]).unwrap();
        assert_eq!(a.end, Some(0x40));
        assert!(parse_runtime_arm(&["f:return", "0x10"]).is_err());
        let (a, act) =
            parse_runtime_arm(&["f+2@g", "0x10-0x20", "0x100-0x180", "dsp-crash"]).unwrap();
        assert_eq!(
            a.within.as_ref().map(|w| (w.addr, w.end)),
            Some((0x100, 0x180))
        );
        assert_eq!(act, "dsp-crash");
        assert!(parse_runtime_arm(&["f@g", "0x10-0x20"]).is_err());
        let (a, _) = parse_runtime_arm(&["f/0x8", "0x10-0x20"]).unwrap();
        assert_eq!((a.name.as_str(), a.addr), ("f/0x8", 0x18));
        assert!(parse_runtime_arm(&["f"]).is_err());
    }

    fn hit(name: &str, n: u64) -> Hit {
        Hit {
            id: 0,
            name: name.into(),
            addr: 0x10,
            kind: Kind::Entry,
            hit: n,
            vcpu: 1,
            jiffies: Some(4_294_893_097),
            host_ns: 1,
            pid: 1,
        }
    }

    fn ask(path: &Path, h: &Hit) -> Reply {
        let mut s = UnixStream::connect(path).unwrap();
        s.write_all(format!("{}\n", h.to_line()).as_bytes())
            .unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        Reply::from_line(&line).unwrap()
    }

    #[test]
    fn server_runs_the_armed_action_and_answers_the_held_vcpu() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugin.sock");
        let arm = SystemMap::parse(MAP)
            .arm(&"usb_reset_device+2".parse().unwrap(), 0)
            .unwrap();
        let server = PluginServer::serve(
            &path,
            vec![(arm, "unplug 2".into())],
            Some(250),
            Box::new(|action, h| {
                if action == "unplug 2" {
                    Ok(format!("port 2 unplugged (vCPU {})", h.vcpu))
                } else {
                    bail!("no")
                }
            }),
        )
        .unwrap();
        let qemu_arg = server
            .qemu_arg(Path::new("/t/libsideband_plugin.so"), Some(0x80))
            .unwrap();
        assert!(
            qemu_arg.starts_with("/t/libsideband_plugin.so,socket="),
            "{qemu_arg}"
        );
        assert!(
            qemu_arg.ends_with(
                ",jiffies=0x80,hz=250,at=usb_reset_device:0xffff8000803efe84:2:entry:0xffff8000803f0e14"
            ),
            "{qemu_arg}"
        );
        assert_eq!(
            ask(&path, &hit("usb_reset_device", 2)),
            Reply::Applied("port 2 unplugged (vCPU 1)".into())
        );
        assert!(matches!(ask(&path, &hit("other", 1)), Reply::Failed(_)));
        let hits = server.hits();
        assert_eq!(hits.len(), 2);
        let line = hits[0].to_string();
        assert_eq!(
            line,
            "at usb_reset_device+2: hit 2 on vCPU 1, guest time 3.204s (pc 0x10); vCPU held while `unplug 2` ran: applied: port 2 unplugged (vCPU 1)"
        );
        let e = server.arm(hits[0].hit.clone().into_arm(), "").unwrap_err();
        assert!(e.to_string().contains("has not connected"), "{e}");
    }

    #[test]
    fn runtime_arming_goes_through_the_control_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugin.sock");
        let server =
            PluginServer::serve(&path, vec![], None, Box::new(|_, _| Ok("done".into()))).unwrap();
        // A fake plugin: hello, then confirm whatever is armed.
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(b"hello api=7 pid=1\n").unwrap();
        let fake = thread::spawn(move || {
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let a = Arm::from_line(line.trim()).unwrap();
            c.write_all(
                format!("armed name={} addr={:#x} hit={}\n", a.name, a.addr, a.hit).as_bytes(),
            )
            .unwrap();
        });
        let (arm, action) =
            parse_runtime_arm(&["qc_foo", "0xffff800001230000", "dsp-crash"]).unwrap();
        let mut answer = Err(anyhow!("never connected"));
        for _ in 0..50 {
            answer = server.arm(arm.clone(), &action);
            if answer.is_ok() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            answer.unwrap(),
            "armed qc_foo+1 at 0xffff800001230000, then `dsp-crash`"
        );
        fake.join().unwrap();
        let mut h = hit("qc_foo", 1);
        h.jiffies = None;
        assert_eq!(ask(&path, &h), Reply::Applied("done".into()));
        assert!(server.hits()[0].to_string().contains("host time"));
    }

    trait IntoArm {
        fn into_arm(self) -> Arm;
    }
    impl IntoArm for Hit {
        fn into_arm(self) -> Arm {
            Arm {
                id: self.id,
                within: None,
                name: self.name,
                addr: self.addr,
                end: None,
                kind: self.kind,
                hit: self.hit,
            }
        }
    }
}
