//! Booting the guest in QEMU and watching what it prints.

pub mod detect;
pub mod dt;
pub mod machine;
pub mod plugin;
pub mod session;
