//! The byte stream that carries QRTR packets between the guest's `/dev/qrtr-tun` (through the
//! `sb-qrtr-relay` helper and a virtio-serial port) and the backend's ADSP. Each packet travels
//! as a little-endian u32 length and the packet bytes. QEMU's socket chardev connects to us.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Largest QRTR packet either side may send (the relay's limit).
pub const MAX_PACKET: usize = 65536;

/// Reassembles packets from the byte stream.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
}

/// A frame the stream cannot contain.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFrame(pub u32);

impl Deframer {
    /// Adds bytes read from the stream; returns the whole packets they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, BadFrame> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(head) = self.buf.get(..4) {
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            if len == 0 || len as usize > MAX_PACKET {
                return Err(BadFrame(len));
            }
            let end = 4 + len as usize;
            if self.buf.len() < end {
                break;
            }
            out.push(self.buf[4..end].to_vec());
            self.buf.drain(..end);
        }
        Ok(out)
    }
}

/// Frames one packet for the stream.
pub fn frame(packet: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(packet.len() + 4);
    out.extend_from_slice(&(packet.len() as u32).to_le_bytes());
    out.extend_from_slice(packet);
    out
}

/// Whoever answers the guest's packets (the ADSP's QRTR node).
pub trait PacketHandler: Send + 'static {
    /// One packet from the guest; returns the packets to send back.
    fn on_packet(&mut self, packet: &[u8]) -> Vec<Vec<u8>>;
    /// The link is up (QEMU connected): packets to send first (the DSP's HELLO).
    fn on_connect(&mut self) -> Vec<Vec<u8>>;
    /// The link went down.
    fn on_disconnect(&mut self);
}

/// The listening end of the link; one QEMU connection at a time.
#[derive(Debug)]
pub struct QrtrLink {
    writer: Arc<Mutex<Option<UnixStream>>>,
    _thread: JoinHandle<()>,
}

impl QrtrLink {
    /// Listens on `socket` now and serves connections on a thread, feeding `handler`.
    pub fn serve<H: PacketHandler>(socket: &Path, handler: Arc<Mutex<H>>) -> io::Result<Self> {
        let listener = UnixListener::bind(socket)
            .map_err(|e| io::Error::other(format!("QRTR link socket {}: {e}", socket.display())))?;
        let writer: Arc<Mutex<Option<UnixStream>>> = Arc::default();
        let w = writer.clone();
        let thread = std::thread::Builder::new()
            .name("qrtr-link".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    let Ok(stream) = conn else { continue };
                    serve_connection(stream, &handler, &w);
                }
            })?;
        Ok(QrtrLink {
            writer,
            _thread: thread,
        })
    }

    /// Sends a packet to the guest now (for packets the DSP originates: requests, HELLO).
    /// Fails when no guest is connected.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let mut guard = self
            .writer
            .lock()
            .map_err(|_| io::Error::other("link lock poisoned"))?;
        match guard.as_mut() {
            Some(s) => s.write_all(&frame(packet)),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "no guest on the QRTR link",
            )),
        }
    }

    /// Drops the connection: the relay exits, the guest's tun endpoint goes away and the guest
    /// sees the DSP node leave.
    pub fn hang_up(&self) {
        if let Some(mut g) = crate::fatal::lock(&self.writer, "QRTR link") {
            if let Some(s) = g.take() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

fn serve_connection<H: PacketHandler>(
    stream: UnixStream,
    handler: &Arc<Mutex<H>>,
    writer: &Arc<Mutex<Option<UnixStream>>>,
) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    if let Some(mut w) = crate::fatal::lock(writer, "QRTR link") {
        *w = Some(write_half);
    }
    let send = |packets: Vec<Vec<u8>>| {
        if let Some(mut w) = crate::fatal::lock(writer, "QRTR link") {
            if let Some(s) = w.as_mut() {
                for p in packets {
                    if let Err(e) = s.write_all(&frame(&p)) {
                        log::warn!("QRTR link: write failed: {e}");
                    }
                }
            }
        }
    };
    if let Some(mut h) = crate::fatal::lock(handler, "QRTR handler") {
        send(h.on_connect());
    }
    let mut reader = stream;
    let mut deframer = Deframer::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        match deframer.push(&buf[..n]) {
            Ok(packets) => {
                for p in packets {
                    let replies = match crate::fatal::lock(handler, "QRTR handler") {
                        Some(mut h) => h.on_packet(&p),
                        None => Vec::new(),
                    };
                    send(replies);
                }
            }
            Err(BadFrame(len)) => {
                log::warn!("QRTR link: guest relay sent a frame of {len} bytes; dropping the link");
                break;
            }
        }
    }
    if let Some(mut w) = crate::fatal::lock(writer, "QRTR link") {
        *w = None;
    }
    if let Some(mut h) = crate::fatal::lock(handler, "QRTR handler") {
        h.on_disconnect();
    }
    log::debug!("QRTR link: guest side closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deframer_handles_split_and_joined_frames() {
        let mut d = Deframer::default();
        let mut stream = frame(b"hello");
        stream.extend(frame(&[7u8; 40]));
        assert_eq!(d.push(&stream[..3]).unwrap(), Vec::<Vec<u8>>::new());
        let got = d.push(&stream[3..]).unwrap();
        assert_eq!(got, vec![b"hello".to_vec(), vec![7u8; 40]]);
        assert_eq!(d.push(&0u32.to_le_bytes()), Err(BadFrame(0)));
        let mut d = Deframer::default();
        assert_eq!(
            d.push(&(MAX_PACKET as u32 + 1).to_le_bytes()),
            Err(BadFrame(MAX_PACKET as u32 + 1))
        );
    }

    #[derive(Default)]
    struct Echo {
        seen: Vec<Vec<u8>>,
        disconnected: bool,
    }

    impl PacketHandler for Echo {
        fn on_packet(&mut self, packet: &[u8]) -> Vec<Vec<u8>> {
            self.seen.push(packet.to_vec());
            vec![packet.iter().rev().copied().collect()]
        }
        fn on_connect(&mut self) -> Vec<Vec<u8>> {
            vec![b"hi".to_vec()]
        }
        fn on_disconnect(&mut self) {
            self.disconnected = true;
        }
    }

    #[test]
    fn link_greets_answers_and_notices_hangup() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("q.sock");
        let h = Arc::new(Mutex::new(Echo::default()));
        let link = QrtrLink::serve(&sock, h.clone()).unwrap();
        let mut guest = UnixStream::connect(&sock).unwrap();
        guest
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut d = Deframer::default();
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        guest.write_all(&frame(b"abc")).unwrap();
        while got.len() < 2 {
            let n = guest.read(&mut buf).unwrap();
            got.extend(d.push(&buf[..n]).unwrap());
        }
        assert_eq!(got, vec![b"hi".to_vec(), b"cba".to_vec()]);
        link.send(b"dsp").unwrap();
        let n = guest.read(&mut buf).unwrap();
        assert_eq!(d.push(&buf[..n]).unwrap(), vec![b"dsp".to_vec()]);
        link.hang_up();
        assert_eq!(
            guest.read(&mut buf).unwrap(),
            0,
            "the guest side sees the link drop"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !h.lock().unwrap().disconnected && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(h.lock().unwrap().disconnected);
        assert_eq!(h.lock().unwrap().seen, vec![b"abc".to_vec()]);
    }
}
