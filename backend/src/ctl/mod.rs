//! The control socket of a running boot: a UNIX socket that takes the same one-line requests a
//! guest scenario makes on its console (`unplug 1`, `stream-play 48000`, ...) plus `stats`
//! (JSON figures), one request per connection, one answer line: `ok ANSWER` or `error WHY`.
//! `server` serves it next to the boot; `client` is `sideband ctl`.

pub mod client;
pub mod server;

/// Longest request line accepted.
pub const MAX_REQUEST: usize = 4096;

/// Where a boot's control socket goes: `OUT/sideband-ctl.sock`, or a folder under the system
/// temp dir when that path is too long for a UNIX socket (108 bytes).
pub fn socket_path(out_dir: &std::path::Path) -> std::path::PathBuf {
    let p = out_dir.join("sideband-ctl.sock");
    let abs = std::path::absolute(&p).unwrap_or_else(|_| p.clone());
    if abs.as_os_str().len() < 100 {
        p
    } else {
        std::env::temp_dir().join(format!("sideband-ctl-{}.sock", std::process::id()))
    }
}
