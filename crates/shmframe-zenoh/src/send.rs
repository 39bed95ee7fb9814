//! The sending side: a local channel's frames, published on a key expression.

use crate::wire::WireFrame;
use crate::{
    key_expr, open_session, random_u64, zerr, BridgeError, BridgeStats, Reporter, ZenohOptions,
    STOP_POLL,
};
use shmframe::{FrameView, ReadError, Reader, Schema};
use std::sync::atomic::{AtomicBool, Ordering};
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;
use zenoh::Wait;

/// As [`channel_to_zenoh`](crate::channel_to_zenoh), stopping after `frames` frames if given;
/// returns the counters.
pub fn send(
    channel: &str,
    key: &str,
    opts: &ZenohOptions,
    stop: &AtomicBool,
    frames: Option<u64>,
) -> Result<BridgeStats, BridgeError> {
    let label = match &opts.local_socket {
        Some(p) => format!("shmframe bridge socket:{} -> zenoh:{key}", p.display()),
        None => format!("shmframe bridge {channel} -> zenoh:{key}"),
    };
    let ke = key_expr(key)?;
    let session = open_session(opts)?;
    let publisher = session
        .declare_publisher(ke)
        .congestion_control(CongestionControl::Drop)
        .wait()
        .map_err(|e| BridgeError::Publisher {
            key: key.to_string(),
            reason: zerr(e),
        })?;
    let mut stats = BridgeStats::default();
    let Some(mut reader) = wait_for_channel(channel, opts, &label, stop)? else {
        return Ok(stats);
    };
    reader.set_latest_only(true);
    eprintln!("{label}: publishing (Zenoh id {})", session.zid());
    let mut sender = Sender {
        label: &label,
        publisher: &publisher,
        stream: random_u64(),
        writer_gone: false,
        matched: true,
    };
    let mut report = Reporter::new(label.clone());
    while !stop.load(Ordering::Relaxed) && frames.is_none_or(|n| stats.frames < n) {
        report.tick(&stats, true);
        sender.send_next(&mut reader, &mut stats)?;
    }
    report.print(&stats, true);
    let _ = publisher.undeclare().wait();
    let _ = session.close().wait();
    Ok(stats)
}

/// Opens local channel `channel` (or connects to the socket of `opts.local_socket`), waiting
/// for it to appear (and saying so once) until `stop` (then `None`).
fn wait_for_channel(
    channel: &str,
    opts: &ZenohOptions,
    label: &str,
    stop: &AtomicBool,
) -> Result<Option<Reader>, BridgeError> {
    let mut waiting = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let opened = match &opts.local_socket {
            Some(path) => Reader::connect_wait(path, STOP_POLL),
            None => Reader::open_wait(channel, STOP_POLL),
        };
        match opened {
            Ok(r) => return Ok(Some(r)),
            Err(shmframe::OpenError::Timeout { .. })
            | Err(shmframe::OpenError::SocketTimeout { .. }) => {
                if !waiting {
                    eprintln!("{label}: waiting for the local channel to appear");
                    waiting = true;
                }
            }
            Err(source) => {
                return Err(BridgeError::Open {
                    label: label.to_string(),
                    source: Box::new(source),
                })
            }
        }
    }
}

/// The state of the sending loop between two frames.
struct Sender<'a> {
    label: &'a str,
    publisher: &'a Publisher<'static>,
    /// This bridge's stream id in every message (a restarted bridge gets a new one).
    stream: u64,
    /// The local writer is gone (said once; said again when one is back).
    writer_gone: bool,
    /// A subscriber matches the key expression (said when it changes).
    matched: bool,
}

impl Sender<'_> {
    /// Waits up to [`STOP_POLL`] for the next local frame and publishes it if anyone subscribes.
    fn send_next(
        &mut self,
        reader: &mut Reader,
        stats: &mut BridgeStats,
    ) -> Result<(), BridgeError> {
        let view = match reader.next_view(Some(STOP_POLL)) {
            Ok(v) => v,
            Err(e) => return self.read_failed(e, stats),
        };
        if self.writer_gone {
            eprintln!("{}: a writer is back", self.label);
            self.writer_gone = false;
        }
        // Nobody subscribes (yet, or any more): don't copy and send frames into the void.
        if !self.subscribed() {
            return Ok(());
        }
        let schema = reader.schema().map(Schema::encode).unwrap_or_default();
        let message = self.encode(&view, &schema);
        stats.skipped += view.missed;
        stats.bytes += view.data().len() as u64;
        // Unpin the slot before the network send: the writer can use it again.
        drop(view);
        match self.publisher.put(message).wait() {
            Ok(()) => stats.frames += 1,
            Err(e) => {
                stats.errors += 1;
                eprintln!("{}: publishing failed: {}", self.label, zerr(e));
            }
        }
        Ok(())
    }

    /// A frame that did not come: waited out (no frame yet, no writer), counted (a corrupt
    /// frame), or the end of the bridge.
    fn read_failed(&mut self, e: ReadError, stats: &mut BridgeStats) -> Result<(), BridgeError> {
        match e {
            ReadError::Timeout { .. } => {}
            ReadError::WriterGone { .. } | ReadError::Closed { .. } => {
                if !self.writer_gone {
                    eprintln!(
                        "{}: the local writer is gone; waiting for a new one",
                        self.label
                    );
                    self.writer_gone = true;
                }
            }
            e @ ReadError::CorruptFrame { .. } => {
                stats.errors += 1;
                eprintln!("{}: {e}", self.label);
            }
            source => {
                return Err(BridgeError::Read {
                    label: self.label.to_string(),
                    source: Box::new(source),
                })
            }
        }
        Ok(())
    }

    /// `true` if a subscriber matches the key expression (or Zenoh cannot tell); says so when
    /// that changes.
    fn subscribed(&mut self) -> bool {
        let now = self
            .publisher
            .matching_status()
            .wait()
            .map_or(true, |m| m.matching());
        if now != self.matched {
            self.matched = now;
            eprintln!(
                "{}: {}",
                self.label,
                if now {
                    "a subscriber is there; sending"
                } else {
                    "no subscriber on this key expression; waiting for one"
                }
            );
        }
        now
    }

    /// The wire message of frame `view` with the channel's encoded `schema`.
    fn encode(&self, view: &FrameView, schema: &[u8]) -> Vec<u8> {
        WireFrame {
            stream: self.stream,
            index: view.index,
            timestamp_ns: view.timestamp_ns,
            dtype: view.dtype,
            shape: view.shape().to_vec(),
            schema,
            meta: &view.meta,
            payload: view.data(),
        }
        .encode()
    }
}
