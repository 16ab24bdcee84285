//! The ADSP as the guest's offload driver sees it over QRTR: the protocol models only.
//!
//! - [`qrtr`]: packet codec, control packets, flow control, the DSP's node (node 5);
//! - [`qmi`]: the table-driven QMI codec;
//! - [`uaudio`]: the UAUDIO service's messages and the DSP's client state machine;
//! - [`apr`]: APR packets and the Q6 services behind them (core, AFE, ASM, ADM);
//! - [`engine`]: the stream engine on the rings the guest hands over; [`pcm_input`]: the PCM it
//!   plays when user space feeds it through ASM;
//! - [`glink`]: GLINK over RPM message RAM, the link APR rides on to the Q6 services;
//! - [`link`]: node and client wired together, which the backend feeds with whole QRTR packets
//!   from the guest's `/dev/qrtr-tun` relay and which returns whole packets to write back.
//!
//! Everything is pure: no socket, thread, clock or file. The guest is untrusted: every packet and
//! message is checked, refused with an error value and a warning, never a panic, and every
//! allocation is bounded by the input size or a constant.

pub mod apr;
pub mod engine;
pub mod glink;
pub mod link;
pub mod pcm_input;
pub mod qmi;
pub mod qrtr;
pub mod uaudio;

pub use link::{AdspLink, LinkOutput, DSP_CLIENT_PORT};
pub use uaudio::{Event, State, StreamParams, StreamResources};

/// Displays an error with its sources, "a: b: c", for log lines.
pub(crate) struct ErrorChain<'a>(pub &'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut src = self.0.source();
        while let Some(e) = src {
            write!(f, ": {e}")?;
            src = e.source();
        }
        Ok(())
    }
}
