//! [`BridgeError`]: why a bridge could not start or had to stop.

use shmframe::{CreateError, NameError, OpenError, ReadError, WriteError};
use std::path::PathBuf;

/// Why a bridge could not start, or had to stop. Errors that do not stop a bridge (a corrupt
/// frame, a failed publication, a malformed message) are counted in
/// [`BridgeStats`](crate::BridgeStats) and reported on stderr instead.
///
/// Messages of Zenoh's own errors are kept as text (`reason`), without the source locations Zenoh
/// adds. Errors of the local channel are the [`source`](std::error::Error::source) of the variant
/// that says what the bridge was doing (boxed, to keep `BridgeError` small).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The `--zenoh-config` file cannot be read or parsed.
    #[error("cannot use Zenoh configuration file {}: {reason} (see Zenoh's DEFAULT_CONFIG.json5 for the format)", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// Zenoh's message.
        reason: String,
    },
    /// A `--zenoh-connect` / `--zenoh-listen` endpoint does not parse.
    #[error(
        "invalid {flag} endpoint `{endpoint}`: {reason}; give one such as tcp/192.168.1.10:7447"
    )]
    BadEndpoint {
        /// The option (`--zenoh-connect` or `--zenoh-listen`).
        flag: &'static str,
        /// The endpoint as given.
        endpoint: String,
        /// Zenoh's message.
        reason: String,
    },
    /// An endpoint names a transport this bridge is not built with.
    #[error("{flag} endpoint `{endpoint}` uses `{protocol}`, but this bridge is built with the tcp transport only; use tcp/HOST:PORT")]
    UnsupportedTransport {
        /// The option (`--zenoh-connect` or `--zenoh-listen`).
        flag: &'static str,
        /// The endpoint as given.
        endpoint: String,
        /// Its transport, e.g. `udp`.
        protocol: String,
    },
    /// Zenoh refused the endpoints in its configuration.
    #[error("cannot set {flag} endpoints {endpoints:?}: {reason}")]
    SetEndpoints {
        /// The option (`--zenoh-connect` or `--zenoh-listen`).
        flag: &'static str,
        /// The endpoints as given.
        endpoints: Vec<String>,
        /// Zenoh's message.
        reason: String,
    },
    /// The Zenoh session did not open (a port in use, an address not this host's, …).
    #[error("cannot open a Zenoh session: {reason} (check the --zenoh-listen/--zenoh-connect endpoints: is the port free, is the address this host's?)")]
    Session {
        /// Zenoh's message.
        reason: String,
    },
    /// The key expression is invalid.
    #[error("invalid Zenoh key expression `{key}`: {reason}; use slash-separated words such as lab/camera0")]
    KeyExpr {
        /// The key expression as given.
        key: String,
        /// Zenoh's message.
        reason: String,
    },
    /// Zenoh refused the publisher.
    #[error("cannot declare a Zenoh publisher on `{key}`: {reason}")]
    Publisher {
        /// The key expression.
        key: String,
        /// Zenoh's message.
        reason: String,
    },
    /// Zenoh refused the subscriber.
    #[error("cannot declare a Zenoh subscriber on `{key}`: {reason}")]
    Subscriber {
        /// The key expression.
        key: String,
        /// Zenoh's message.
        reason: String,
    },
    /// The local channel's name is invalid.
    #[error("{label}")]
    ChannelName {
        /// The bridge (`shmframe bridge FROM -> TO`).
        label: String,
        /// What is wrong with the name.
        #[source]
        source: NameError,
    },
    /// The local channel to send from could not be opened.
    #[error("{label}: opening the local channel")]
    Open {
        /// The bridge.
        label: String,
        /// Why.
        #[source]
        source: Box<OpenError>,
    },
    /// Reading the local channel failed for another reason than a missing writer or a corrupt
    /// frame (those are waited out or counted).
    #[error("{label}: reading the local channel")]
    Read {
        /// The bridge.
        label: String,
        /// Why.
        #[source]
        source: Box<ReadError>,
    },
    /// The local channel for the received frames could not be created.
    #[error("{label}: creating local channel `{channel}` for the frames from Zenoh")]
    Create {
        /// The bridge.
        label: String,
        /// The channel.
        channel: String,
        /// Why.
        #[source]
        source: Box<CreateError>,
    },
    /// Closing (removing) the local channel at the end failed.
    #[error("{label}: closing local channel `{channel}`")]
    Close {
        /// The bridge.
        label: String,
        /// The channel.
        channel: String,
        /// Why.
        #[source]
        source: Box<WriteError>,
    },
}
