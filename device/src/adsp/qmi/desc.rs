//! Message descriptions as data, the Rust counterpart of `struct qmi_elem_info` arrays, and the
//! values a described message carries.

use std::collections::BTreeMap;

/// TLV types from here on are optional (emitted only when their `_valid` flag is set); lower
/// ones are mandatory.
pub const OPTIONAL_TLV_START: u8 = 0x10;

/// Width of the count in front of a variable-length array (QMI_DATA_LEN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenPrefix {
    /// One byte.
    U8,
    /// Two bytes, little endian.
    U16,
}

/// One element's wire layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    /// QMI_UNSIGNED_1_BYTE.
    U8,
    /// QMI_UNSIGNED_2_BYTE, little endian.
    U16,
    /// QMI_UNSIGNED_4_BYTE, little endian.
    U32,
    /// QMI_UNSIGNED_8_BYTE, little endian.
    U64,
    /// QMI_SIGNED_4_BYTE_ENUM: a C enum, 4 bytes little endian.
    Enum32,
    /// QMI_STRUCT: the fields in order, with no padding and no inner TLV headers.
    Struct(&'static [Field]),
    /// STATIC_ARRAY: exactly this many elements.
    Array(&'static Elem, usize),
    /// VAR_LEN_ARRAY: a count, then up to `max` elements.
    VarArray {
        /// Element layout.
        elem: &'static Elem,
        /// Most elements allowed.
        max: usize,
        /// Width of the count.
        prefix: LenPrefix,
    },
}

impl Elem {
    /// Encoded size, if it does not depend on the value.
    pub fn fixed_size(&self) -> Option<usize> {
        match self {
            Self::U8 => Some(1),
            Self::U16 => Some(2),
            Self::U32 | Self::Enum32 => Some(4),
            Self::U64 => Some(8),
            Self::Struct(fields) => fields.iter().map(|f| f.elem.fixed_size()).sum(),
            Self::Array(elem, n) => elem.fixed_size().map(|s| s * n),
            Self::VarArray { .. } => None,
        }
    }

    /// Largest encoded size.
    pub fn max_size(&self) -> usize {
        match self {
            Self::Struct(fields) => fields.iter().map(|f| f.elem.max_size()).sum(),
            Self::Array(elem, n) => elem.max_size() * n,
            Self::VarArray { elem, max, prefix } => {
                let count = match prefix {
                    LenPrefix::U8 => 1,
                    LenPrefix::U16 => 2,
                };
                count + elem.max_size() * max
            }
            scalar => scalar.fixed_size().unwrap_or(0),
        }
    }
}

/// A named member of a struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Name, for messages.
    pub name: &'static str,
    /// Layout.
    pub elem: Elem,
}

/// One TLV of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlvDesc {
    /// TLV type.
    pub ty: u8,
    /// Name of the field it carries, for messages.
    pub name: &'static str,
    /// Layout of the value.
    pub elem: Elem,
}

impl TlvDesc {
    /// Optional TLVs have types from [`OPTIONAL_TLV_START`] on.
    pub fn optional(&self) -> bool {
        self.ty >= OPTIONAL_TLV_START
    }
}

/// A whole message: its id, its largest encoded payload and its TLVs in encoding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageDesc {
    /// Name, for messages.
    pub name: &'static str,
    /// Message id of the header.
    pub msg_id: u16,
    /// Largest payload (`*_MAX_MSG_LEN`): longer input is refused.
    pub max_len: usize,
    /// The TLVs, in the order the encoder emits them.
    pub tlvs: &'static [TlvDesc],
}

impl MessageDesc {
    /// The description of TLV `ty`.
    pub fn tlv(&self, ty: u8) -> Option<&'static TlvDesc> {
        self.tlvs.iter().find(|t| t.ty == ty)
    }

    /// Sum of the largest encoded size of every TLV (what `*_MAX_MSG_LEN` states).
    pub fn computed_max_len(&self) -> usize {
        self.tlvs.iter().map(|t| 3 + t.elem.max_size()).sum()
    }
}

/// A value of an [`Elem`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// For [`Elem::U8`].
    U8(u8),
    /// For [`Elem::U16`].
    U16(u16),
    /// For [`Elem::U32`].
    U32(u32),
    /// For [`Elem::U64`].
    U64(u64),
    /// For [`Elem::Enum32`].
    Enum32(i32),
    /// For [`Elem::Struct`]: one value per field, in order.
    Struct(Vec<Value>),
    /// For [`Elem::Array`] and [`Elem::VarArray`].
    Array(Vec<Value>),
}

impl Value {
    /// The integer inside a scalar value, widened.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::Enum32(v) => Some(u64::from(v as u32)),
            Self::Struct(_) | Self::Array(_) => None,
        }
    }
}

/// The TLVs present in a message, by type. For optional TLVs, present = `_valid` set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tlvs(pub BTreeMap<u8, Value>);

impl Tlvs {
    /// No TLVs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets TLV `ty`.
    pub fn set(&mut self, ty: u8, value: Value) -> &mut Self {
        self.0.insert(ty, value);
        self
    }

    /// TLV `ty`, if present.
    pub fn get(&self, ty: u8) -> Option<&Value> {
        self.0.get(&ty)
    }

    /// True if TLV `ty` is present.
    pub fn has(&self, ty: u8) -> bool {
        self.0.contains_key(&ty)
    }
}
