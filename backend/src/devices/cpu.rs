//! CPU cost of a stretch of a run, for `cpu-start` / `cpu-stop`: the backend's own CPU time and
//! QEMU's, from /proc.

use anyhow::{Context, Result};

/// CPU time of a process in seconds (utime + stime of /proc/PID/stat).
fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The command name may contain spaces; fields count from after its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11) + ticks(12)) / hz.max(1.0))
}

/// CPU counters at a point of a run, for `cpu-start` / `cpu-stop`.
#[derive(Clone, Copy, Debug)]
pub struct CpuMark {
    backend: f64,
    qemu: f64,
    wall: std::time::Instant,
}

impl CpuMark {
    pub(super) fn now(qemu_pid: u32) -> Result<Self> {
        Ok(CpuMark {
            backend: cpu_seconds("self")?,
            qemu: cpu_seconds(&qemu_pid.to_string())?,
            wall: std::time::Instant::now(),
        })
    }

    pub(super) fn report(&self, label: &str, audio_seconds: f64, qemu_pid: u32) -> Result<String> {
        let end = CpuMark::now(qemu_pid)?;
        let per = |v: f64| v / audio_seconds.max(1e-9);
        Ok(format!(
            "{label}: {:.3} CPU-s of the backend and {:.3} CPU-s of QEMU per second of audio ({:.1} s wall for {audio_seconds} s of audio)",
            per(end.backend - self.backend),
            per(end.qemu - self.qemu),
            end.wall.duration_since(self.wall).as_secs_f64()
        ))
    }
}
