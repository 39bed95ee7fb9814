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
//! [`CongestionControl::Drop`], the receiving side keeps only the newest sample that arrived. What
//! was skipped is counted and reported on stderr ([`BridgeStats`]).
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
//! # Ok::<(), anyhow::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod wire;

use anyhow::{anyhow, bail, Context};
use shmframe::{ReadError, Reader, Schema, Writer, WriterOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use wire::WireFrame;
use zenoh::qos::CongestionControl;
use zenoh::sample::Sample;
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
pub fn zenoh_config(opts: &ZenohOptions) -> anyhow::Result<zenoh::Config> {
    let mut config = match &opts.config {
        Some(path) => zenoh::Config::from_file(path).map_err(|e| {
            anyhow!(
                "cannot use Zenoh configuration file {}: {} (see Zenoh's DEFAULT_CONFIG.json5 for the format)",
                path.display(),
                zerr(e)
            )
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
            let parsed: zenoh::config::EndPoint = e.parse().map_err(|err| {
                anyhow!(
                    "invalid {flag} endpoint `{e}`: {err}; give one such as tcp/192.168.1.10:7447"
                )
            })?;
            let proto = parsed.protocol();
            if proto.as_str() != "tcp" {
                bail!(
                    "{flag} endpoint `{e}` uses `{}`, but this bridge is built with the tcp transport only; use tcp/HOST:PORT",
                    proto.as_str()
                );
            }
        }
        let list: Vec<String> = endpoints.iter().map(|e| json_string(e)).collect();
        config
            .insert_json5(
                &format!("{what}/endpoints"),
                &format!("[{}]", list.join(",")),
            )
            .map_err(|err| anyhow!("cannot set {flag} endpoints {endpoints:?}: {}", zerr(err)))?;
    }
    Ok(config)
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

fn open_session(opts: &ZenohOptions) -> anyhow::Result<zenoh::Session> {
    let config = zenoh_config(opts)?;
    zenoh::open(config).wait().map_err(|e| {
        anyhow!(
            "cannot open a Zenoh session: {} (check the --zenoh-listen/--zenoh-connect endpoints: is the port free, is the address this host's?)",
            zerr(e)
        )
    })
}

fn key_expr(key: &str) -> anyhow::Result<zenoh::key_expr::KeyExpr<'static>> {
    zenoh::key_expr::KeyExpr::try_from(key.to_string()).map_err(|e| {
        anyhow!(
            "invalid Zenoh key expression `{key}`: {}; use slash-separated words such as lab/camera0",
            zerr(e)
        )
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
) -> anyhow::Result<()> {
    send(channel, key, opts, stop, None).map(|_| ())
}

/// Recreates the frames published on `key` as local channel `channel` until `stop`.
pub fn zenoh_to_channel(
    key: &str,
    channel: &str,
    opts: &ZenohOptions,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    receive(key, channel, opts, stop, None).map(|_| ())
}

/// As [`channel_to_zenoh`], stopping after `frames` frames if given; returns the counters.
pub fn send(
    channel: &str,
    key: &str,
    opts: &ZenohOptions,
    stop: &AtomicBool,
    frames: Option<u64>,
) -> anyhow::Result<BridgeStats> {
    let label = format!("shmframe bridge {channel} -> zenoh:{key}");
    let ke = key_expr(key)?;
    let session = open_session(opts)?;
    let publisher = session
        .declare_publisher(ke)
        .congestion_control(CongestionControl::Drop)
        .wait()
        .map_err(|e| anyhow!("cannot declare a Zenoh publisher on `{key}`: {}", zerr(e)))?;
    let stream = random_u64();
    let mut stats = BridgeStats::default();
    let mut report = Reporter::new(label.clone());

    let mut waiting = false;
    let mut reader = loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(stats);
        }
        match Reader::open_wait(channel, STOP_POLL) {
            Ok(r) => break r,
            Err(shmframe::OpenError::Timeout { .. }) => {
                if !waiting {
                    eprintln!("{label}: waiting for local channel `{channel}` to appear");
                    waiting = true;
                }
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("{label}: opening the local channel")),
        }
    };
    reader.set_latest_only(true);
    eprintln!("{label}: publishing (Zenoh id {})", session.zid());
    let mut writer_gone = false;
    let mut matched = true;
    while !stop.load(Ordering::Relaxed) && frames.is_none_or(|n| stats.frames < n) {
        report.tick(&stats, true);
        let view = match reader.next_view(Some(STOP_POLL)) {
            Ok(v) => v,
            Err(ReadError::Timeout { .. }) => continue,
            Err(ReadError::WriterGone { .. }) | Err(ReadError::Closed { .. }) => {
                if !writer_gone {
                    eprintln!("{label}: the local writer is gone; waiting for a new one");
                    writer_gone = true;
                }
                continue;
            }
            Err(e @ ReadError::CorruptFrame { .. }) => {
                stats.errors += 1;
                eprintln!("{label}: {e}");
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("{label}: reading the local channel")),
        };
        if writer_gone {
            eprintln!("{label}: a writer is back");
            writer_gone = false;
        }
        // Nobody subscribes (yet, or any more): don't copy and send frames into the void.
        let now_matched = publisher
            .matching_status()
            .wait()
            .map_or(true, |m| m.matching());
        if now_matched != matched {
            matched = now_matched;
            eprintln!(
                "{label}: {}",
                if matched {
                    "a subscriber is there; sending"
                } else {
                    "no subscriber on this key expression; waiting for one"
                }
            );
        }
        if !matched {
            continue;
        }
        let schema = reader.schema().map(Schema::encode).unwrap_or_default();
        let frame = WireFrame {
            stream,
            index: view.index,
            timestamp_ns: view.timestamp_ns,
            dtype: view.dtype,
            shape: view.shape.clone(),
            schema: &schema,
            meta: &view.meta,
            payload: view.data(),
        };
        let message = frame.encode();
        stats.skipped += view.missed;
        stats.bytes += view.data().len() as u64;
        // Unpin the slot before the network send: the writer can use it again.
        drop(view);
        if let Err(e) = publisher.put(message).wait() {
            stats.errors += 1;
            eprintln!("{label}: publishing failed: {}", zerr(e));
            continue;
        }
        stats.frames += 1;
    }
    report.print(&stats, true);
    let _ = publisher.undeclare().wait();
    let _ = session.close().wait();
    Ok(stats)
}

/// The newest sample that arrived and is not yet written: the subscriber's callback replaces it,
/// the bridge loop takes it (latest-wins, so a slow local side never queues without bound).
#[derive(Default)]
struct Latest {
    slot: Mutex<Option<Sample>>,
    ready: Condvar,
    replaced: AtomicU64,
}

impl Latest {
    fn put(&self, s: Sample) {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot.replace(s).is_some() {
            self.replaced.fetch_add(1, Ordering::Relaxed);
        }
        drop(slot);
        self.ready.notify_one();
    }

    fn take(&self, timeout: Duration) -> Option<Sample> {
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        let (mut slot, _) = self
            .ready
            .wait_timeout_while(slot, timeout, |s| s.is_none())
            .unwrap_or_else(|p| p.into_inner());
        slot.take()
    }
}

/// Limits log lines about rejected messages: the first few each, then one per second.
struct RateLimit {
    lines: u32,
    last: Option<Instant>,
}

impl RateLimit {
    const FREE: u32 = 10;

    fn ready(&mut self) -> bool {
        let now = Instant::now();
        self.lines += 1;
        if self.lines > Self::FREE && self.last.is_some_and(|t| now - t < Duration::from_secs(1)) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// As [`zenoh_to_channel`], stopping after `frames` frames if given; returns the counters.
pub fn receive(
    key: &str,
    channel: &str,
    opts: &ZenohOptions,
    stop: &AtomicBool,
    frames: Option<u64>,
) -> anyhow::Result<BridgeStats> {
    let label = format!("shmframe bridge zenoh:{key} -> {channel}");
    shmframe::Name::new(channel).map_err(|e| anyhow!("{label}: {e}"))?;
    let ke = key_expr(key)?;
    let session = open_session(opts)?;
    let latest = Arc::new(Latest::default());
    let sink = latest.clone();
    let subscriber = session
        .declare_subscriber(ke)
        .callback(move |s| sink.put(s))
        .wait()
        .map_err(|e| anyhow!("cannot declare a Zenoh subscriber on `{key}`: {}", zerr(e)))?;
    eprintln!("{label}: subscribed (Zenoh id {})", session.zid());

    let mut stats = BridgeStats::default();
    let mut report = Reporter::new(label.clone());
    let mut writer: Option<Writer> = None;
    let mut last: Option<(u64, u64)> = None; // (stream, index)
    let mut log_rejects = RateLimit {
        lines: 0,
        last: None,
    };
    while !stop.load(Ordering::Relaxed) && frames.is_none_or(|n| stats.frames < n) {
        stats.dropped = latest.replaced.load(Ordering::Relaxed);
        report.tick(&stats, false);
        let Some(sample) = latest.take(STOP_POLL) else {
            continue;
        };
        let bytes = sample.payload().to_bytes();
        let (frame, schema) = match WireFrame::decode(&bytes) {
            Ok(f) => f,
            Err(e) => {
                stats.rejected += 1;
                if log_rejects.ready() {
                    eprintln!(
                        "{label}: refused a message of {} bytes on `{}`: {e} ({} refused so far)",
                        bytes.len(),
                        sample.key_expr(),
                        stats.rejected
                    );
                }
                continue;
            }
        };
        match last {
            Some((stream, index)) if stream == frame.stream && frame.index > index => {
                stats.lost += frame.index - index - 1;
            }
            Some((stream, _)) if stream != frame.stream => eprintln!(
                "{label}: the sender restarted (a new stream, from frame index {})",
                frame.index
            ),
            Some(_) => eprintln!(
                "{label}: the sender's writer restarted (frame indices start again at {})",
                frame.index
            ),
            None => {}
        }
        last = Some((frame.stream, frame.index));

        if writer
            .as_ref()
            .is_some_and(|w| w.schema() != schema.as_ref())
        {
            eprintln!("{label}: the metadata schema changed; recreating the local channel");
            if let Some(w) = writer.take() {
                let _ = w.close();
            }
        }
        if writer.is_none() {
            let mut wo = WriterOptions::new().capacity(frame.payload.len());
            if let Some(s) = &schema {
                wo = wo.schema(s.clone());
            }
            let w = Writer::create(channel, wo).with_context(|| {
                format!("{label}: creating local channel `{channel}` for the frames from Zenoh")
            })?;
            eprintln!("{label}: created local channel `{channel}`");
            writer = Some(w);
        }
        let w = writer.as_mut().expect("created above");
        match w.write_with_meta(frame.dtype, &frame.shape, frame.payload, frame.meta) {
            Ok(_) => {
                stats.frames += 1;
                stats.bytes += frame.payload.len() as u64;
            }
            Err(e) => {
                stats.errors += 1;
                eprintln!("{label}: {e}");
            }
        }
    }
    stats.dropped = latest.replaced.load(Ordering::Relaxed);
    report.print(&stats, false);
    let _ = subscriber.undeclare().wait();
    let _ = session.close().wait();
    if let Some(w) = writer {
        w.close()
            .with_context(|| format!("{label}: closing local channel `{channel}`"))?;
    }
    Ok(stats)
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
