//! `shmframe bench --paired N`: the spinning zero-copy reader of shmframe next to iceoryx2's
//! busy poll, in N short pairs of paced runs per payload.
//!
//! A full run measures each row in a few interleaved rounds. On a virtual machine whose speed
//! drifts within seconds that still leaves a row's p50 a few tenths of a microsecond apart
//! between runs, as much as the two transports differ at small payloads. Here each round runs
//! the benchmark's own peers for both transports back to back (which goes first alternates), and
//! the table gives the median of the rounds' p50 differences and how many rounds each won.

use crate::peer::{quantile, ReadMode, ReaderResult, Transport, WaitMode};
use crate::{memcpy, pace_us, run_peers, sleep_between_runs, spec, BenchArgs, Budget, PAYLOADS};
use anyhow::{bail, Context, Result};
use std::time::Duration;

const SHMFRAME: (Transport, ReadMode, WaitMode) =
    (Transport::Shmframe, ReadMode::View, WaitMode::Spin);
const ICEORYX2: (Transport, ReadMode, WaitMode) =
    (Transport::Iceoryx2, ReadMode::View, WaitMode::Spin);

/// One payload's rounds: each transport's p50 per round, ns.
struct Pairs {
    payload: &'static str,
    frames: u64,
    shmframe: Vec<u64>,
    iceoryx2: Vec<u64>,
}

impl Pairs {
    /// The table row: medians of each transport's p50s, the median of the rounds' differences,
    /// and the rounds shmframe won (a tie counts as won).
    fn row(&self) -> String {
        let us = |ns: f64| ns / 1e3;
        let diff: Vec<i64> = self
            .shmframe
            .iter()
            .zip(&self.iceoryx2)
            .map(|(&s, &i)| s as i64 - i as i64)
            .collect();
        let won = diff.iter().filter(|&&d| d <= 0).count();
        format!(
            "| {} | {} | {} | {:.2} | {:.2} | {:+.2} | {won} of {} |",
            self.payload,
            self.shmframe.len(),
            self.frames,
            us(median(&self.shmframe) as f64),
            us(median(&self.iceoryx2) as f64),
            us(median(&diff) as f64),
            diff.len(),
        )
    }
}

fn median<T: Ord + Copy + Default>(v: &[T]) -> T {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Runs `rounds` pairs per payload `args` asks for and prints the table as each payload ends.
pub(crate) fn run(args: &BenchArgs, rounds: u64, b: Budget) -> Result<()> {
    println!(
        "Spinning zero-copy readers, paced frames, {rounds} back-to-back pairs of runs per \
         payload (shmframe, then iceoryx2, the order alternating).\n"
    );
    println!("- Command: `{}`", args.command());
    println!("- Machine: {}", crate::report::machine());
    println!("- Date: {}\n", crate::report::utc_now());
    println!(
        "| payload | rounds | frames per run | shmframe p50 µs (median) | iceoryx2 p50 µs \
         (median) | shmframe − iceoryx2, median µs | rounds shmframe ≤ iceoryx2 |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|");
    for &(payload, bytes) in &PAYLOADS[..b.payloads] {
        if !args.wants_payload(payload) {
            continue;
        }
        eprintln!("bench --paired: {payload} …");
        // Paced as `shmframe bench` paces the payload: 3 cold copies apart, at least 1 ms.
        let copy = memcpy::measure(bytes, true, Duration::from_secs_f64(b.copy_secs));
        let period_us = pace_us(copy.lat_ns[0]);
        // A tenth of a full row's paced run.
        let frames = ((b.lat_secs / 10.0 * 1e6 / period_us as f64) as u64).clamp(20, 300);
        let mut pairs = Pairs {
            payload,
            frames,
            shmframe: Vec::new(),
            iceoryx2: Vec::new(),
        };
        for round in 0..rounds {
            let order = if round % 2 == 0 {
                [SHMFRAME, ICEORYX2]
            } else {
                [ICEORYX2, SHMFRAME]
            };
            for combo in order {
                let p50 = paced_p50(combo, bytes, period_us, frames, b).with_context(|| {
                    format!("{} {payload}, round {}", combo.0.label(), round + 1)
                })?;
                match combo.0 {
                    Transport::Shmframe => pairs.shmframe.push(p50),
                    _ => pairs.iceoryx2.push(p50),
                }
                sleep_between_runs();
            }
        }
        println!("{}", pairs.row());
    }
    Ok(())
}

/// One paced run of one writer and one reader; the reader's p50, ns.
fn paced_p50(
    combo: (Transport, ReadMode, WaitMode),
    bytes: usize,
    period_us: u64,
    frames: u64,
    b: Budget,
) -> Result<u64> {
    let mut s = spec(combo, bytes, b);
    s.period_us = period_us;
    s.frames = frames;
    s.seconds = 1e9;
    let (_, rs) = run_peers(&s)?;
    let ReaderResult { mut lat, torn, .. } = rs.into_iter().next().context("no reader result")?;
    if torn > 0 {
        bail!("{torn} torn frame(s): a frame mixed from two publishes");
    }
    if lat.is_empty() {
        bail!("the reader received no frame");
    }
    lat.sort_unstable();
    Ok(quantile(&lat, 0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_takes_medians_and_counts_ties_as_won() {
        let p = Pairs {
            payload: "64 B",
            frames: 300,
            shmframe: vec![1000, 1200, 900],
            iceoryx2: vec![1100, 1000, 900],
        };
        // Differences -100, +200, 0: median 0, two rounds won (one a tie).
        assert_eq!(p.row(), "| 64 B | 3 | 300 | 1.00 | 1.00 | +0.00 | 2 of 3 |");
    }
}
