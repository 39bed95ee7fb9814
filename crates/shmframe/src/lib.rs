//! # shmframe
//!
//! Named shared-memory channels that carry N-dimensional arrays (camera frames above all) and
//! typed metadata between *unrelated* processes on one machine.
//!
//! A [`Writer`] creates a channel by name; [`Reader`]s in processes started independently open it
//! by name. One POSIX shared-memory object (`/dev/shm/shmframe.NAME`) holds the header, metadata
//! schema and a ring of slots; a second, the pin table, holds what readers write (their pins, and
//! the futex word sleepers wait on).
//!
//! - Publishing never waits for readers; each slot is a seqlock, so a reader never keeps a torn
//!   frame: copies are verified, zero-copy views pin their slot.
//! - Readers sleep on a shared futex (no polling), learn how many frames they missed, notice
//!   a dead writer within a second (the kernel drops the writer's `flock`), and follow the channel
//!   when it grows for a larger frame or a new writer takes the name over.
//! - The layout is versioned and documented byte by byte in `docs/protocol.md`.
//!
//! ```
//! use std::time::Duration;
//! # let name = format!("doc-lib-{}", std::process::id());
//! let mut w = shmframe::Writer::create(&name, shmframe::WriterOptions::new())?;
//! let mut r = shmframe::Reader::open(&name)?;
//! w.write(shmframe::DType::U8, &[2, 2, 3], &[9; 12])?;
//! let f = r.next(Some(Duration::from_secs(1)))?;
//! assert_eq!((f.shape.as_slice(), f.data[0]), (&[2, 2, 3][..], 9));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "tokio")]
mod aio;
pub mod channels;
mod clock;
pub mod error;
mod fork;
mod frame;
mod guard;
mod mapped;
// The layout and the lock-free core are public for the benchmarks, the fuzz targets and other
// implementations of the protocol to check themselves against; they are not part of the API's
// semver promise (docs/protocol.md is the contract).
#[doc(hidden)]
pub mod layout;
mod name;
mod pins;
mod reader;
mod readiness;
#[doc(hidden)]
pub mod ring;
mod sched;
pub mod seed;
mod segment;
mod socket;
mod uring;
mod wake;
mod writer;

#[cfg(feature = "tokio")]
pub use aio::Frames;
pub use clock::monotonic_ns;
pub use error::{
    CreateError, MetaError, NameError, OpenError, ReadError, RemoveError, SchedError, SchemaError,
    WriteError,
};
pub use frame::{DType, Element, Field, FieldType, Frame, Metadata, Schema};
pub use name::{Name, MAX_NAME_LEN, OBJECT_PREFIX, PINS_PREFIX, SHM_DIR};
pub use reader::{FrameView, Reader, LIVENESS_INTERVAL};
pub use sched::{prefer_low_latency, LOW_LATENCY_SLICE};
pub use socket::RefusedPeer;
pub use writer::{Loan, RawLoan, Writer, WriterOptions, DEFAULT_SLOTS};

#[doc(hidden)]
pub use bytemuck as __bytemuck;

// Lets `metadata!` name this crate as `shmframe` from inside it too (its tests use the macro).
extern crate self as shmframe;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
