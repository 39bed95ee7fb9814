//! Bridges shmframe channels over Zenoh, for when the processes no longer share one machine.
//!
//! [`channel_to_zenoh`] reads a local channel and publishes each frame (array bytes, dtype, shape,
//! metadata and its schema, index, timestamp) as one Zenoh sample on a key expression;
//! [`zenoh_to_channel`] subscribes to that key expression on another host and recreates the frames
//! as a local channel of the same metadata schema, so local readers (Rust, Python, the CLI) do not
//! change. The message format is in [`wire`] and `docs/zenoh.md`.
//!
//! Both directions are latest-wins, like a local reader that keeps up with a display: the sending
//! side reads with [`shmframe::Reader::set_latest_only`] and publishes with
//! [`CongestionControl::Drop`](zenoh::qos::CongestionControl::Drop), the receiving side keeps
//! only the newest sample that arrived. What was skipped is counted and reported on stderr
//! ([`BridgeStats`]).
//!
//! Sessions are Zenoh peers by default (no router needed; peers on one network find each other by
//! multicast scouting), with `connect`/`listen` endpoints and a Zenoh configuration file honoured
//! ([`ZenohOptions`]). A peer that restarts is reconnected by Zenoh; the flow resumes.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use shmframe_zenoh::{channel_to_zenoh, ZenohOptions};
//! let opts = ZenohOptions { listen: vec!["tcp/0.0.0.0:7447".into()], ..Default::default() };
//! let stop = AtomicBool::new(false); // set from a Ctrl-C handler
//! channel_to_zenoh("camera0", "lab/camera0", &opts, &stop)?;
//! # Ok::<(), shmframe_zenoh::BridgeError>(())
//! ```
//!
//! Errors that stop a bridge are [`BridgeError`]s; the sending side is in `send.rs`, the
//! receiving side in `receive.rs`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod receive;
mod send;
pub mod wire;

pub use error::BridgeError;
pub use receive::receive;
pub use send::send;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use zenoh::Wait;

/// The Zenoh crate this bridge is built with (for programs that talk to the bridge directly).
pub use zenoh;

/// How often the bridge looks at its `stop` flag at least.
pub const STOP_POLL: Duration = Duration::from_millis(100);

/// How often counters are printed on stderr while they change (and once at exit).
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Zenoh session options from the command line.
#[derive(Debug, Clone, Default)]
pub struct ZenohOptions {
    /// `--zenoh-connect` endpoints, e.g. `tcp/127.0.0.1:7447`.
    pub connect: Vec<String>,
    /// `--zenoh-listen` endpoints.
    pub listen: Vec<String>,
    /// `--zenoh-config FILE`.
    pub config: Option<PathBuf>,
    /// The local channel is served on this Unix socket (`socket:PATH`) instead of named in
    /// /dev/shm: the sending side connects to it, the receiving side serves on it.
    pub local_socket: Option<PathBuf>,
}

/// What a bridge did; printed on stderr periodically and at exit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Frames published to Zenoh (sending side) or written to the local channel (receiving side).
    pub frames: u64,
    /// Array bytes in those frames.
    pub bytes: u64,
    /// Sending side: frames the local writer published that the bridge skipped because it (or the
    /// network behind it) was slower: latest-wins.
    pub skipped: u64,
    /// Receiving side: frames that arrived but were replaced by a newer one before they could be
    /// written locally.
    pub dropped: u64,
    /// Receiving side: frames missing from the sender's index sequence (skipped by the sender,
    /// or dropped by Zenoh under congestion).
    pub lost: u64,
    /// Receiving side: messages refused as malformed (bad magic, another wire version,
    /// inconsistent lengths).
    pub rejected: u64,
    /// Local errors that did not stop the bridge (a corrupt frame, a failed write).
    pub errors: u64,
}

/// Builds the Zenoh configuration: the file if given (else Zenoh's defaults: peer mode, multicast
/// scouting), then the `connect` and `listen` endpoints on top.
pub fn zenoh_config(opts: &ZenohOptions) -> Result<zenoh::Config, BridgeError> {
    let mut config = match &opts.config {
        Some(path) => zenoh::Config::from_file(path).map_err(|e| BridgeError::ConfigFile {
            path: path.clone(),
            reason: zerr(e),
        })?,
        None => zenoh::Config::default(),
    };
    for (what, flag, endpoints) in [
        ("connect", "--zenoh-connect", &opts.connect),
        ("listen", "--zenoh-listen", &opts.listen),
    ] {
        if endpoints.is_empty() {
            continue;
        }
        for e in endpoints {
            check_endpoint(flag, e)?;
        }
        let list: Vec<String> = endpoints.iter().map(|e| json_string(e)).collect();
        config
            .insert_json5(
                &format!("{what}/endpoints"),
                &format!("[{}]", list.join(",")),
            )
            .map_err(|err| BridgeError::SetEndpoints {
                flag,
                endpoints: endpoints.clone(),
                reason: zerr(err),
            })?;
    }
    Ok(config)
}

/// Checks that endpoint `e` (of option `flag`) parses and uses the one transport built in.
fn check_endpoint(flag: &'static str, e: &str) -> Result<(), BridgeError> {
    let parsed: zenoh::config::EndPoint = e.parse().map_err(|err| BridgeError::BadEndpoint {
        flag,
        endpoint: e.to_string(),
        reason: format!("{err}"),
    })?;
    let proto = parsed.protocol();
    if proto.as_str() != "tcp" {
        return Err(BridgeError::UnsupportedTransport {
            flag,
            endpoint: e.to_string(),
            protocol: proto.as_str().to_string(),
        });
    }
    Ok(())
}

/// A Zenoh error as text, without the source locations Zenoh inserts (` at /path/file.rs:123.`).
fn zerr(e: impl std::fmt::Display) -> String {
    let mut s = e.to_string();
    let mut from = 0;
    while let Some(i) = s[from..].find(" at /").map(|i| i + from) {
        let rest = &s[i + 4..];
        let word = rest
            .find(|c: char| c.is_whitespace() || c == ']')
            .unwrap_or(rest.len());
        let location = rest[..word].trim_end_matches('.');
        let is_source = location
            .rsplit_once(".rs:")
            .is_some_and(|(_, line)| !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()));
        if is_source {
            s.replace_range(i..i + 4 + word, "");
        } else {
            from = i + 4;
        }
    }
    s
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn open_session(opts: &ZenohOptions) -> Result<zenoh::Session, BridgeError> {
    let config = zenoh_config(opts)?;
    zenoh::open(config)
        .wait()
        .map_err(|e| BridgeError::Session { reason: zerr(e) })
}

fn key_expr(key: &str) -> Result<zenoh::key_expr::KeyExpr<'static>, BridgeError> {
    zenoh::key_expr::KeyExpr::try_from(key.to_string()).map_err(|e| BridgeError::KeyExpr {
        key: key.to_string(),
        reason: zerr(e),
    })
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(shmframe::monotonic_ns());
    h.write_u32(std::process::id());
    h.finish()
}

/// Prints counters on stderr every [`REPORT_EVERY`] while they change, and at the end.
struct Reporter {
    label: String,
    last: Instant,
    printed: BridgeStats,
}

impl Reporter {
    fn new(label: String) -> Reporter {
        Reporter {
            label,
            last: Instant::now(),
            printed: BridgeStats::default(),
        }
    }

    fn tick(&mut self, s: &BridgeStats, sending: bool) {
        if self.last.elapsed() >= REPORT_EVERY && *s != self.printed {
            self.print(s, sending);
        }
    }

    fn print(&mut self, s: &BridgeStats, sending: bool) {
        self.last = Instant::now();
        self.printed = s.clone();
        let mb = s.bytes as f64 / 1e6;
        if sending {
            eprintln!(
                "{}: {} frames sent ({mb:.1} MB), {} skipped (the network was slower than the writer), {} errors",
                self.label, s.frames, s.skipped, s.errors
            );
        } else {
            eprintln!(
                "{}: {} frames written ({mb:.1} MB), {} dropped (a newer one arrived first), {} lost (missing from the sender's sequence), {} rejected (malformed), {} errors",
                self.label, s.frames, s.dropped, s.lost, s.rejected, s.errors
            );
        }
    }
}

/// Publishes every frame of local channel `channel` on key expression `key` until `stop`.
pub fn channel_to_zenoh(
    channel: &str,
    key: &str,
    opts: &ZenohOptions,
    stop: &AtomicBool,
) -> Result<(), BridgeError> {
    send(channel, key, opts, stop, None).map(|_| ())
}

/// Recreates the frames published on `key` as local channel `channel` until `stop`.
pub fn zenoh_to_channel(
    key: &str,
    channel: &str,
    opts: &ZenohOptions,
    stop: &AtomicBool,
) -> Result<(), BridgeError> {
    receive(key, channel, opts, stop, None).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_with_a_clear_error() {
        let bad = ZenohOptions {
            connect: vec!["nonsense".into()],
            ..Default::default()
        };
        let e = zenoh_config(&bad).unwrap_err().to_string();
        assert!(e.contains("--zenoh-connect endpoint `nonsense`"), "{e}");
        let udp = ZenohOptions {
            listen: vec!["udp/127.0.0.1:7447".into()],
            ..Default::default()
        };
        let e = zenoh_config(&udp).unwrap_err().to_string();
        assert!(e.contains("tcp transport only"), "{e}");
    }

    #[test]
    fn endpoints_and_config_file_are_applied() {
        let dir = std::env::temp_dir().join(format!("sfz-config-{}.json5", std::process::id()));
        std::fs::write(&dir, "{ scouting: { multicast: { enabled: false } } }").unwrap();
        let opts = ZenohOptions {
            connect: vec!["tcp/127.0.0.1:7447".into()],
            listen: vec!["tcp/127.0.0.1:7448".into()],
            config: Some(dir.clone()),
            local_socket: None,
        };
        let c = zenoh_config(&opts);
        std::fs::remove_file(&dir).unwrap();
        let c = c.unwrap();
        assert!(c
            .get_json("connect/endpoints")
            .unwrap()
            .contains("127.0.0.1:7447"));
        assert!(c
            .get_json("listen/endpoints")
            .unwrap()
            .contains("127.0.0.1:7448"));
        assert_eq!(c.get_json("scouting/multicast/enabled").unwrap(), "false");
    }

    #[test]
    fn a_missing_config_file_is_named() {
        let opts = ZenohOptions {
            config: Some("/nonexistent/zenoh.json5".into()),
            ..Default::default()
        };
        let e = zenoh_config(&opts).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/zenoh.json5"), "{e}");
    }

    #[test]
    fn zenoh_errors_lose_their_source_location() {
        assert_eq!(
            zerr("bad endpoint: x at /a/b/endpoint.rs:615."),
            "bad endpoint: x"
        );
        assert_eq!(
            zerr("listener: [in use (os error 98) at /r/z/tcp.rs:61.] (more)"),
            "listener: [in use (os error 98)] (more)"
        );
        assert_eq!(zerr("no location here"), "no location here");
        assert_eq!(zerr("look at /tmp/file please"), "look at /tmp/file please");
    }

    #[test]
    fn bad_key_expressions_are_refused() {
        assert!(key_expr("lab/camera0").is_ok());
        let e = key_expr("lab//x").unwrap_err().to_string();
        assert!(e.contains("invalid Zenoh key expression"), "{e}");
    }
}
