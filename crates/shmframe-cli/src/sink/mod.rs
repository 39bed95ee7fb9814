//! What `shmframe read` does with frames: show them in a window, keep statistics, save PNGs.

pub mod snapshot;
pub mod stats;
pub mod window;
