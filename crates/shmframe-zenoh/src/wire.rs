//! The wire encoding of one frame on a Zenoh key expression (documented byte by byte in
//! `docs/zenoh.md`).
//!
//! One Zenoh sample carries one frame: a fixed little-endian header, the shape, the encoded
//! metadata schema, the metadata bytes and the array's bytes, each variable part preceded by its
//! length. The array travels as raw bytes (C order); nothing is serialised per element.
//!
//! ```
//! use shmframe_zenoh::wire::WireFrame;
//! let f = WireFrame {
//!     stream: 7,
//!     index: 3,
//!     timestamp_ns: 42,
//!     dtype: shmframe::DType::U16,
//!     shape: vec![2, 2],
//!     schema: &[],
//!     meta: &[],
//!     payload: &[1, 0, 2, 0, 3, 0, 4, 0],
//! };
//! let bytes = f.encode();
//! let (back, schema) = WireFrame::decode(&bytes)?;
//! assert_eq!((back, schema), (f, None));
//! # Ok::<(), shmframe_zenoh::wire::WireError>(())
//! ```

use shmframe::layout::MAX_DIMS;
use shmframe::{DType, Schema};

/// The first four bytes of every message: `SFZF` ("shmframe Zenoh frame").
pub const MAGIC: [u8; 4] = *b"SFZF";
/// The wire version this crate writes and accepts.
pub const VERSION: u16 = 1;
/// Bytes before the shape: magic, version, flags, dtype, ndim, index, timestamp, stream.
pub const FIXED_HEADER: usize = 40;

/// One frame as it travels: borrowed parts of a message, or of a local frame being sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame<'a> {
    /// Identifies the sending bridge run (random, fixed while it runs): a receiver that sees it
    /// change knows the index sequence restarted.
    pub stream: u64,
    /// The source writer's frame index.
    pub index: u64,
    /// The source writer's CLOCK_MONOTONIC at publish, ns (meaningful on the sending host only).
    pub timestamp_ns: u64,
    /// Element type.
    pub dtype: DType,
    /// Shape, C order, at most [`MAX_DIMS`] dimensions.
    pub shape: Vec<usize>,
    /// The source channel's metadata schema as [`Schema::encode`] writes it; empty if none.
    pub schema: &'a [u8],
    /// Metadata bytes laid out as the schema says; empty if the frame has none.
    pub meta: &'a [u8],
    /// The array's bytes, C-contiguous.
    pub payload: &'a [u8],
}

/// A message that is not a valid frame. The receiving bridge logs it, counts it, and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than the header says.
    #[error("message of {len} bytes is too short: {needed} bytes needed for {what}")]
    TooShort {
        /// Message length.
        len: usize,
        /// Bytes needed.
        needed: usize,
        /// The part that did not fit.
        what: &'static str,
    },
    /// Not a shmframe frame at all.
    #[error("not a shmframe frame (magic {found:02x?}, expected {MAGIC:02x?} \"SFZF\"): is another program publishing on this key expression?")]
    BadMagic {
        /// The first bytes found.
        found: [u8; 4],
    },
    /// Another wire version.
    #[error("frame uses wire version {found}, this bridge speaks version {VERSION}: run the same shmframe version on both hosts")]
    Version {
        /// The version found.
        found: u16,
    },
    /// Flag bits this version does not define.
    #[error("frame sets unknown flags {found:#06x}: it comes from a newer shmframe; run the same version on both hosts")]
    Flags {
        /// The flags found.
        found: u16,
    },
    /// Unknown element type code.
    #[error("unknown dtype code {code}")]
    DType {
        /// The code found.
        code: u32,
    },
    /// More dimensions than a channel holds.
    #[error("{ndim} dimensions; the limit is {MAX_DIMS}")]
    TooManyDims {
        /// The count found.
        ndim: u32,
    },
    /// The encoded schema does not decode.
    #[error("the metadata schema ({len} bytes) is malformed")]
    Schema {
        /// Its length.
        len: usize,
    },
    /// The parts disagree with each other.
    #[error("inconsistent frame: {what}")]
    Inconsistent {
        /// What disagrees.
        what: String,
    },
}

/// Reads little-endian fields front to back, failing cleanly at the end of the message.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let short = || WireError::TooShort {
            len: self.bytes.len(),
            needed: self.at.saturating_add(n),
            what,
        };
        let end = self.at.checked_add(n).ok_or_else(short)?;
        let part = self.bytes.get(self.at..end).ok_or_else(short)?;
        self.at = end;
        Ok(part)
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(a))
    }
}

impl<'a> WireFrame<'a> {
    /// Length of the encoded message.
    pub fn encoded_len(&self) -> usize {
        FIXED_HEADER
            + 8 * self.shape.len()
            + 4
            + self.schema.len()
            + 4
            + self.meta.len()
            + 8
            + self.payload.len()
    }

    /// Encodes the frame as one message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.dtype.code().to_le_bytes());
        out.extend_from_slice(&(self.shape.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&self.timestamp_ns.to_le_bytes());
        out.extend_from_slice(&self.stream.to_le_bytes());
        for &d in &self.shape {
            out.extend_from_slice(&(d as u64).to_le_bytes());
        }
        out.extend_from_slice(&(self.schema.len() as u32).to_le_bytes());
        out.extend_from_slice(self.schema);
        out.extend_from_slice(&(self.meta.len() as u32).to_le_bytes());
        out.extend_from_slice(self.meta);
        out.extend_from_slice(&(self.payload.len() as u64).to_le_bytes());
        out.extend_from_slice(self.payload);
        debug_assert_eq!(out.len(), self.encoded_len());
        out
    }

    /// Decodes and checks a message: magic, version, flags, dtype, every length against the
    /// message and against each other (payload = shape × dtype size, metadata = schema size, no
    /// trailing bytes). Returns the frame and its decoded schema.
    pub fn decode(bytes: &'a [u8]) -> Result<(WireFrame<'a>, Option<Schema>), WireError> {
        let mut c = Cursor { bytes, at: 0 };
        let magic = c.take(4, "the magic")?;
        if magic != MAGIC {
            let mut found = [0u8; 4];
            found.copy_from_slice(magic);
            return Err(WireError::BadMagic { found });
        }
        let version = c.u16("the version")?;
        if version != VERSION {
            return Err(WireError::Version { found: version });
        }
        let flags = c.u16("the flags")?;
        if flags != 0 {
            return Err(WireError::Flags { found: flags });
        }
        let code = c.u32("the dtype")?;
        let dtype = DType::from_code(code).ok_or(WireError::DType { code })?;
        let ndim = c.u32("the dimension count")?;
        if ndim as usize > MAX_DIMS {
            return Err(WireError::TooManyDims { ndim });
        }
        let index = c.u64("the index")?;
        let timestamp_ns = c.u64("the timestamp")?;
        let stream = c.u64("the stream id")?;
        let mut shape = Vec::with_capacity(ndim as usize);
        for _ in 0..ndim {
            let d = c.u64("the shape")?;
            let d = usize::try_from(d).map_err(|_| WireError::Inconsistent {
                what: format!("dimension {d} does not fit in memory"),
            })?;
            shape.push(d);
        }
        let schema_len = c.u32("the schema length")? as usize;
        let schema_bytes = c.take(schema_len, "the schema")?;
        let meta_len = c.u32("the metadata length")? as usize;
        let meta = c.take(meta_len, "the metadata")?;
        let payload_len = c.u64("the payload length")?;
        let payload_len = usize::try_from(payload_len).map_err(|_| WireError::TooShort {
            len: bytes.len(),
            needed: usize::MAX,
            what: "the payload",
        })?;
        let payload = c.take(payload_len, "the payload")?;
        if c.at != bytes.len() {
            return Err(WireError::Inconsistent {
                what: format!("{} bytes after the payload", bytes.len() - c.at),
            });
        }
        let expected = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| WireError::Inconsistent {
                what: format!("shape {shape:?} of {dtype} overflows"),
            })?;
        if expected != payload.len() {
            return Err(WireError::Inconsistent {
                what: format!(
                    "{} payload bytes, but shape {shape:?} of {dtype} needs {expected}",
                    payload.len()
                ),
            });
        }
        let schema = if schema_bytes.is_empty() {
            None
        } else {
            Some(Schema::decode(schema_bytes).ok_or(WireError::Schema { len: schema_len })?)
        };
        let meta_size = schema.as_ref().map_or(0, |s| s.size as usize);
        if !meta.is_empty() && meta.len() != meta_size {
            return Err(WireError::Inconsistent {
                what: match &schema {
                    Some(s) => format!(
                        "{} metadata bytes, but schema `{}` is {} bytes",
                        meta.len(),
                        s.type_name,
                        s.size
                    ),
                    None => format!("{} metadata bytes without a schema", meta.len()),
                },
            });
        }
        let frame = WireFrame {
            stream,
            index,
            timestamp_ns,
            dtype,
            shape,
            schema: schema_bytes,
            meta,
            payload,
        };
        Ok((frame, schema))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    shmframe::metadata! {
        struct Pose { x: f64, id: u32, flags: [u8; 4] }
    }

    fn sample(schema: &[u8], meta: &[u8]) -> Vec<u8> {
        let payload: Vec<u8> = (0..24u8).collect();
        WireFrame {
            stream: 0x1122_3344_5566_7788,
            index: 9,
            timestamp_ns: 1_000_000,
            dtype: DType::F32,
            shape: vec![2, 3],
            schema,
            meta,
            payload: &payload,
        }
        .encode()
    }

    #[test]
    fn round_trip_with_schema_and_metadata() {
        use shmframe::Metadata;
        let schema = Pose::schema().encode();
        let meta = [5u8; 16];
        let bytes = sample(&schema, &meta);
        let (f, s) = WireFrame::decode(&bytes).unwrap();
        assert_eq!(s, Some(Pose::schema()));
        assert_eq!(
            (f.index, f.timestamp_ns, f.stream),
            (9, 1_000_000, 0x1122_3344_5566_7788)
        );
        assert_eq!(
            (f.dtype, f.shape.as_slice()),
            (DType::F32, &[2usize, 3][..])
        );
        assert_eq!((f.meta, f.schema), (&meta[..], &schema[..]));
        assert_eq!(f.payload, &(0..24u8).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn header_layout_is_little_endian_at_fixed_offsets() {
        let bytes = sample(&[], &[]);
        assert_eq!(&bytes[0..4], b"SFZF");
        assert_eq!(&bytes[4..6], &[1, 0]);
        assert_eq!(&bytes[6..8], &[0, 0]);
        assert_eq!(&bytes[8..12], &DType::F32.code().to_le_bytes());
        assert_eq!(&bytes[12..16], &[2, 0, 0, 0]);
        assert_eq!(&bytes[16..24], &9u64.to_le_bytes());
        assert_eq!(&bytes[24..32], &1_000_000u64.to_le_bytes());
        assert_eq!(&bytes[32..40], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&bytes[40..48], &2u64.to_le_bytes());
        assert_eq!(&bytes[48..56], &3u64.to_le_bytes());
        assert_eq!(&bytes[56..60], &[0; 4]); // schema length
        assert_eq!(&bytes[60..64], &[0; 4]); // metadata length
        assert_eq!(&bytes[64..72], &24u64.to_le_bytes());
        assert_eq!(bytes.len(), 72 + 24);
    }

    #[test]
    fn rejects_bad_magic_version_flags_and_dtype() {
        let good = sample(&[], &[]);
        let mut b = good.clone();
        b[0] = b'X';
        assert!(matches!(
            WireFrame::decode(&b),
            Err(WireError::BadMagic { .. })
        ));
        let mut b = good.clone();
        b[4] = 2;
        assert_eq!(WireFrame::decode(&b), Err(WireError::Version { found: 2 }));
        let mut b = good.clone();
        b[6] = 1;
        assert_eq!(WireFrame::decode(&b), Err(WireError::Flags { found: 1 }));
        let mut b = good.clone();
        b[8] = 99;
        assert_eq!(WireFrame::decode(&b), Err(WireError::DType { code: 99 }));
        let mut b = good;
        b[12] = 9;
        assert_eq!(
            WireFrame::decode(&b),
            Err(WireError::TooManyDims { ndim: 9 })
        );
    }

    #[test]
    fn rejects_inconsistent_lengths() {
        let good = sample(&[], &[]);
        // Every truncation fails cleanly.
        for n in 0..good.len() {
            assert!(
                WireFrame::decode(&good[..n]).is_err(),
                "prefix of {n} bytes"
            );
        }
        let mut b = good.clone();
        b.push(0);
        assert!(matches!(
            WireFrame::decode(&b),
            Err(WireError::Inconsistent { .. })
        ));
        // A shape that disagrees with the payload length.
        let mut b = good.clone();
        b[48] = 4;
        assert!(matches!(
            WireFrame::decode(&b),
            Err(WireError::Inconsistent { .. })
        ));
        // A huge payload length.
        let mut b = good.clone();
        b[64..72].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            WireFrame::decode(&b),
            Err(WireError::TooShort { .. })
        ));
        // Metadata without a schema.
        let b = sample(&[], &[1, 2, 3]);
        assert!(matches!(
            WireFrame::decode(&b),
            Err(WireError::Inconsistent { .. })
        ));
        // A malformed schema.
        let b = sample(&[0; 10], &[]);
        assert_eq!(WireFrame::decode(&b), Err(WireError::Schema { len: 10 }));
    }

    #[test]
    fn never_panics_on_corrupted_messages() {
        use shmframe::Metadata;
        let good = sample(&Pose::schema().encode(), &[0; 16]);
        // Deterministic pseudo-random corruption of every byte position.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = good.clone();
            let at = (x as usize) % b.len();
            b[at] = (x >> 32) as u8;
            let _ = WireFrame::decode(&b);
        }
    }
}
