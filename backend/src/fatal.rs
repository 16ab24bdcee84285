//! The backend's own failures, which end a run at once: a panic in any thread, or a lock found
//! poisoned by one.
//!
//! Without this a panicking backend thread dies quietly: the bus clock stops (its lock is
//! poisoned), a transport stops answering, and the run fails much later as an unrelated timeout.
//! [`install`] puts a panic hook in front of the default one (which still prints to stderr) that
//! keeps the first panic's message, thread and place in one process-wide record; code that finds
//! a lock poisoned locks through [`lock`] (or calls [`poisoned`]) instead of stopping quietly,
//! which records the same way. The boot loop (`vm::session::boot`) looks at the record at least
//! every 200 ms and ends the boot with it. The record is per run: `runner::run_scenario` clears it
//! before a scenario's devices start, so a failure belongs to the scenario it happened in.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, Location};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};

/// Longest panic message kept (an `assert_eq!` of two large values can be huge).
const MESSAGE_MAX: usize = 2000;

/// One failure of the backend: what happened, in which thread, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The panic message, or which lock was found poisoned.
    pub message: String,
    /// The thread's name (`<unnamed>` for a thread without one).
    pub thread: String,
    /// `FILE:LINE` of the panic or of the lock.
    pub location: String,
}

impl Failure {
    /// A failure in the current thread at `location` (`FILE:LINE`).
    fn here(message: String, location: String) -> Failure {
        let mut message = message;
        if message.len() > MESSAGE_MAX {
            let mut cut = MESSAGE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [...]");
        }
        Failure {
            message,
            thread: std::thread::current()
                .name()
                .unwrap_or("<unnamed>")
                .to_string(),
            location,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (thread {} at {})",
            self.message, self.thread, self.location
        )
    }
}

/// The first failure since the record was last cleared: later ones are mostly its
/// consequences (other threads finding its lock poisoned).
#[derive(Debug, Default)]
pub struct Record(Mutex<Option<Failure>>);

impl Record {
    /// An empty record.
    pub const fn new() -> Record {
        Record(Mutex::new(None))
    }

    fn slot(&self) -> MutexGuard<'_, Option<Failure>> {
        // Nothing panics while holding it; never let the record itself fail.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `f` unless a failure is recorded already; true when it was kept.
    pub fn record(&self, f: Failure) -> bool {
        let mut slot = self.slot();
        if slot.is_some() {
            return false;
        }
        *slot = Some(f);
        true
    }

    /// The recorded failure, left in place.
    pub fn first(&self) -> Option<Failure> {
        self.slot().clone()
    }

    /// The recorded failure; the record is empty afterwards.
    pub fn take(&self) -> Option<Failure> {
        self.slot().take()
    }

    /// Records that the `what` lock was found poisoned at the caller's place.
    #[track_caller]
    pub fn poisoned(&self, what: &str) {
        let f = Failure::here(
            format!("the {what} lock was poisoned by a panic"),
            at(Location::caller()),
        );
        if self.record(f.clone()) {
            log::error!("backend failure: {f}");
        }
    }

    /// Locks `m`; a poisoned lock is recorded as the `what` lock and gives `None`.
    #[track_caller]
    pub fn lock<'a, T: ?Sized>(&self, m: &'a Mutex<T>, what: &str) -> Option<MutexGuard<'a, T>> {
        match m.lock() {
            Ok(g) => Some(g),
            Err(_) => {
                self.poisoned(what);
                None
            }
        }
    }
}

/// The process's record.
static RECORD: Record = Record::new();
/// Held by the unit tests that use the process's record (they run in parallel).
#[cfg(test)]
pub static TEST_RECORD: Mutex<()> = Mutex::new(());
static INSTALLED: Once = Once::new();

/// Installs the panic hook that records every panic (once per process; later calls do nothing).
/// The default hook still runs after it, so the panic is printed on stderr as before.
pub fn install() {
    INSTALLED.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info.location().map_or("an unknown place".into(), at);
            RECORD.record(Failure::here(payload_text(info.payload()), location));
            default(info);
        }));
    });
}

/// `FILE:LINE` of `l`.
fn at(l: &Location<'_>) -> String {
    format!("{}:{}", l.file(), l.line())
}

/// The text of a panic's payload (`panic!` gives a `&str` or a `String`).
fn payload_text(payload: &(dyn Any + Send)) -> String {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a panic without a text message".into(),
    }
}

/// The backend's failure in this run so far, if any.
pub fn first() -> Option<Failure> {
    RECORD.first()
}

/// The backend's failure in this run, if any; the record is empty afterwards.
pub fn take() -> Option<Failure> {
    RECORD.take()
}

/// Starts a new run: forgets a failure of the run before.
pub fn clear() {
    RECORD.take();
}

/// Records that the `what` lock was found poisoned (for locks that are not a `Mutex`).
#[track_caller]
pub fn poisoned(what: &str) {
    RECORD.poisoned(what);
}

/// Locks `m`; a poisoned lock is recorded as the run's failure (the `what` lock) and gives
/// `None`, so the caller stops what it was doing and the boot ends with the panic behind it.
#[track_caller]
pub fn lock<'a, T: ?Sized>(m: &'a Mutex<T>, what: &str) -> Option<MutexGuard<'a, T>> {
    RECORD.lock(m, what)
}

/// Runs `f`, containing a panic: `None` when it panicked (the panic is recorded, by the hook or
/// here), so a thread that must not unwind into its caller (a scoped thread, the boot loop's
/// request handler) ends cleanly and the boot reports the failure instead.
#[track_caller]
pub fn contain<R>(f: impl FnOnce() -> R) -> Option<R> {
    let caught_at = Location::caller();
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(payload) => {
            RECORD.record(Failure::here(payload_text(&*payload), at(caught_at)));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(message: &str) -> Failure {
        Failure {
            message: message.into(),
            thread: "t".into(),
            location: "f.rs:1".into(),
        }
    }

    #[test]
    fn the_first_failure_wins_until_the_record_is_taken() {
        let r = Record::new();
        assert_eq!(r.first(), None);
        assert!(r.record(failure("first")));
        assert!(!r.record(failure("second")), "a consequence, not the cause");
        assert_eq!(r.first().unwrap().message, "first");
        assert_eq!(r.take().unwrap().message, "first");
        assert_eq!(r.first(), None, "the next run starts clean");
        assert!(r.record(failure("next run")));
        assert_eq!(r.first().unwrap().message, "next run");
    }

    #[test]
    fn a_poisoned_lock_is_recorded_where_it_was_found() {
        let r = Record::new();
        let m = std::sync::Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            std::panic::resume_unwind(Box::new("quiet"));
        })
        .join();
        assert!(r.lock(&m, "xHCI").is_none());
        let f = r.take().unwrap();
        assert_eq!(f.message, "the xHCI lock was poisoned by a panic");
        assert!(f.location.starts_with(file!()), "{f}");
        let healthy = Mutex::new(2);
        assert_eq!(r.lock(&healthy, "other").map(|g| *g), Some(2));
        assert_eq!(r.first(), None);
    }

    #[test]
    fn a_long_message_is_cut_on_a_character_boundary() {
        let f = Failure::here("é".repeat(MESSAGE_MAX), "f.rs:1".into());
        assert!(f.message.len() <= MESSAGE_MAX + 6 && f.message.ends_with(" [...]"));
    }

    /// The process's record: the hook, `contain`, the per-run reset.
    #[test]
    fn a_panic_in_any_thread_is_recorded_with_its_thread_and_place() {
        let _alone = TEST_RECORD.lock().unwrap_or_else(PoisonError::into_inner);
        install();
        install();
        clear();
        let line = line!() + 4;
        let t = std::thread::Builder::new()
            .name("fatal-test".into())
            .spawn(|| {
                panic!("deliberate: {}", 42);
            })
            .unwrap();
        assert!(t.join().is_err());
        let f = first().unwrap();
        assert_eq!(f.message, "deliberate: 42");
        assert_eq!(f.thread, "fatal-test");
        assert_eq!(f.location, format!("{}:{line}", file!()));
        assert_eq!(
            f.to_string(),
            format!("deliberate: 42 (thread fatal-test at {}:{line})", file!())
        );
        assert_eq!(contain(|| panic!("later")), None::<()>);
        assert_eq!(first().unwrap().message, "deliberate: 42", "first wins");
        clear();
        assert_eq!(take(), None, "a new run starts clean");
        assert_eq!(contain(|| 7), Some(7));
        assert_eq!(first(), None);
        assert_eq!(contain(|| std::panic::panic_any(3u8)), None::<()>);
        assert_eq!(take().unwrap().message, "a panic without a text message");
    }
}
