//! GLINK over RPM message RAM, the remote's half: how the emulated DSP talks to Linux's
//! `qcom_glink_rpm` (drivers/rpmsg/qcom_glink_rpm.c on qcom_glink_native.c, intentless mode),
//! which carries APR to the Q6 audio services.
//!
//! - [`msg_ram`]: the region's table of contents and its two FIFOs in guest memory;
//! - [`wire`]: the GLINK commands and their lengths;
//! - [`remote`]: version negotiation, the channel the DSP opens, data both ways.
//!
//! Pure, like the rest of the ADSP: the backend polls [`GlinkRemote`] on its clock and raises
//! the guest's interrupt when a poll says so. Head and tail indices and every message are
//! guest-written: all are checked, and a link the guest corrupted stops with a log line.

pub mod msg_ram;
pub mod remote;
pub mod wire;

pub use msg_ram::MsgRam;
pub use remote::{Delivery, GlinkRemote, GlinkStats, Poll};
