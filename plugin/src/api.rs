//! The few QEMU TCG plugin API v7 calls this plugin uses, bound by hand.
//!
//! Checked against QEMU's `include/plugins/qemu-plugin.h` (version 7: "add userdata to all plugin
//! callbacks") and against what QEMU 11.1.3 does on this machine (design/qemu.md §7): the
//! translation callback is `cb(tb, userdata)`, the vCPU-init callback `cb(vcpu_index, userdata)`,
//! the at-exit callback `cb(userdata)`; the instruction-exec callback is `cb(vcpu_index,
//! userdata)` as before. The `qemu-plugin` crate stops at API v5, whose callbacks take other
//! arguments, so it cannot be used.
//!
//! The functions are looked up with `dlsym` when the plugin is installed rather than linked: the
//! library then has no undefined symbols (its unit tests link as an ordinary program), and a QEMU
//! that lacks one of them is named in a clear error instead of a loader failure.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};

/// The API version this plugin is written against; QEMU refuses any other.
pub const API_VERSION: c_int = 7;

/// `qemu_plugin_id_t`.
pub type PluginId = u64;

/// `qemu_info_t`: what QEMU tells the plugin at install time.
#[repr(C)]
pub struct QemuInfo {
    /// `target_name`, e.g. "aarch64".
    pub target_name: *const c_char,
    /// `version.min`.
    pub version_min: c_int,
    /// `version.cur`.
    pub version_cur: c_int,
    /// `system_emulation`.
    pub system_emulation: bool,
    /// `system.smp_vcpus`.
    pub smp_vcpus: c_int,
    /// `system.max_vcpus`.
    pub max_vcpus: c_int,
}

/// `struct qemu_plugin_tb` (opaque).
#[repr(C)]
pub struct Tb {
    _opaque: [u8; 0],
}

/// `struct qemu_plugin_insn` (opaque).
#[repr(C)]
pub struct Insn {
    _opaque: [u8; 0],
}

/// `struct qemu_plugin_register` (opaque).
#[repr(C)]
pub struct Register {
    _opaque: [u8; 0],
}

/// glib's `GArray` (public fields).
#[repr(C)]
pub struct GArray {
    /// `data`.
    pub data: *mut c_char,
    /// `len`.
    pub len: c_uint,
}

/// glib's `GByteArray` (public fields).
#[repr(C)]
pub struct GByteArray {
    /// `data`.
    pub data: *mut u8,
    /// `len`.
    pub len: c_uint,
}

/// `qemu_plugin_reg_descriptor`.
#[repr(C)]
pub struct RegDescriptor {
    /// `handle`.
    pub handle: *mut Register,
    /// `name`.
    pub name: *const c_char,
    /// `feature`.
    pub feature: *const c_char,
    /// `is_readonly`.
    pub is_readonly: bool,
}

/// `QEMU_PLUGIN_CB_R_REGS`: the callback reads registers.
pub const CB_R_REGS: c_int = 1;

/// v7 `qemu_plugin_vcpu_tb_trans_cb_t`.
pub type TbTransCb = unsafe extern "C" fn(tb: *mut Tb, userdata: *mut c_void);
/// v7 `qemu_plugin_vcpu_udata_cb_t`.
pub type VcpuUdataCb = unsafe extern "C" fn(vcpu_index: c_uint, userdata: *mut c_void);
/// v7 `qemu_plugin_udata_cb_t`.
pub type UdataCb = unsafe extern "C" fn(userdata: *mut c_void);

/// Signatures of the API entry points (v7).
#[allow(missing_docs)]
pub mod sig {
    use super::*;
    pub type RegisterTbTrans = unsafe extern "C" fn(PluginId, TbTransCb, *mut c_void);
    pub type RegisterVcpuInit = unsafe extern "C" fn(PluginId, VcpuUdataCb, *mut c_void);
    pub type RegisterAtexit = unsafe extern "C" fn(PluginId, UdataCb, *mut c_void);
    pub type Reset = unsafe extern "C" fn(PluginId, UdataCb, *mut c_void);
    pub type RegisterInsnExec = unsafe extern "C" fn(*mut Insn, VcpuUdataCb, c_int, *mut c_void);
    pub type TbNInsns = unsafe extern "C" fn(*const Tb) -> usize;
    pub type TbGetInsn = unsafe extern "C" fn(*const Tb, usize) -> *mut Insn;
    pub type InsnVaddr = unsafe extern "C" fn(*const Insn) -> u64;
    pub type InsnData = unsafe extern "C" fn(*const Insn, *mut c_void, usize) -> usize;
    pub type GetRegisters = unsafe extern "C" fn() -> *mut GArray;
    pub type ReadRegister = unsafe extern "C" fn(*mut Register, *mut GByteArray) -> bool;
    pub type ReadMemoryVaddr = unsafe extern "C" fn(u64, *mut GByteArray, usize) -> bool;
    pub type GArrayFree = unsafe extern "C" fn(*mut GArray, c_int) -> *mut c_char;
    pub type GByteArrayNew = unsafe extern "C" fn() -> *mut GByteArray;
    pub type GByteArrayFree = unsafe extern "C" fn(*mut GByteArray, c_int) -> *mut u8;
}

/// The API entry points, resolved in the QEMU process.
#[derive(Clone, Copy)]
#[allow(missing_docs)]
pub struct Api {
    pub register_vcpu_tb_trans_cb: sig::RegisterTbTrans,
    pub register_vcpu_init_cb: sig::RegisterVcpuInit,
    pub register_atexit_cb: sig::RegisterAtexit,
    pub reset: sig::Reset,
    pub register_vcpu_insn_exec_cb: sig::RegisterInsnExec,
    pub tb_n_insns: sig::TbNInsns,
    pub tb_get_insn: sig::TbGetInsn,
    pub insn_vaddr: sig::InsnVaddr,
    pub insn_data: sig::InsnData,
    pub get_registers: sig::GetRegisters,
    pub read_register: sig::ReadRegister,
    pub read_memory_vaddr: sig::ReadMemoryVaddr,
    pub g_array_free: sig::GArrayFree,
    pub g_byte_array_new: sig::GByteArrayNew,
    pub g_byte_array_free: sig::GByteArrayFree,
}

fn lookup(name: &CStr) -> Result<*mut c_void, String> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the loaded objects'
    // symbol tables.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    if p.is_null() {
        Err(format!(
            "this QEMU does not export {} (is it a QEMU with TCG plugin support?)",
            name.to_string_lossy()
        ))
    } else {
        Ok(p)
    }
}

macro_rules! bind {
    ($name:literal, $ty:ty) => {{
        let p = lookup($name)?;
        // SAFETY: the symbol is QEMU's (or glib's) function of that name; its C signature is
        // `$ty` (checked against qemu-plugin.h v7 and glib's headers).
        unsafe { std::mem::transmute::<*mut c_void, $ty>(p) }
    }};
}

impl Api {
    /// Resolves every entry point; the error names the first one missing.
    pub fn resolve() -> Result<Api, String> {
        Ok(Api {
            register_vcpu_tb_trans_cb: bind!(
                c"qemu_plugin_register_vcpu_tb_trans_cb",
                sig::RegisterTbTrans
            ),
            register_vcpu_init_cb: bind!(
                c"qemu_plugin_register_vcpu_init_cb",
                sig::RegisterVcpuInit
            ),
            register_atexit_cb: bind!(c"qemu_plugin_register_atexit_cb", sig::RegisterAtexit),
            reset: bind!(c"qemu_plugin_reset", sig::Reset),
            register_vcpu_insn_exec_cb: bind!(
                c"qemu_plugin_register_vcpu_insn_exec_cb",
                sig::RegisterInsnExec
            ),
            tb_n_insns: bind!(c"qemu_plugin_tb_n_insns", sig::TbNInsns),
            tb_get_insn: bind!(c"qemu_plugin_tb_get_insn", sig::TbGetInsn),
            insn_vaddr: bind!(c"qemu_plugin_insn_vaddr", sig::InsnVaddr),
            insn_data: bind!(c"qemu_plugin_insn_data", sig::InsnData),
            get_registers: bind!(c"qemu_plugin_get_registers", sig::GetRegisters),
            read_register: bind!(c"qemu_plugin_read_register", sig::ReadRegister),
            read_memory_vaddr: bind!(c"qemu_plugin_read_memory_vaddr", sig::ReadMemoryVaddr),
            g_array_free: bind!(c"g_array_free", sig::GArrayFree),
            g_byte_array_new: bind!(c"g_byte_array_new", sig::GByteArrayNew),
            g_byte_array_free: bind!(c"g_byte_array_free", sig::GByteArrayFree),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_info_matches_the_c_layout() {
        // const char *; struct { int min, cur; }; bool; union { struct { int, int } }.
        assert_eq!(std::mem::offset_of!(QemuInfo, version_min), 8);
        assert_eq!(std::mem::offset_of!(QemuInfo, system_emulation), 16);
        assert_eq!(std::mem::offset_of!(QemuInfo, smp_vcpus), 20);
        assert_eq!(std::mem::size_of::<QemuInfo>(), 32);
        assert_eq!(std::mem::size_of::<RegDescriptor>(), 32);
    }

    #[test]
    fn outside_qemu_the_missing_entry_point_is_named() {
        let e = Api::resolve().err().unwrap();
        assert!(e.contains("qemu_plugin_register_vcpu_tb_trans_cb"), "{e}");
    }
}
