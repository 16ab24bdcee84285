//! `sideband ctl`: sends one request to a boot's control socket and returns its answer.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

/// Sends `request`; `Ok(Ok(answer))` or `Ok(Err(why))` as the backend answered, `Err` when the
/// socket could not be reached or did not answer within `timeout`.
pub fn request(
    socket: &Path,
    request: &str,
    timeout: Duration,
) -> anyhow::Result<Result<String, String>> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot connect to {} (is a boot running? `sideband run` prints its socket)",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(format!("{}\n", request.trim()).as_bytes())?;
    let mut line = String::new();
    BufReader::new(&s)
        .read_line(&mut line)
        .with_context(|| format!("no answer within {} s", timeout.as_secs()))?;
    let line = line.trim_end();
    if let Some(a) = line.strip_prefix("ok") {
        Ok(Ok(a.trim_start().to_string()))
    } else if let Some(e) = line.strip_prefix("error") {
        Ok(Err(e.trim_start().to_string()))
    } else {
        anyhow::bail!("unexpected answer '{line}'")
    }
}
