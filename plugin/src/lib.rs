//! `libsideband_plugin.so`: a QEMU TCG plugin (API v7) that holds a vCPU at an exact guest kernel
//! function until the sideband backend has applied a fault.
//!
//! Given triggers (`at=NAME:ADDR:HIT:KIND[:END]`, addresses resolved by the backend from the
//! kernel's `System.map`, or armed at run time over the control connection), it instruments only
//! those instructions when QEMU translates them, so an idle plugin costs one cheap check per
//! translated block. When a trigger's HIT-th execution comes, the executing vCPU connects to the
//! backend's socket, names the function, the hit, itself and the guest time, and waits for the
//! answer (at most `timeout_ms`) before it executes the instruction. Every callback is wrapped in
//! `catch_unwind`: nothing unwinds into QEMU.
//!
//! A trigger armed at run time may name a function QEMU has already translated; the plugin then
//! flushes the translation cache (`qemu_plugin_reset` from the next translation, which is vCPU
//! context, then re-registers its callbacks, as QEMU's tests/tcg/plugins/reset.c does) and
//! confirms the arming only once the flush is done.
//!
//! Kinds: `entry` fires on the function's first instruction; `return` on any `ret` inside
//! `[ADDR, END)` (a function that leaves by a tail call is not seen returning). With `@OUTER`
//! only executions while OUTER is on the same kernel stack count: OUTER's entry records the stack
//! pointer, its `ret` (same stack pointer again) removes it, and the target counts when its own
//! stack pointer lies at most [`KERNEL_STACK`] below a recorded one. Being keyed by stack, not by
//! vCPU, this follows a task that sleeps inside OUTER and resumes on another vCPU.

pub mod api;
pub mod args;
pub mod protocol;

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use api::{Api, PluginId, QemuInfo, Tb, API_VERSION};
use protocol::{Arm, Hit, Kind, Reply};

/// The API version QEMU checks before it calls anything else.
#[no_mangle]
#[used]
pub static qemu_plugin_version: c_int = API_VERSION;

/// arm64 kernel stacks are 16 KiB (`THREAD_SIZE`); a frame further away is another stack.
pub const KERNEL_STACK: u64 = 16 * 1024;

/// One armed trigger; lives as long as QEMU (leaked on purpose: callbacks point at it).
struct Trigger {
    arm: Arm,
    count: AtomicU64,
    /// Stack pointers at the entry of the enclosing function, for frames not yet returned.
    frames: Mutex<Vec<u64>>,
}

/// What an instrumented instruction is to its trigger.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    /// The trigger's own instruction.
    Target,
    /// The enclosing function's entry.
    OuterEntry,
    /// A `ret` of the enclosing function.
    OuterRet,
}

/// One instrumented instruction: the userdata of its exec callback.
struct Site {
    trigger: &'static Trigger,
    addr: u64,
    role: Role,
}

/// Whether `sp` is on the stack of one of `frames` (at most [`KERNEL_STACK`] below it).
pub fn inside(frames: &[u64], sp: u64) -> bool {
    frames.iter().any(|&e| e >= sp && e - sp < KERNEL_STACK)
}

struct State {
    api: Api,
    id: PluginId,
    socket: Option<PathBuf>,
    timeout: Duration,
    jiffies: Option<u64>,
    hz: Option<u64>,
    triggers: RwLock<Vec<&'static Trigger>>,
    /// Sites by (trigger, address, role): a block translated again reuses its site.
    sites: Mutex<HashMap<(usize, u64, Role), &'static Site>>,
    start: Instant,
}

static STATE: OnceLock<State> = OnceLock::new();
/// The stack pointer's register handle (the same on every vCPU of the machine).
static SP_REG: OnceLock<usize> = OnceLock::new();

/// A translation-cache flush was asked for (run-time arming); the next translation starts it.
static FLUSH_WANTED: AtomicBool = AtomicBool::new(false);
/// Flushes completed so far, with its condition variable.
static FLUSHES: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());
/// How long run-time arming waits for the flush before it confirms anyway.
const FLUSH_WAIT: Duration = Duration::from_secs(3);

fn log(msg: &str) {
    eprintln!("sideband-plugin: {msg}");
}

/// `ret`, `ret xN`, `retaa`, `retab` (A64).
pub fn is_return(word: u32) -> bool {
    word & 0xffff_fc1f == 0xd65f_0000 || word == 0xd65f_0bff || word == 0xd65f_0fff
}

/// QEMU calls this once, right after loading the library.
///
/// # Safety
/// Called by QEMU with a valid `info` and `argc` NUL-terminated `argv` strings.
#[no_mangle]
pub unsafe extern "C" fn qemu_plugin_install(
    id: PluginId,
    info: *const QemuInfo,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut words = Vec::new();
        for i in 0..usize::try_from(argc).unwrap_or(0) {
            // SAFETY: QEMU passes argc valid, NUL-terminated strings that outlive the plugin.
            let w = unsafe { CStr::from_ptr(*argv.add(i)) };
            words.push(w.to_string_lossy().into_owned());
        }
        // SAFETY: QEMU passes a valid info block, live during this call.
        let info = unsafe { info.as_ref() };
        install(id, info, &words)
    }));
    match r {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            log(&e);
            1
        }
        Err(_) => {
            log("panicked while installing");
            1
        }
    }
}

fn install(id: PluginId, info: Option<&QemuInfo>, words: &[String]) -> Result<(), String> {
    let opts = args::Options::parse(words.iter().map(String::as_str))?;
    let (min, cur) = info.map_or((0, 0), |i| (i.version_min, i.version_cur));
    if opts.probe {
        return Err(format!(
            "probe: plugin API {API_VERSION}, QEMU supports {min}..{cur}; not loading (probe only)"
        ));
    }
    if !(min..=cur).contains(&API_VERSION) {
        return Err(format!(
            "plugin API version {API_VERSION}, but this QEMU supports {min}..{cur}"
        ));
    }
    if let Some(i) = info {
        if !i.system_emulation {
            return Err("needs system emulation (qemu-system-*)".into());
        }
    }
    let api = Api::resolve()?;
    let state = State {
        api,
        id,
        socket: opts.socket.clone(),
        timeout: opts.timeout,
        jiffies: opts.jiffies,
        hz: opts.hz,
        triggers: RwLock::new(opts.arms.iter().map(|a| leak_trigger(a.clone())).collect()),
        sites: Mutex::default(),
        start: Instant::now(),
    };
    for a in &opts.arms {
        log(&format!(
            "armed {} {} at {:#x}, fires on hit {}",
            a.name,
            a.kind.as_str(),
            a.addr,
            a.hit
        ));
    }
    let state = STATE.get_or_init(|| state);
    register_callbacks(state);
    // SAFETY: the callback has the v7 signature declared in `api` and never unwinds.
    unsafe { (state.api.register_vcpu_init_cb)(id, on_vcpu_init, std::ptr::null_mut()) };
    if let Some(path) = &opts.socket {
        let path = path.clone();
        std::thread::Builder::new()
            .name("sideband-plugin-ctl".into())
            .spawn(move || control_loop(&path))
            .map_err(|e| format!("cannot start the control thread: {e}"))?;
    }
    Ok(())
}

/// Translation and at-exit callbacks (at install, and again after a reset removed them).
fn register_callbacks(st: &State) {
    // SAFETY: the callbacks have the v7 signatures declared in `api` and never unwind.
    unsafe {
        (st.api.register_vcpu_tb_trans_cb)(st.id, on_translate, std::ptr::null_mut());
        (st.api.register_atexit_cb)(st.id, on_exit, std::ptr::null_mut());
    }
}

/// Asks for a translation-cache flush and waits (bounded) until it is done.
fn flush_and_wait() -> bool {
    let (lock, cv) = &FLUSHES;
    let Ok(done) = lock.lock() else { return false };
    let before = *done;
    FLUSH_WANTED.store(true, Ordering::SeqCst);
    cv.wait_timeout_while(done, FLUSH_WAIT, |n| *n == before)
        .map(|(n, _)| *n != before)
        .unwrap_or(false)
}

unsafe extern "C" fn on_reset(_userdata: *mut c_void) {
    let _ = catch_unwind(|| {
        if let Some(st) = STATE.get() {
            register_callbacks(st);
        }
        let (lock, cv) = &FLUSHES;
        if let Ok(mut n) = lock.lock() {
            *n += 1;
        }
        cv.notify_all();
    });
}

fn leak_trigger(arm: Arm) -> &'static Trigger {
    Box::leak(Box::new(Trigger {
        arm,
        count: AtomicU64::new(0),
        frames: Mutex::default(),
    }))
}

/// The control connection: says hello, then arms what the backend asks for.
fn control_loop(path: &Path) {
    let r = catch_unwind(|| {
        let mut stream = match UnixStream::connect(path) {
            Ok(s) => s,
            Err(e) => {
                log(&format!(
                    "backend not reachable at {} ({e}): triggers fire but nobody applies a fault",
                    path.display()
                ));
                return;
            }
        };
        let hello = format!("hello api={API_VERSION} pid={}\n", std::process::id());
        if stream.write_all(hello.as_bytes()).is_err() {
            return;
        }
        let Ok(read) = stream.try_clone() else { return };
        for line in BufReader::new(read).lines() {
            let Ok(line) = line else { break };
            let answer = match Arm::from_line(&line) {
                Ok(arm) => {
                    let msg = format!(
                        "armed name={} addr={:#x} hit={}",
                        arm.name, arm.addr, arm.hit
                    );
                    log(&format!(
                        "armed {} {} at {:#x} (run time), fires on hit {}",
                        arm.name,
                        arm.kind.as_str(),
                        arm.addr,
                        arm.hit
                    ));
                    if let Some(st) = STATE.get() {
                        if let Ok(mut t) = st.triggers.write() {
                            t.push(leak_trigger(arm));
                        }
                    }
                    // The function may have run (and been translated) already.
                    let t = Instant::now();
                    if flush_and_wait() {
                        log(&format!(
                            "translation cache flushed in {:.1} ms",
                            t.elapsed().as_secs_f64() * 1e3
                        ));
                        format!("{msg} flushed=yes")
                    } else {
                        log("translation cache flush still pending");
                        format!("{msg} flushed=pending")
                    }
                }
                Err(e) => format!("error {e}"),
            };
            if stream.write_all(format!("{answer}\n").as_bytes()).is_err() {
                break;
            }
        }
    });
    if r.is_err() {
        log("control thread panicked; run-time arming stops");
    }
}

unsafe extern "C" fn on_vcpu_init(vcpu: c_uint, _userdata: *mut c_void) {
    let _ = catch_unwind(|| {
        let Some(st) = STATE.get() else { return };
        if SP_REG.get().is_some() {
            return;
        }
        // SAFETY: called in vCPU context as the API requires; the array is freed below.
        unsafe {
            let arr = (st.api.get_registers)();
            if arr.is_null() {
                return;
            }
            let descs = std::slice::from_raw_parts(
                (*arr).data as *const api::RegDescriptor,
                (*arr).len as usize,
            );
            let names: Vec<String> = descs
                .iter()
                .map(|d| CStr::from_ptr(d.name).to_string_lossy().into_owned())
                .collect();
            if let Some(i) = names.iter().position(|n| n == "sp") {
                let _ = SP_REG.set(descs[i].handle as usize);
            }
            if vcpu == 0 && std::env::var_os("SIDEBAND_PLUGIN_REGS").is_some() {
                log(&format!("registers: {}", names.join(" ")));
            }
            (st.api.g_array_free)(arr, 1);
        }
    });
}

/// The current vCPU's stack pointer (in a callback registered with `CB_R_REGS`).
fn read_sp(api: &Api) -> Option<u64> {
    let handle = *SP_REG.get()? as *mut api::Register;
    // SAFETY: glib allocation freed below; the handle came from qemu_plugin_get_registers and
    // this runs in a vCPU callback registered with register read access.
    unsafe {
        let buf = (api.g_byte_array_new)();
        if buf.is_null() {
            return None;
        }
        let ok = (api.read_register)(handle, buf);
        let v = if ok && (*buf).len >= 8 {
            let mut b = [0u8; 8];
            std::ptr::copy_nonoverlapping((*buf).data, b.as_mut_ptr(), 8);
            Some(u64::from_le_bytes(b))
        } else {
            None
        };
        (api.g_byte_array_free)(buf, 1);
        v
    }
}

unsafe extern "C" fn on_translate(tb: *mut Tb, _userdata: *mut c_void) {
    let _ = catch_unwind(|| {
        let Some(st) = STATE.get() else { return };
        if FLUSH_WANTED.swap(false, Ordering::SeqCst) {
            // SAFETY: vCPU context (a translation callback); on_reset has the v7 signature.
            unsafe { (st.api.reset)(st.id, on_reset, std::ptr::null_mut()) };
        }
        let Ok(triggers) = st.triggers.read() else {
            return;
        };
        if triggers.is_empty() {
            return;
        }
        let api = &st.api;
        // SAFETY: tb is the block QEMU is translating, valid during this callback.
        let n = unsafe { (api.tb_n_insns)(tb) };
        for i in 0..n {
            // SAFETY: i < n; the handle is valid during this callback.
            let insn = unsafe { (api.tb_get_insn)(tb, i) };
            // SAFETY: insn is a valid handle from tb_get_insn.
            let va = unsafe { (api.insn_vaddr)(insn) };
            let mut word = None;
            let mut is_ret = || {
                *word.get_or_insert_with(|| {
                    let mut w = [0u8; 4];
                    // SAFETY: copies at most 4 bytes of the instruction into w.
                    let got = unsafe { (api.insn_data)(insn, w.as_mut_ptr().cast(), w.len()) };
                    got == 4 && is_return(u32::from_le_bytes(w))
                })
            };
            for (ti, t) in triggers.iter().enumerate() {
                let a = &t.arm;
                let mut roles = Vec::new();
                let target = match a.kind {
                    Kind::Entry => va == a.addr,
                    Kind::Return => va >= a.addr && a.end.is_some_and(|e| va < e) && is_ret(),
                };
                if target {
                    roles.push(Role::Target);
                }
                if let Some(w) = &a.within {
                    if va == w.addr {
                        roles.push(Role::OuterEntry);
                    } else if va > w.addr && va < w.end && is_ret() {
                        roles.push(Role::OuterRet);
                    }
                }
                for role in roles {
                    let Ok(mut sites) = st.sites.lock() else {
                        return;
                    };
                    let site: &'static Site = sites.entry((ti, va, role)).or_insert_with(|| {
                        Box::leak(Box::new(Site {
                            trigger: t,
                            addr: va,
                            role,
                        }))
                    });
                    // SAFETY: insn is valid during translation; the site outlives QEMU's use.
                    unsafe {
                        (api.register_vcpu_insn_exec_cb)(
                            insn,
                            on_exec,
                            api::CB_R_REGS,
                            site as *const Site as *mut c_void,
                        );
                    }
                }
            }
        }
    });
}

unsafe extern "C" fn on_exec(vcpu: c_uint, userdata: *mut c_void) {
    let _ = catch_unwind(|| {
        // SAFETY: userdata is a leaked &'static Site registered in on_translate.
        let site = unsafe { &*(userdata as *const Site) };
        let t = site.trigger;
        let Some(st) = STATE.get() else { return };
        if t.arm.within.is_some() {
            let Some(sp) = read_sp(&st.api) else { return };
            let Ok(mut frames) = t.frames.lock() else {
                return;
            };
            match site.role {
                Role::OuterEntry => {
                    frames.push(sp);
                    return;
                }
                Role::OuterRet => {
                    if let Some(i) = frames.iter().rposition(|&e| e == sp) {
                        frames.remove(i);
                    }
                    return;
                }
                Role::Target if !inside(&frames, sp) => return,
                Role::Target => {}
            }
        }
        let n = t.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n != t.arm.hit {
            return;
        }
        let hit = Hit {
            id: t.arm.id,
            name: t.arm.name.clone(),
            addr: site.addr,
            kind: t.arm.kind,
            hit: n,
            vcpu,
            jiffies: st.jiffies.and_then(|a| read_u64(&st.api, a)),
            host_ns: st.start.elapsed().as_nanos() as u64,
            pid: std::process::id(),
        };
        hold(st, &hit);
    });
}

/// Reads a guest u64 at a virtual address (vCPU context only).
fn read_u64(api: &Api, addr: u64) -> Option<u64> {
    // SAFETY: glib allocation, freed below; read_memory_vaddr is called from a vCPU callback.
    unsafe {
        let buf = (api.g_byte_array_new)();
        if buf.is_null() {
            return None;
        }
        let ok = (api.read_memory_vaddr)(addr, buf, 8);
        let v = if ok && (*buf).len >= 8 {
            let mut b = [0u8; 8];
            std::ptr::copy_nonoverlapping((*buf).data, b.as_mut_ptr(), 8);
            Some(u64::from_le_bytes(b))
        } else {
            None
        };
        (api.g_byte_array_free)(buf, 1);
        v
    }
}

/// Tells the backend and holds this vCPU until it answers or the deadline passes.
fn hold(st: &State, hit: &Hit) {
    let what = format!(
        "{}+{} ({}) on vCPU {}{}",
        hit.name,
        hit.hit,
        hit.kind.as_str(),
        hit.vcpu,
        match (hit.jiffies, st.hz) {
            (Some(j), Some(hz)) => format!(", guest time {:.3}s", protocol::uptime(j, hz)),
            (Some(j), None) => format!(", jiffies {j}"),
            _ => String::new(),
        }
    );
    let Some(path) = &st.socket else {
        log(&format!("{what}: hit (no backend socket given, not held)"));
        return;
    };
    let held = Instant::now();
    match ask(path, hit, st.timeout) {
        Ok(reply) => log(&format!(
            "{what}: held {:.1} ms, backend {reply}",
            held.elapsed().as_secs_f64() * 1e3
        )),
        Err(e) => log(&format!(
            "{what}: {e} after {:.1} ms; the vCPU goes on without the fault",
            held.elapsed().as_secs_f64() * 1e3
        )),
    }
}

fn ask(path: &Path, hit: &Hit, timeout: Duration) -> Result<Reply, String> {
    let mut s = UnixStream::connect(path)
        .map_err(|e| format!("backend not reachable at {} ({e})", path.display()))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|_| s.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("socket: {e}"))?;
    s.write_all(format!("{}\n", hit.to_line()).as_bytes())
        .map_err(|e| format!("cannot tell the backend ({e})"))?;
    let mut line = String::new();
    match BufReader::new(&s).read_line(&mut line) {
        Ok(0) => Err("the backend closed the connection without an answer".into()),
        Ok(_) => Reply::from_line(&line),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(format!(
                "no answer from the backend within {} ms",
                timeout.as_millis()
            ))
        }
        Err(e) => Err(format!("reading the answer: {e}")),
    }
}

unsafe extern "C" fn on_exit(_userdata: *mut c_void) {
    let _ = catch_unwind(|| {
        let Some(st) = STATE.get() else { return };
        let Ok(triggers) = st.triggers.read() else {
            return;
        };
        for t in triggers.iter() {
            log(&format!(
                "{} {}: executed {} time(s), armed for hit {}",
                t.arm.name,
                t.arm.kind.as_str(),
                t.count.load(Ordering::Relaxed),
                t.arm.hit
            ));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first entry hit of function `f` on vCPU 0.
    fn test_hit() -> Hit {
        Hit {
            name: "f".into(),
            addr: 1,
            kind: Kind::Entry,
            hit: 1,
            id: 0,
            vcpu: 0,
            jiffies: None,
            host_ns: 0,
            pid: 1,
        }
    }

    #[test]
    fn recognises_a64_returns_only() {
        assert!(is_return(0xd65f_03c0)); // ret
        assert!(is_return(0xd65f_0220)); // ret x17
        assert!(is_return(0xd65f_0bff)); // retaa
        assert!(is_return(0xd65f_0fff)); // retab
        assert!(!is_return(0xd61f_0220)); // br x17
        assert!(!is_return(0xd63f_0220)); // blr x17
        assert!(!is_return(0xd503_201f)); // nop
    }

    #[test]
    fn a_frame_counts_only_on_its_own_stack() {
        let frames = [0xffff_8000_8400_3f00];
        assert!(
            inside(&frames, 0xffff_8000_8400_3e00),
            "deeper on the same stack"
        );
        assert!(inside(&frames, 0xffff_8000_8400_3f00));
        assert!(
            !inside(&frames, 0xffff_8000_8400_3f10),
            "above the frame: returned"
        );
        assert!(
            !inside(&frames, 0xffff_8000_8500_3e00),
            "another task's stack"
        );
        assert!(!inside(&[], 0x1000));
    }

    #[test]
    fn install_refuses_other_api_versions_and_answers_a_probe() {
        let info = QemuInfo {
            target_name: std::ptr::null(),
            version_min: 8,
            version_cur: 9,
            system_emulation: true,
            smp_vcpus: 2,
            max_vcpus: 2,
        };
        let e = install(1, Some(&info), &[]).unwrap_err();
        assert_eq!(e, "plugin API version 7, but this QEMU supports 8..9");
        let e = install(1, Some(&info), &["probe=on".into()]).unwrap_err();
        assert!(
            e.starts_with("probe: plugin API 7, QEMU supports 8..9"),
            "{e}"
        );
        let e = install(1, None, &["bogus=1".into()]).unwrap_err();
        assert!(e.contains("unknown option"), "{e}");
    }

    #[test]
    fn a_missing_backend_is_reported_not_fatal() {
        let dir = std::env::temp_dir().join(format!("sbp-{}", std::process::id()));
        let hit = test_hit();
        let e = ask(&dir.join("none.sock"), &hit, Duration::from_millis(100)).unwrap_err();
        assert!(e.starts_with("backend not reachable"), "{e}");
    }

    #[test]
    fn a_silent_backend_releases_the_vcpu_at_the_deadline() {
        let dir = tempdir();
        let path = dir.join("s.sock");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let hit = test_hit();
        let t = Instant::now();
        let e = ask(&path, &hit, Duration::from_millis(200)).unwrap_err();
        assert!(
            e.contains("no answer from the backend within 200 ms"),
            "{e}"
        );
        assert!(t.elapsed() >= Duration::from_millis(200));
        drop(l);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_backend_answer_reaches_the_vcpu() {
        let dir = tempdir();
        let path = dir.join("s.sock");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap();
            let h = Hit::from_line(&line).unwrap();
            (&s).write_all(format!("applied {} {}\n", h.name, h.vcpu).as_bytes())
                .unwrap();
        });
        let hit = Hit {
            vcpu: 3,
            jiffies: Some(9),
            ..test_hit()
        };
        let r = ask(&path, &hit, Duration::from_secs(5)).unwrap();
        assert_eq!(r, Reply::Applied("f 3".into()));
        server.join().unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempdir() -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let d = std::env::temp_dir().join(format!(
            "sideband-plugin-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
