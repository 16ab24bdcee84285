//! MSI-X delivery to QEMU: one eventfd per vector, handed over by vfio-user SET_IRQS.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The eventfds of a function's MSI-X vectors, shared by every thread that raises interrupts.
#[derive(Clone, Debug, Default)]
pub struct MsixFds {
    fds: Arc<Mutex<Vec<Option<File>>>>,
    raised: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
}

impl MsixFds {
    /// Installs `fds` for vectors `start..start+fds.len()` (SET_IRQS with DATA_EVENTFD);
    /// `count` with no fds disables those vectors.
    pub fn set(&self, start: u32, count: u32, fds: Vec<File>) {
        let Some(mut table) = crate::fatal::lock(&self.fds, "MSI-X") else {
            return;
        };
        let end = start as usize + count.max(fds.len() as u32) as usize;
        if table.len() < end {
            table.resize_with(end, || None);
        }
        if fds.is_empty() {
            table[start as usize..end]
                .iter_mut()
                .for_each(|f| *f = None);
        }
        for (i, f) in fds.into_iter().enumerate() {
            table[start as usize + i] = Some(f);
        }
    }

    /// Forgets every eventfd (device reset, or QEMU disabled MSI-X).
    pub fn clear(&self) {
        if let Some(mut t) = crate::fatal::lock(&self.fds, "MSI-X") {
            t.clear();
        }
    }

    /// Signals `vector`; counted as lost when QEMU has not given an eventfd for it.
    pub fn trigger(&self, vector: u16) {
        let Some(table) = crate::fatal::lock(&self.fds, "MSI-X") else {
            return;
        };
        match table.get(usize::from(vector)).and_then(Option::as_ref) {
            Some(mut f) => {
                if let Err(e) = f.write_all(&1u64.to_ne_bytes()) {
                    log::warn!("MSI-X vector {vector}: eventfd write failed: {e}");
                    self.lost.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.raised.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                log::debug!("MSI-X vector {vector} has no eventfd; interrupt dropped");
                self.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// True when QEMU gave an eventfd for `vector` (the guest enabled it).
    pub fn is_wired(&self, vector: u16) -> bool {
        self.fds
            .lock()
            .map(|t| t.get(usize::from(vector)).is_some_and(Option::is_some))
            .unwrap_or(false)
    }

    /// (interrupts delivered, interrupts dropped for want of an eventfd).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.raised.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd};
    use vmm_sys_util::eventfd::EventFd;

    fn eventfd_pair() -> (EventFd, File) {
        let e = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let dup = e.try_clone().unwrap();
        // SAFETY: the fd was just duplicated for us and nothing else owns it.
        let f = unsafe { File::from_raw_fd(libc::dup(dup.as_raw_fd())) };
        (e, f)
    }

    #[test]
    fn triggers_reach_the_right_eventfd() {
        let m = MsixFds::default();
        let (e0, f0) = eventfd_pair();
        let (e2, f2) = eventfd_pair();
        m.set(0, 1, vec![f0]);
        m.set(2, 1, vec![f2]);
        m.trigger(2);
        m.trigger(2);
        assert_eq!(e2.read().unwrap(), 2);
        assert!(e0.read().is_err(), "vector 0 was not raised");
        m.trigger(1);
        assert_eq!(m.counts(), (2, 1));
        assert!(m.is_wired(2) && !m.is_wired(1) && !m.is_wired(99));
        m.set(2, 1, vec![]);
        m.trigger(2);
        assert_eq!(m.counts(), (2, 2));
    }
}
