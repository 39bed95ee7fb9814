//! Bridges shmframe channels over Zenoh.
//!
//! Interface used by the CLI (`shmframe bridge --from NAME --to zenoh:KEY` and the reverse).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

/// Zenoh session options from the command line.
#[derive(Debug, Clone, Default)]
pub struct ZenohOptions {
    /// `--zenoh-connect` endpoints, e.g. `tcp/127.0.0.1:7447`.
    pub connect: Vec<String>,
    /// `--zenoh-listen` endpoints.
    pub listen: Vec<String>,
    /// `--zenoh-config FILE`.
    pub config: Option<PathBuf>,
}

/// Publishes every frame of local channel `channel` on key expression `key` until `stop`.
pub fn channel_to_zenoh(
    _channel: &str,
    _key: &str,
    _opts: &ZenohOptions,
    _stop: &AtomicBool,
) -> anyhow::Result<()> {
    anyhow::bail!("the Zenoh bridge is not built yet")
}

/// Recreates the frames published on `key` as local channel `channel` until `stop`.
pub fn zenoh_to_channel(
    _key: &str,
    _channel: &str,
    _opts: &ZenohOptions,
    _stop: &AtomicBool,
) -> anyhow::Result<()> {
    anyhow::bail!("the Zenoh bridge is not built yet")
}
