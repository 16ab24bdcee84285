//! The server end of one vfio-user connection (QEMU's docs/interop/vfio-user.rst), written here
//! rather than taken from the `vfio_user` crate's `Server`: that one owns the socket and cannot
//! send a server-initiated message (rust-vmm/vfio#146), and the ADSP's interrupt to the guest is
//! one (a DMA_WRITE to the GICv2m's doorbell). The crate's `ServerBackend` trait is kept, so the
//! device glue does not change, and its `Client` drives this server in the tests.
//!
//! Every message is read whole (bounded by [`MAX_MESSAGE`]) before it is decoded; a malformed
//! one gets an error reply with an errno, as the protocol prescribes, and the connection stays.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use vfio_bindings::bindings::vfio::vfio_region_info;
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, ServerBackend};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

/// Largest message accepted: a 1 MiB data transfer (what the server advertises) and its header.
pub const MAX_MESSAGE: usize = (1 << 20) + 64;
/// Most file descriptors one message may carry (what the server advertises).
const MAX_FDS: usize = 16;
const HEADER: usize = 16;

mod command {
    pub const VERSION: u16 = 1;
    pub const DMA_MAP: u16 = 2;
    pub const DMA_UNMAP: u16 = 3;
    pub const DEVICE_GET_INFO: u16 = 4;
    pub const DEVICE_GET_REGION_INFO: u16 = 5;
    pub const DEVICE_GET_IRQ_INFO: u16 = 7;
    pub const DEVICE_SET_IRQS: u16 = 8;
    pub const REGION_READ: u16 = 9;
    pub const REGION_WRITE: u16 = 10;
    pub const DMA_WRITE: u16 = 12;
    pub const DEVICE_RESET: u16 = 13;
}

mod flag {
    pub const TYPE_MASK: u32 = 0xf;
    pub const REPLY: u32 = 1;
    pub const NO_REPLY: u32 = 1 << 4;
    pub const ERROR: u32 = 1 << 5;
}

const VFIO_DEVICE_FLAGS_RESET: u32 = 1 << 0;
const VFIO_DEVICE_FLAGS_PCI: u32 = 1 << 1;

/// What the server tells the client about the device.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    /// Regions by index (BARs 0-5, ROM, config space, VGA).
    pub regions: Vec<vfio_region_info>,
    /// Interrupt indexes (INTx, MSI, MSI-X, ERR, REQ).
    pub irqs: Vec<IrqInfo>,
}

/// Sends server-initiated messages on the current connection, serialized with the server's
/// replies so that two messages never interleave on the stream.
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    stream: Arc<Mutex<Option<UnixStream>>>,
    next_id: Arc<AtomicU16>,
}

impl Outbox {
    /// Writes `data` to guest-physical `address` through the device's bus-master view
    /// (DMA_WRITE, no reply asked). Ok(false) when no client is connected.
    pub fn dma_write(&self, address: u64, data: &[u8]) -> io::Result<bool> {
        if data.len() > MAX_MESSAGE - 64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "DMA_WRITE too long",
            ));
        }
        // The specification's layout (QEMU 11 follows it): header, u64 address, u64 count,
        // the data at offset 32.
        let size = 32 + data.len();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = header(id, command::DMA_WRITE, size, flag::NO_REPLY, 0);
        msg.extend_from_slice(&address.to_le_bytes());
        msg.extend_from_slice(&(data.len() as u64).to_le_bytes());
        msg.extend_from_slice(data);
        self.send(&msg)
    }

    fn send(&self, msg: &[u8]) -> io::Result<bool> {
        let mut guard = self
            .stream
            .lock()
            .map_err(|_| io::Error::other("vfio-user outbox lock poisoned"))?;
        match guard.as_mut() {
            Some(s) => s.write_all(msg).map(|()| true),
            None => Ok(false),
        }
    }

    fn attach(&self, stream: Option<UnixStream>) {
        if let Ok(mut g) = self.stream.lock() {
            *g = stream;
        }
    }
}

fn header(id: u16, cmd: u16, size: usize, flags: u32, error: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(size);
    h.extend_from_slice(&id.to_le_bytes());
    h.extend_from_slice(&cmd.to_le_bytes());
    h.extend_from_slice(&(size as u32).to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(&error.to_le_bytes());
    h
}

/// One received message: its header fields, the bytes after the header, and any fds.
struct Message {
    id: u16,
    cmd: u16,
    flags: u32,
    error: u32,
    body: Vec<u8>,
    fds: Vec<File>,
}

impl Message {
    fn u32_at(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.body.get(at..at + 4)?.try_into().ok()?,
        ))
    }
    fn u64_at(&self, at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(
            self.body.get(at..at + 8)?.try_into().ok()?,
        ))
    }
}

/// Why a request is refused: the errno of the error reply.
type Refusal = i32;

/// Serves one accepted connection until the client closes it.
pub fn serve_connection(
    stream: UnixStream,
    info: &DeviceInfo,
    backend: &mut dyn ServerBackend,
    outbox: &Outbox,
) -> io::Result<()> {
    outbox.attach(Some(stream.try_clone()?));
    let result = (|| loop {
        let Some(msg) = receive(&stream)? else {
            return Ok(());
        };
        if msg.flags & flag::TYPE_MASK != 0 {
            // We send only NO_REPLY messages, so this is the client refusing one of them.
            log::warn!(
                "vfio-user: client answered command {} with flags {:#x}, errno {}",
                msg.cmd,
                msg.flags,
                msg.error
            );
            continue;
        }
        let reply = match handle(&msg, info, backend) {
            Ok(body) => {
                let mut r = header(msg.id, msg.cmd, HEADER + body.len(), flag::REPLY, 0);
                r.extend_from_slice(&body);
                r
            }
            Err(errno) => {
                log::warn!("vfio-user: command {} refused with errno {errno}", msg.cmd);
                header(
                    msg.id,
                    msg.cmd,
                    HEADER,
                    flag::REPLY | flag::ERROR,
                    errno as u32,
                )
            }
        };
        if msg.flags & flag::NO_REPLY == 0 {
            outbox.send(&reply)?;
        }
    })();
    outbox.attach(None);
    result
}

/// Reads one whole message; None at end of stream.
fn receive(stream: &UnixStream) -> io::Result<Option<Message>> {
    let mut head = [0u8; HEADER];
    let mut raw_fds = [-1 as RawFd; MAX_FDS];
    let mut iov = [libc::iovec {
        iov_base: head.as_mut_ptr().cast(),
        iov_len: HEADER,
    }];
    // SAFETY: the iovec points at `head`, which outlives the call and is HEADER bytes long.
    let (got, nfds) = unsafe { stream.recv_with_fds(&mut iov, &mut raw_fds) }
        .map_err(|e| io::Error::from_raw_os_error(e.errno()))?;
    // SAFETY: recv_with_fds returned `nfds` new descriptors that nothing else owns.
    let fds: Vec<File> = raw_fds[..nfds]
        .iter()
        .map(|&fd| unsafe { File::from_raw_fd(fd) })
        .collect();
    if got == 0 {
        return Ok(None);
    }
    let mut s = stream;
    if got < HEADER {
        s.read_exact(&mut head[got..])?;
    }
    let id = u16::from_le_bytes([head[0], head[1]]);
    let cmd = u16::from_le_bytes([head[2], head[3]]);
    let size = u32::from_le_bytes(head[4..8].try_into().unwrap_or_default()) as usize;
    let flags = u32::from_le_bytes(head[8..12].try_into().unwrap_or_default());
    let error = u32::from_le_bytes(head[12..16].try_into().unwrap_or_default());
    if !(HEADER..=MAX_MESSAGE).contains(&size) {
        // The stream cannot be resynchronised after a size we will not read.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("vfio-user message of {size} bytes (command {cmd})"),
        ));
    }
    let mut body = vec![0u8; size - HEADER];
    s.read_exact(&mut body)?;
    Ok(Some(Message {
        id,
        cmd,
        flags,
        error,
        body,
        fds,
    }))
}

fn handle(
    msg: &Message,
    info: &DeviceInfo,
    backend: &mut dyn ServerBackend,
) -> Result<Vec<u8>, Refusal> {
    let io = |r: io::Result<()>| r.map_err(|e| e.raw_os_error().unwrap_or(libc::EIO));
    match msg.cmd {
        command::VERSION => {
            msg.u32_at(0).ok_or(libc::EINVAL)?;
            let caps = format!(
                "{{\"capabilities\":{{\"max_msg_fds\":{MAX_FDS},\"max_data_xfer_size\":{},\"migration\":{{\"pgsize\":4096}}}}}}",
                1 << 20
            );
            // Version 0.0: QEMU refuses a minor version above its own, which is 0.
            let mut body = vec![0, 0, 0, 0];
            body.extend_from_slice(caps.as_bytes());
            body.push(0);
            Ok(body)
        }
        command::DMA_MAP => {
            let (flags, offset, address, size) = (
                msg.u32_at(4).ok_or(libc::EINVAL)?,
                msg.u64_at(8).ok_or(libc::EINVAL)?,
                msg.u64_at(16).ok_or(libc::EINVAL)?,
                msg.u64_at(24).ok_or(libc::EINVAL)?,
            );
            if msg.fds.len() > 1 {
                return Err(libc::EINVAL);
            }
            let fd = msg.fds.first().map(File::try_clone).transpose();
            let fd = fd.map_err(|_| libc::EBADF)?;
            io(backend.dma_map(
                DmaMapFlags::from_bits_retain(flags),
                offset,
                address,
                size,
                fd,
            ))?;
            Ok(Vec::new())
        }
        command::DMA_UNMAP => {
            let (flags, address, size) = (
                msg.u32_at(4).ok_or(libc::EINVAL)?,
                msg.u64_at(8).ok_or(libc::EINVAL)?,
                msg.u64_at(16).ok_or(libc::EINVAL)?,
            );
            io(backend.dma_unmap(DmaUnmapFlags::from_bits_retain(flags), address, size))?;
            Ok(msg.body.get(..24).ok_or(libc::EINVAL)?.to_vec())
        }
        command::DEVICE_GET_INFO => {
            let mut body = Vec::with_capacity(16);
            for v in [
                16,
                VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
                info.regions.len() as u32,
                info.irqs.len() as u32,
            ] {
                body.extend_from_slice(&v.to_le_bytes());
            }
            Ok(body)
        }
        command::DEVICE_GET_REGION_INFO => {
            let index = msg.u32_at(8).ok_or(libc::EINVAL)?;
            let r = info.regions.get(index as usize).ok_or(libc::EINVAL)?;
            let mut body = Vec::with_capacity(32);
            for v in [32, r.flags, r.index, 0] {
                body.extend_from_slice(&v.to_le_bytes());
            }
            body.extend_from_slice(&r.size.to_le_bytes());
            body.extend_from_slice(&r.offset.to_le_bytes());
            Ok(body)
        }
        command::DEVICE_GET_IRQ_INFO => {
            let index = msg.u32_at(8).ok_or(libc::EINVAL)?;
            let irq = info.irqs.get(index as usize).ok_or(libc::EINVAL)?;
            let mut body = Vec::with_capacity(16);
            for v in [16, irq.flags, irq.index, irq.count] {
                body.extend_from_slice(&v.to_le_bytes());
            }
            Ok(body)
        }
        command::DEVICE_SET_IRQS => {
            let (flags, index, start, count) = (
                msg.u32_at(4).ok_or(libc::EINVAL)?,
                msg.u32_at(8).ok_or(libc::EINVAL)?,
                msg.u32_at(12).ok_or(libc::EINVAL)?,
                msg.u32_at(16).ok_or(libc::EINVAL)?,
            );
            if index as usize >= info.irqs.len() {
                return Err(libc::EINVAL);
            }
            let fds = msg
                .fds
                .iter()
                .map(File::try_clone)
                .collect::<io::Result<Vec<_>>>()
                .map_err(|_| libc::EBADF)?;
            io(backend.set_irqs(index, flags, start, count, fds))?;
            Ok(Vec::new())
        }
        command::REGION_READ => {
            let (offset, region, count) = (
                msg.u64_at(0).ok_or(libc::EINVAL)?,
                msg.u32_at(8).ok_or(libc::EINVAL)?,
                msg.u32_at(12).ok_or(libc::EINVAL)?,
            );
            if region as usize >= info.regions.len() || count as usize > MAX_MESSAGE - 64 {
                return Err(libc::EINVAL);
            }
            let mut data = vec![0u8; count as usize];
            io(backend.region_read(region, offset, &mut data))?;
            let mut body = msg.body[..16].to_vec();
            body.extend_from_slice(&data);
            Ok(body)
        }
        command::REGION_WRITE => {
            let (region, count) = (
                msg.u32_at(8).ok_or(libc::EINVAL)?,
                msg.u32_at(12).ok_or(libc::EINVAL)? as usize,
            );
            let offset = msg.u64_at(0).ok_or(libc::EINVAL)?;
            let data = msg.body.get(16..16 + count).ok_or(libc::EINVAL)?;
            if region as usize >= info.regions.len() {
                return Err(libc::EINVAL);
            }
            io(backend.region_write(region, offset, data))?;
            Ok(msg.body[..16].to_vec())
        }
        command::DEVICE_RESET => {
            io(backend.reset())?;
            Ok(Vec::new())
        }
        _ => Err(libc::ENOSYS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Nothing;

    impl ServerBackend for Nothing {
        fn region_read(&mut self, _: u32, _: u64, data: &mut [u8]) -> io::Result<()> {
            data.fill(0xab);
            Ok(())
        }
        fn region_write(&mut self, _: u32, _: u64, _: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn dma_map(
            &mut self,
            _: DmaMapFlags,
            _: u64,
            _: u64,
            _: u64,
            _: Option<File>,
        ) -> io::Result<()> {
            Ok(())
        }
        fn dma_unmap(&mut self, _: DmaUnmapFlags, _: u64, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn reset(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn set_irqs(&mut self, _: u32, _: u32, _: u32, _: u32, _: Vec<File>) -> io::Result<()> {
            Ok(())
        }
    }

    fn info() -> DeviceInfo {
        DeviceInfo {
            regions: vec![vfio_region_info::default(); 9],
            irqs: Vec::new(),
        }
    }

    fn read_message(s: &mut UnixStream) -> Vec<u8> {
        let mut head = [0u8; HEADER];
        s.read_exact(&mut head).unwrap();
        let size = u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize;
        let mut rest = vec![0u8; size - HEADER];
        s.read_exact(&mut rest).unwrap();
        [head.to_vec(), rest].concat()
    }

    #[test]
    fn malformed_and_unknown_requests_get_error_replies_and_the_connection_stays() {
        let (server_end, mut client) = UnixStream::pair().unwrap();
        let outbox = Outbox::default();
        let out = outbox.clone();
        let t = std::thread::spawn(move || {
            serve_connection(server_end, &info(), &mut Nothing, &out).unwrap()
        });
        // REGION_READ with a body too short for its fields.
        client
            .write_all(&header(7, command::REGION_READ, HEADER + 4, 0, 0))
            .unwrap();
        client.write_all(&[0; 4]).unwrap();
        let r = read_message(&mut client);
        assert_eq!(&r[0..4], &[7, 0, 9, 0]);
        assert_eq!(u32::from_le_bytes(r[8..12].try_into().unwrap()), 0x21);
        assert_eq!(
            u32::from_le_bytes(r[12..16].try_into().unwrap()),
            libc::EINVAL as u32
        );
        // An unknown command: ENOSYS.
        client.write_all(&header(8, 99, HEADER, 0, 0)).unwrap();
        let r = read_message(&mut client);
        assert_eq!(
            u32::from_le_bytes(r[12..16].try_into().unwrap()),
            libc::ENOSYS as u32
        );
        // A good REGION_READ still works, and a DMA_WRITE from another thread arrives whole.
        let mut req = header(9, command::REGION_READ, HEADER + 16, 0, 0);
        req.extend_from_slice(&0x10u64.to_le_bytes());
        req.extend_from_slice(&7u32.to_le_bytes());
        req.extend_from_slice(&4u32.to_le_bytes());
        client.write_all(&req).unwrap();
        let r = read_message(&mut client);
        assert_eq!(r.len(), HEADER + 16 + 4);
        assert_eq!(&r[HEADER + 16..], &[0xab; 4]);
        assert!(outbox
            .dma_write(0x0802_0040, &143u32.to_le_bytes())
            .unwrap());
        let w = read_message(&mut client);
        assert_eq!(&w[2..4], &command::DMA_WRITE.to_le_bytes());
        assert_eq!(u32::from_le_bytes(w[4..8].try_into().unwrap()), 36);
        assert_eq!(
            u32::from_le_bytes(w[8..12].try_into().unwrap()),
            flag::NO_REPLY
        );
        assert_eq!(
            u64::from_le_bytes(w[16..24].try_into().unwrap()),
            0x0802_0040
        );
        assert_eq!(u64::from_le_bytes(w[24..32].try_into().unwrap()), 4);
        assert_eq!(&w[32..], &143u32.to_le_bytes());
        drop(client);
        t.join().unwrap();
        assert!(
            !outbox.dma_write(0, &[1]).unwrap(),
            "no connection, nothing sent"
        );
    }

    #[test]
    fn a_message_larger_than_the_bound_ends_the_connection_without_reading_it() {
        let (server_end, mut client) = UnixStream::pair().unwrap();
        client
            .write_all(&header(1, command::REGION_WRITE, MAX_MESSAGE + 1, 0, 0))
            .unwrap();
        let e = serve_connection(server_end, &info(), &mut Nothing, &Outbox::default());
        assert!(e.unwrap_err().to_string().contains("bytes (command 10)"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Any bytes from the client end the connection with an error or serve it to the end;
        /// nothing panics, and every reply is framed.
        #[test]
        fn any_client_bytes_are_answered_or_refused(
            msgs in proptest::collection::vec(
                (0u16..16, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0u32..64),
                1..8,
            )
        ) {
            let (server_end, mut client) = UnixStream::pair().unwrap();
            let mut wire = Vec::new();
            for (cmd, body, flags) in &msgs {
                wire.extend(header(1, *cmd, HEADER + body.len(), *flags, 0));
                wire.extend(body);
            }
            client.write_all(&wire).unwrap();
            client.shutdown(std::net::Shutdown::Write).unwrap();
            let _ = serve_connection(server_end, &info(), &mut Nothing, &Outbox::default());
            let mut out = Vec::new();
            client.read_to_end(&mut out).unwrap();
            let mut at = 0;
            while at < out.len() {
                let size = u32::from_le_bytes(out[at + 4..at + 8].try_into().unwrap()) as usize;
                proptest::prop_assert!(size >= HEADER && at + size <= out.len());
                at += size;
            }
        }
    }
}
