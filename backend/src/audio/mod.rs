//! What the headset heard: recordings streamed to WAV files and checked against the pattern the
//! guest sent.

pub mod counter;
pub mod glitch;
pub mod picture;
pub mod recording;
pub mod wav;
