//! Frames: element types, shapes, metadata schemas, and the frame values readers receive.

use crate::error::{MetaError, SchemaError};
use crate::layout::{FieldEntry, SchemaHeader, MAX_DIMS, MAX_FIELDS, MAX_META};

/// Element type of a frame's array (and of a metadata field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum DType {
    /// `u8`
    U8 = 1,
    /// `i8`
    I8 = 2,
    /// `u16`
    U16 = 3,
    /// `i16`
    I16 = 4,
    /// `u32`
    U32 = 5,
    /// `i32`
    I32 = 6,
    /// `u64`
    U64 = 7,
    /// `i64`
    I64 = 8,
    /// `f32`
    F32 = 9,
    /// `f64`
    F64 = 10,
    /// `bool` (one byte, 0 or 1)
    Bool = 11,
}

impl DType {
    /// Every dtype.
    pub const ALL: [DType; 11] = [
        DType::U8,
        DType::I8,
        DType::U16,
        DType::I16,
        DType::U32,
        DType::I32,
        DType::U64,
        DType::I64,
        DType::F32,
        DType::F64,
        DType::Bool,
    ];

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 | DType::Bool => 1,
            DType::U16 | DType::I16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// The wire code (see `docs/protocol.md`).
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The dtype for a wire code.
    pub fn from_code(code: u32) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.code() == code)
    }

    /// NumPy's name: `uint8`, `float32`, `bool`, …
    pub const fn name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::U16 => "uint16",
            DType::I16 => "int16",
            DType::U32 => "uint32",
            DType::I32 => "int32",
            DType::U64 => "uint64",
            DType::I64 => "int64",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::Bool => "bool",
        }
    }

    /// Parses NumPy's names (`uint8`), Rust's (`u8`), and NumPy's type strings with a byte-order
    /// character (`<u1`, `|u1`, `=f4`, `<u8` = uint64), native order only.
    pub fn parse(s: &str) -> Option<DType> {
        let t = s.trim();
        if let Some(code) = t
            .strip_prefix('<')
            .or_else(|| t.strip_prefix('|'))
            .or_else(|| t.strip_prefix('='))
        {
            if cfg!(target_endian = "big") && t.starts_with('<') {
                return None;
            }
            return Some(match code {
                "u1" => DType::U8,
                "i1" => DType::I8,
                "u2" => DType::U16,
                "i2" => DType::I16,
                "u4" => DType::U32,
                "i4" => DType::I32,
                "u8" => DType::U64,
                "i8" => DType::I64,
                "f4" => DType::F32,
                "f8" => DType::F64,
                "b1" => DType::Bool,
                _ => return None,
            });
        }
        Some(match t {
            "uint8" | "u8" => DType::U8,
            "int8" | "i8" => DType::I8,
            "uint16" | "u16" => DType::U16,
            "int16" | "i16" => DType::I16,
            "uint32" | "u32" => DType::U32,
            "int32" | "i32" => DType::I32,
            "uint64" | "u64" => DType::U64,
            "int64" | "i64" => DType::I64,
            "float32" | "f32" => DType::F32,
            "float64" | "f64" => DType::F64,
            "bool" => DType::Bool,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust element type with a [`DType`].
pub trait Element: bytemuck::Pod {
    /// Its dtype.
    const DTYPE: DType;
}

macro_rules! element {
    ($($t:ty => $d:ident),*) => { $(impl Element for $t { const DTYPE: DType = DType::$d; })* };
}
element!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, u64 => U64,
         i64 => I64, f32 => F32, f64 => F64);

/// The type of a metadata field: a scalar element type, or a fixed-size array of one.
pub trait FieldType {
    /// Element type.
    const DTYPE: DType;
    /// Element count (1 for a scalar).
    const COUNT: u32;
}
impl<T: Element> FieldType for T {
    const DTYPE: DType = T::DTYPE;
    const COUNT: u32 = 1;
}
impl<T: Element, const N: usize> FieldType for [T; N] {
    const DTYPE: DType = T::DTYPE;
    const COUNT: u32 = N as u32;
}

/// One metadata field: what a ctypes `_fields_` entry says, plus its offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Field name (≤ 31 bytes).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Elements (1 for a scalar).
    pub count: u32,
    /// Byte offset in the value.
    pub offset: u32,
}

/// The layout of a metadata type, stored in the channel so a reader in any language can decode
/// frames' metadata without the writer's source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// Type name (≤ 31 bytes).
    pub type_name: String,
    /// `size_of` the type.
    pub size: u32,
    /// `align_of` the type.
    pub align: u32,
    /// Fields, in declaration order.
    pub fields: Vec<Field>,
}

fn name32(s: &str) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

fn from_name32(b: &[u8; 32]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(32);
    if b[end..].iter().any(|&c| c != 0) {
        return None;
    }
    String::from_utf8(b[..end].to_vec()).ok()
}

impl Schema {
    /// Checks names, offsets and sizes.
    pub fn validate(&self) -> Result<(), SchemaError> {
        let bad = |what: String| SchemaError::Invalid {
            schema: self.type_name.clone(),
            what,
        };
        if self.type_name.len() > 31 {
            return Err(bad("type name longer than 31 bytes".into()));
        }
        if self.size == 0 || self.size > MAX_META {
            return Err(bad(format!("size {} not in 1..={MAX_META}", self.size)));
        }
        if !self.align.is_power_of_two() || self.align > 4096 {
            return Err(bad(format!(
                "alignment {} is not a power of two ≤ 4096",
                self.align
            )));
        }
        if self.fields.len() > MAX_FIELDS {
            return Err(bad(format!(
                "{} fields; the limit is {MAX_FIELDS}",
                self.fields.len()
            )));
        }
        for f in &self.fields {
            if f.name.is_empty() || f.name.len() > 31 || f.name.contains('\0') {
                return Err(bad(format!("field name {:?} must be 1..=31 bytes", f.name)));
            }
            let end = (f.dtype.size() as u64) * f.count as u64 + f.offset as u64;
            if f.count == 0 || end > self.size as u64 {
                return Err(bad(format!(
                    "field `{}` ({} x {}) at offset {} does not fit in {} bytes",
                    f.name, f.count, f.dtype, f.offset, self.size
                )));
            }
        }
        Ok(())
    }

    /// The encoded form stored in the channel (see `docs/protocol.md`).
    pub fn encode(&self) -> Vec<u8> {
        let h = SchemaHeader {
            type_name: name32(&self.type_name),
            size: self.size,
            align: self.align,
            field_count: self.fields.len() as u32,
            _pad: 0,
        };
        let mut out = bytemuck::bytes_of(&h).to_vec();
        for f in &self.fields {
            let e = FieldEntry {
                name: name32(&f.name),
                dtype: f.dtype.code(),
                count: f.count,
                offset: f.offset,
                _pad: 0,
            };
            out.extend_from_slice(bytemuck::bytes_of(&e));
        }
        out
    }

    /// Decodes and validates an encoded schema; `None` if it is malformed.
    pub fn decode(bytes: &[u8]) -> Option<Schema> {
        let hs = std::mem::size_of::<SchemaHeader>();
        let h: SchemaHeader = bytemuck::try_pod_read_unaligned(bytes.get(..hs)?).ok()?;
        let n = h.field_count as usize;
        if n > MAX_FIELDS || bytes.len() != hs + n * 48 {
            return None;
        }
        let mut fields = Vec::with_capacity(n);
        for i in 0..n {
            let e: FieldEntry =
                bytemuck::try_pod_read_unaligned(&bytes[hs + i * 48..hs + (i + 1) * 48]).ok()?;
            fields.push(Field {
                name: from_name32(&e.name)?,
                dtype: DType::from_code(e.dtype)?,
                count: e.count,
                offset: e.offset,
            });
        }
        let s = Schema {
            type_name: from_name32(&h.type_name)?,
            size: h.size,
            align: h.align,
            fields,
        };
        s.validate().ok()?;
        Some(s)
    }

    /// Decodes one field of a metadata value as `f64`s (convenient for display), or `None` if the
    /// value is too short.
    pub fn field_values(&self, field: &Field, value: &[u8]) -> Option<Vec<f64>> {
        let sz = field.dtype.size();
        (0..field.count as usize)
            .map(|k| {
                let at = field.offset as usize + k * sz;
                let b = value.get(at..at + sz)?;
                Some(match field.dtype {
                    DType::U8 => b[0] as f64,
                    DType::I8 => b[0] as i8 as f64,
                    DType::Bool => (b[0] != 0) as u8 as f64,
                    DType::U16 => u16::from_ne_bytes(b.try_into().ok()?) as f64,
                    DType::I16 => i16::from_ne_bytes(b.try_into().ok()?) as f64,
                    DType::U32 => u32::from_ne_bytes(b.try_into().ok()?) as f64,
                    DType::I32 => i32::from_ne_bytes(b.try_into().ok()?) as f64,
                    DType::U64 => u64::from_ne_bytes(b.try_into().ok()?) as f64,
                    DType::I64 => i64::from_ne_bytes(b.try_into().ok()?) as f64,
                    DType::F32 => f32::from_ne_bytes(b.try_into().ok()?) as f64,
                    DType::F64 => f64::from_ne_bytes(b.try_into().ok()?),
                })
            })
            .collect()
    }
}

impl std::fmt::Display for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {{", self.type_name)?;
        for (i, x) in self.fields.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            if x.count == 1 {
                write!(f, "{sep}{}: {} @{}", x.name, x.dtype, x.offset)?;
            } else {
                write!(
                    f,
                    "{sep}{}: [{}; {}] @{}",
                    x.name, x.dtype, x.count, x.offset
                )?;
            }
        }
        write!(f, " }} ({} bytes)", self.size)
    }
}

/// A `#[repr(C)]` plain-old-data type that can travel as frame metadata. Implement it with
/// [`crate::metadata!`], which also writes the schema.
pub trait Metadata: bytemuck::Pod {
    /// The type's schema.
    fn schema() -> Schema;
}

/// Declares a `#[repr(C)]` metadata struct and implements [`Metadata`] for it, schema included.
/// Field types are the [`Element`] types or fixed-size arrays of them.
///
/// ```
/// shmframe::metadata! {
///     /// Where the camera was.
///     pub struct Pose { pub x: f64, pub y: f64, pub frame_id: u32, pub flags: [u8; 4] }
/// }
/// use shmframe::Metadata;
/// let s = Pose::schema();
/// assert_eq!(s.size, 24);
/// assert_eq!(s.fields[2].offset, 16);
/// ```
#[macro_export]
macro_rules! metadata {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($fvis:vis $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, $crate::__bytemuck::Pod, $crate::__bytemuck::Zeroable)]
        #[bytemuck(crate = "shmframe::__bytemuck")]
        $vis struct $name { $($fvis $field: $ty),* }

        impl $crate::Metadata for $name {
            fn schema() -> $crate::Schema {
                $crate::Schema {
                    type_name: stringify!($name).to_string(),
                    size: ::core::mem::size_of::<$name>() as u32,
                    align: ::core::mem::align_of::<$name>() as u32,
                    fields: vec![$($crate::Field {
                        name: stringify!($field).to_string(),
                        dtype: <$ty as $crate::FieldType>::DTYPE,
                        count: <$ty as $crate::FieldType>::COUNT,
                        offset: ::core::mem::offset_of!($name, $field) as u32,
                    }),*],
                }
            }
        }
    };
}

/// A frame's shape kept inline (at most [`MAX_DIMS`] dimensions): no allocation per frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Dims {
    dims: [usize; MAX_DIMS],
    ndim: usize,
}

impl Dims {
    /// The first `shape.len().min(MAX_DIMS)` dimensions of `shape` (callers check the count
    /// with [`frame_len`] first).
    pub fn new(shape: impl IntoIterator<Item = usize>) -> Dims {
        let mut d = Dims::default();
        for (slot, v) in d.dims.iter_mut().zip(shape) {
            *slot = v;
            d.ndim += 1;
        }
        d
    }

    pub fn as_slice(&self) -> &[usize] {
        &self.dims[..self.ndim]
    }
}

/// Checks a frame's dtype/shape/length and returns its byte length.
pub(crate) fn frame_len(dtype: DType, shape: &[usize]) -> Result<usize, String> {
    if shape.len() > MAX_DIMS {
        return Err(format!(
            "{} dimensions; the limit is {MAX_DIMS}",
            shape.len()
        ));
    }
    shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} of {dtype} overflows"))
}

/// A frame received by copy ([`crate::Reader::next`]): the array's bytes, its description, and
/// its metadata, all verified against the slot's sequence stamp.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// The writer's frame index (0, 1, 2, … for one writer's stream).
    pub index: u64,
    /// The writer's CLOCK_MONOTONIC at publish, ns.
    pub timestamp_ns: u64,
    /// Frames published between the previous frame this reader received and this one.
    pub missed: u64,
    /// Element type.
    pub dtype: DType,
    /// Shape (C order).
    pub shape: Vec<usize>,
    /// The array's bytes, C-contiguous.
    pub data: Vec<u8>,
    /// The metadata bytes (empty if the frame has none).
    pub meta: Vec<u8>,
}

/// An empty frame with no buffers, to hand to [`crate::Reader::next_into`], which fills it and
/// reuses its buffers from then on.
impl Default for Frame {
    fn default() -> Self {
        Frame {
            index: 0,
            timestamp_ns: 0,
            missed: 0,
            dtype: DType::U8,
            shape: Vec::new(),
            data: Vec::new(),
            meta: Vec::new(),
        }
    }
}

impl Frame {
    /// The data as elements of `T`; `None` if `T` is not the frame's dtype.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        if T::DTYPE != self.dtype {
            return None;
        }
        bytemuck::try_cast_slice(&self.data).ok()
    }

    /// The metadata as `M`, checking the channel's schema against `M`'s.
    pub fn meta_as<M: Metadata>(&self, channel_schema: Option<&Schema>) -> Result<M, MetaError> {
        decode_meta(&self.meta, channel_schema)
    }
}

pub(crate) fn decode_meta<M: Metadata>(
    meta: &[u8],
    channel_schema: Option<&Schema>,
) -> Result<M, MetaError> {
    if meta.is_empty() {
        return Err(MetaError::Missing);
    }
    let want = M::schema();
    match channel_schema {
        Some(s) if *s == want => {}
        other => {
            return Err(MetaError::SchemaMismatch {
                expected: want.to_string(),
                found: other.map_or("none".to_string(), |s| s.to_string()),
            })
        }
    }
    bytemuck::try_pod_read_unaligned(meta).map_err(|_| MetaError::SchemaMismatch {
        expected: want.to_string(),
        found: format!("{} bytes", meta.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::metadata! {
        struct Md { shape: [i32; 3], pad: i32, size: i64, count: i64 }
    }

    #[test]
    fn dtypes() {
        for d in DType::ALL {
            assert_eq!(DType::from_code(d.code()), Some(d));
            assert_eq!(DType::parse(d.name()), Some(d));
        }
        assert_eq!(DType::parse("<f4"), Some(DType::F32));
        assert_eq!(DType::parse("|u1"), Some(DType::U8));
        assert_eq!(DType::parse("<u8"), Some(DType::U64));
        assert_eq!(DType::parse("u8"), Some(DType::U8));
        assert_eq!(DType::parse("complex64"), None);
        assert_eq!(DType::from_code(0), None);
    }

    #[test]
    fn schema_round_trip() {
        let s = Md::schema();
        assert_eq!(s.size, 32);
        assert_eq!(s.fields[2].offset, 16);
        assert_eq!(s.fields[0].count, 3);
        let enc = s.encode();
        assert_eq!(enc.len(), 48 + 4 * 48);
        assert_eq!(Schema::decode(&enc), Some(s.clone()));
        assert_eq!(Schema::decode(&enc[..enc.len() - 1]), None);
        let mut bad = enc.clone();
        bad[48 + 40] = 200; // field offset beyond size
        assert_eq!(Schema::decode(&bad), None);
        let v = Md {
            shape: [1, 2, 3],
            pad: 0,
            size: 6,
            count: 9,
        };
        let vals = s
            .field_values(&s.fields[0], bytemuck::bytes_of(&v))
            .unwrap();
        assert_eq!(vals, vec![1.0, 2.0, 3.0]);
        assert!(s.to_string().contains("shape: [int32; 3] @0"));
    }

    #[test]
    fn meta_decode_checks_schema() {
        let v = Md {
            shape: [1, 2, 3],
            pad: 0,
            size: 6,
            count: 9,
        };
        let s = Md::schema();
        assert_eq!(decode_meta::<Md>(bytemuck::bytes_of(&v), Some(&s)), Ok(v));
        assert_eq!(decode_meta::<Md>(&[], Some(&s)), Err(MetaError::Missing));
        assert!(matches!(
            decode_meta::<Md>(bytemuck::bytes_of(&v), None),
            Err(MetaError::SchemaMismatch { .. })
        ));
    }

    #[test]
    fn lengths() {
        assert_eq!(frame_len(DType::U8, &[480, 640, 3]), Ok(921600));
        assert_eq!(frame_len(DType::F64, &[]), Ok(8));
        assert_eq!(frame_len(DType::U8, &[0, 5]), Ok(0));
        assert!(frame_len(DType::U8, &[1; 9]).is_err());
        assert!(frame_len(DType::U64, &[usize::MAX, 2]).is_err());
    }
}
