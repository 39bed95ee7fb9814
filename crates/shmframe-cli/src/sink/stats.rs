//! Rate, latency and loss of received frames, and the status line and JSON summary that report
//! them.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Statistics of one reading run.
#[derive(Debug)]
pub struct Stats {
    /// Frames received.
    pub frames: u64,
    /// Frames the writer published that this reader skipped (latest-wins or overrun).
    pub missed: u64,
    /// Frames whose bytes did not match the writer's checksum.
    pub torn: u64,
    /// Shape of the newest frame.
    pub shape: Vec<usize>,
    /// Dtype name of the newest frame.
    pub dtype: String,
    /// Writer's index of the first and the newest frame received.
    pub indices: Option<(u64, u64)>,
    latencies_us: Vec<u64>,
    first: Option<Instant>,
    last: Option<Instant>,
    window_start: Instant,
    window_frames: u64,
    window_latencies: Vec<u64>,
    last_status: Instant,
    tty: bool,
    status_shown: bool,
}

/// Interval between status updates.
const STATUS_EVERY: Duration = Duration::from_millis(500);

impl Stats {
    /// Empty statistics.
    pub fn new() -> Stats {
        let now = Instant::now();
        Stats {
            frames: 0,
            missed: 0,
            torn: 0,
            shape: Vec::new(),
            dtype: String::new(),
            indices: None,
            latencies_us: Vec::new(),
            first: None,
            last: None,
            window_start: now,
            window_frames: 0,
            window_latencies: Vec::new(),
            last_status: now,
            tty: std::io::stderr().is_terminal(),
            status_shown: false,
        }
    }

    /// Records a frame received now, `latency_us` after it was published (if known).
    pub fn record(
        &mut self,
        index: u64,
        missed: u64,
        latency_us: Option<u64>,
        shape: &[usize],
        dtype: &str,
    ) {
        let now = Instant::now();
        self.indices = Some((self.indices.map_or(index, |(first, _)| first), index));
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.frames += 1;
        self.missed += missed;
        self.window_frames += 1;
        if let Some(l) = latency_us {
            self.latencies_us.push(l);
            self.window_latencies.push(l);
        }
        if self.shape != shape {
            self.shape = shape.to_vec();
        }
        if self.dtype != dtype {
            self.dtype = dtype.to_string();
        }
    }

    /// Frames per second from the first frame to the last.
    pub fn fps(&self) -> f64 {
        match (self.first, self.last) {
            (Some(a), Some(b)) if self.frames > 1 && b > a => {
                (self.frames - 1) as f64 / (b - a).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Latency percentile `p` (0–100) over the whole run, µs.
    pub fn latency_us(&self, p: f64) -> Option<u64> {
        percentile(&self.latencies_us, p)
    }

    /// Rate and latency over the last status interval, for a window title. `None` until an
    /// interval has passed.
    pub fn window_rates(&mut self) -> Option<(f64, Option<u64>, Option<u64>)> {
        let dt = self.window_start.elapsed();
        if dt < STATUS_EVERY {
            return None;
        }
        let r = (
            self.window_frames as f64 / dt.as_secs_f64(),
            percentile(&self.window_latencies, 50.0),
            percentile(&self.window_latencies, 99.0),
        );
        self.window_start = Instant::now();
        self.window_frames = 0;
        self.window_latencies.clear();
        Some(r)
    }

    /// Shows the status on stderr: rewritten in place on a terminal, a plain line every few
    /// seconds otherwise.
    pub fn status(&mut self, name: &str) {
        let every = if self.tty {
            STATUS_EVERY
        } else {
            Duration::from_secs(2)
        };
        if self.last_status.elapsed() < every {
            return;
        }
        self.last_status = Instant::now();
        let Some((fps, p50, p99)) = self.window_rates() else {
            return;
        };
        let us = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let line = format!(
            "{name}: {} frames, {fps:6.1} fps, latency p50 {} µs p99 {} µs, missed {}, shape {:?} {}",
            self.frames,
            us(p50),
            us(p99),
            self.missed,
            self.shape,
            self.dtype
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            self.status_shown = true;
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Ends the in-place status line.
    pub fn finish_status(&mut self) {
        if self.status_shown {
            eprintln!();
            self.status_shown = false;
        }
    }

    /// The summary object `--json` prints.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "frames": self.frames,
            "fps": (self.fps() * 100.0).round() / 100.0,
            "latency_us_p50": self.latency_us(50.0),
            "latency_us_p99": self.latency_us(99.0),
            "missed": self.missed,
            "torn": self.torn,
            "shape": self.shape,
            "dtype": self.dtype,
            "first_index": self.indices.map(|i| i.0),
            "last_index": self.indices.map(|i| i.1),
        })
    }

    /// A one-line human summary.
    pub fn summary(&self) -> String {
        let us = |v: Option<u64>| v.map_or("n/a".to_string(), |v| format!("{v} µs"));
        format!(
            "{} frames, {:.1} fps, latency p50 {} p99 {}, missed {}, torn {}",
            self.frames,
            self.fps(),
            us(self.latency_us(50.0)),
            us(self.latency_us(99.0)),
            self.missed,
            self.torn
        )
    }
}

/// The `p`th percentile (nearest rank) of `v`.
fn percentile(v: &[u64], p: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    Some(s[rank.clamp(1, s.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn json_has_the_agreed_keys() {
        let mut s = Stats::new();
        s.record(0, 0, Some(10), &[2, 3], "uint8");
        s.record(3, 2, Some(30), &[2, 3], "uint8");
        let j = s.json();
        for k in [
            "frames",
            "fps",
            "latency_us_p50",
            "latency_us_p99",
            "missed",
            "shape",
            "dtype",
        ] {
            assert!(j.get(k).is_some(), "{k} missing in {j}");
        }
        assert_eq!(j["frames"], 2);
        assert_eq!(j["missed"], 2);
        assert_eq!(j["latency_us_p99"], 30);
        assert_eq!(
            (j["first_index"].clone(), j["last_index"].clone()),
            (0.into(), 3.into())
        );
        assert_eq!(j["shape"], serde_json::json!([2, 3]));
    }
}
