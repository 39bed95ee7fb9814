//! The receiving side: the frames published on a key expression, recreated as a local channel.

use crate::wire::WireFrame;
use crate::{
    key_expr, open_session, zerr, BridgeError, BridgeStats, Reporter, ZenohOptions, STOP_POLL,
};
use shmframe::{Schema, Writer, WriterOptions};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use zenoh::sample::Sample;
use zenoh::Wait;

/// As [`zenoh_to_channel`](crate::zenoh_to_channel), stopping after `frames` frames if given;
/// returns the counters.
pub fn receive(
    key: &str,
    channel: &str,
    opts: &ZenohOptions,
    stop: &AtomicBool,
    frames: Option<u64>,
) -> Result<BridgeStats, BridgeError> {
    let label = match &opts.local_socket {
        Some(p) => format!("shmframe bridge zenoh:{key} -> socket:{}", p.display()),
        None => format!("shmframe bridge zenoh:{key} -> {channel}"),
    };
    shmframe::Name::new(channel).map_err(|source| BridgeError::ChannelName {
        label: label.clone(),
        source,
    })?;
    let ke = key_expr(key)?;
    let session = open_session(opts)?;
    let latest = Arc::new(Latest::default());
    let sink = latest.clone();
    let subscriber = session
        .declare_subscriber(ke)
        .callback(move |s| sink.put(s))
        .wait()
        .map_err(|e| BridgeError::Subscriber {
            key: key.to_string(),
            reason: zerr(e),
        })?;
    eprintln!("{label}: subscribed (Zenoh id {})", session.zid());

    let mut rx = Receiver::new(&label, channel, opts.local_socket.clone());
    let mut report = Reporter::new(label.clone());
    while !stop.load(Ordering::Relaxed) && frames.is_none_or(|n| rx.stats.frames < n) {
        rx.stats.dropped = latest.replaced.load(Ordering::Relaxed);
        report.tick(&rx.stats, false);
        if let Some(sample) = latest.take(STOP_POLL) {
            rx.receive(&sample)?;
        }
    }
    rx.stats.dropped = latest.replaced.load(Ordering::Relaxed);
    report.print(&rx.stats, false);
    let _ = subscriber.undeclare().wait();
    let _ = session.close().wait();
    rx.finish()
}

/// The state of the receiving loop between two samples.
struct Receiver<'a> {
    label: &'a str,
    channel: &'a str,
    /// Serve the local channel on this socket instead of naming it.
    socket: Option<std::path::PathBuf>,
    stats: BridgeStats,
    /// The local channel, created at the first frame (and again when the schema changes).
    writer: Option<Writer>,
    /// `(stream, index)` of the last frame received.
    last: Option<(u64, u64)>,
    log_rejects: RateLimit,
}

impl<'a> Receiver<'a> {
    fn new(label: &'a str, channel: &'a str, socket: Option<std::path::PathBuf>) -> Receiver<'a> {
        Receiver {
            label,
            channel,
            socket,
            stats: BridgeStats::default(),
            writer: None,
            last: None,
            log_rejects: RateLimit {
                lines: 0,
                last: None,
            },
        }
    }

    /// Decodes one sample and writes its frame to the local channel; a malformed message or a
    /// failed write is counted, not an error.
    fn receive(&mut self, sample: &Sample) -> Result<(), BridgeError> {
        let bytes = sample.payload().to_bytes();
        let (frame, schema) = match WireFrame::decode(&bytes) {
            Ok(f) => f,
            Err(e) => {
                self.stats.rejected += 1;
                if self.log_rejects.ready() {
                    eprintln!(
                        "{}: refused a message of {} bytes on `{}`: {e} ({} refused so far)",
                        self.label,
                        bytes.len(),
                        sample.key_expr(),
                        self.stats.rejected
                    );
                }
                return Ok(());
            }
        };
        self.follow_sequence(&frame);
        let w = self.local_writer(schema.as_ref(), frame.payload.len())?;
        match w.write_with_meta(frame.dtype, &frame.shape, frame.payload, frame.meta) {
            Ok(_) => {
                self.stats.frames += 1;
                self.stats.bytes += frame.payload.len() as u64;
            }
            Err(e) => {
                self.stats.errors += 1;
                eprintln!("{}: {e}", self.label);
            }
        }
        Ok(())
    }

    /// Counts frames missing from the sender's sequence; says when the sender restarted.
    fn follow_sequence(&mut self, frame: &WireFrame<'_>) {
        match self.last {
            Some((stream, index)) if stream == frame.stream && frame.index > index => {
                self.stats.lost += frame.index - index - 1;
            }
            Some((stream, _)) if stream != frame.stream => eprintln!(
                "{}: the sender restarted (a new stream, from frame index {})",
                self.label, frame.index
            ),
            Some(_) => eprintln!(
                "{}: the sender's writer restarted (frame indices start again at {})",
                self.label, frame.index
            ),
            None => {}
        }
        self.last = Some((frame.stream, frame.index));
    }

    /// The local channel for frames of metadata `schema`: created at the first frame (with room
    /// for `capacity` bytes), and created anew when the sender's schema changes.
    fn local_writer(
        &mut self,
        schema: Option<&Schema>,
        capacity: usize,
    ) -> Result<&mut Writer, BridgeError> {
        if self.writer.as_ref().is_some_and(|w| w.schema() != schema) {
            eprintln!(
                "{}: the metadata schema changed; recreating the local channel",
                self.label
            );
            if let Some(w) = self.writer.take() {
                let _ = w.close();
            }
        }
        if self.writer.is_none() {
            let mut wo = WriterOptions::new().capacity(capacity);
            if let Some(s) = schema {
                wo = wo.schema(s.clone());
            }
            if let Some(p) = &self.socket {
                wo = wo.socket(p);
            }
            let w = Writer::create(self.channel, wo).map_err(|source| BridgeError::Create {
                label: self.label.to_string(),
                channel: self.channel.to_string(),
                source: Box::new(source),
            })?;
            eprintln!("{}: created local channel `{}`", self.label, self.channel);
            self.writer = Some(w);
        }
        Ok(self.writer.as_mut().expect("created above"))
    }

    /// Closes (removes) the local channel; returns the counters.
    fn finish(self) -> Result<BridgeStats, BridgeError> {
        if let Some(w) = self.writer {
            w.close().map_err(|source| BridgeError::Close {
                label: self.label.to_string(),
                channel: self.channel.to_string(),
                source: Box::new(source),
            })?;
        }
        Ok(self.stats)
    }
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
