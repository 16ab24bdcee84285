//! Serves the control socket until told to stop: one connection at a time, one request line
//! each, every read and write under a timeout so a stuck client cannot hold the boot.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::MAX_REQUEST;

/// How long a client may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// A request handler: the answer, or why the request failed.
pub type Handler<'a> = dyn Fn(&str) -> anyhow::Result<String> + Sync + 'a;

/// Binds the socket at `path` (replacing a stale one).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Answers requests on `listener` with `handle` until `stop` is set.
pub fn serve(listener: &UnixListener, stop: &AtomicBool, handle: &Handler<'_>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = answer(stream, handle) {
                    log::debug!("control socket: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                log::warn!("control socket: accept failed: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn answer(stream: UnixStream, handle: &Handler<'_>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST as u64)).read_line(&mut line)?;
    let request = line.trim();
    let reply = if request.is_empty() {
        "error empty request".to_string()
    } else {
        match handle(request) {
            Ok(a) => format!("ok {}", a.replace('\n', " ")),
            Err(e) => format!("error {}", format!("{e:#}").replace('\n', " ")),
        }
    };
    (&stream).write_all(format!("{reply}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_requests_and_errors_then_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        std::fs::write(&path, b"stale").unwrap();
        let l = bind(&path).unwrap();
        let stop = AtomicBool::new(false);
        let handle = |r: &str| -> anyhow::Result<String> {
            match r {
                "stats" => Ok("{\"a\":1}".into()),
                _ => anyhow::bail!("unknown request '{r}'"),
            }
        };
        std::thread::scope(|s| {
            s.spawn(|| serve(&l, &stop, &handle));
            let t = Duration::from_secs(5);
            assert_eq!(
                super::super::client::request(&path, "stats", t).unwrap(),
                Ok("{\"a\":1}".to_string())
            );
            assert_eq!(
                super::super::client::request(&path, "frob 1", t).unwrap(),
                Err("unknown request 'frob 1'".to_string())
            );
            // A client that hangs up without a request does not stop the server.
            drop(UnixStream::connect(&path).unwrap());
            assert!(super::super::client::request(&path, "stats", t)
                .unwrap()
                .is_ok());
            stop.store(true, Ordering::Relaxed);
        });
    }
}
