//! The physical bound: `memcpy` of the payload in this process, warm and cold.

use crate::peer::quantile;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// One memcpy measurement.
#[derive(Clone, Debug)]
pub struct CopyResult {
    /// Per-copy time, ns: p50, p99, p99.9.
    pub lat_ns: [u64; 3],
    /// Copies per second at full rate (best of ten stretches).
    pub per_s: f64,
}

fn llc_bytes() -> usize {
    let size = (0..8)
        .filter_map(|i| {
            let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
            let level = std::fs::read_to_string(format!("{dir}/level")).ok()?;
            let size = std::fs::read_to_string(format!("{dir}/size")).ok()?;
            let size = size.trim();
            let n: usize = size.trim_end_matches(['K', 'M']).parse().ok()?;
            let n = match size.chars().last() {
                Some('K') => n << 10,
                Some('M') => n << 20,
                _ => n,
            };
            Some((level.trim().parse::<u32>().ok()?, n))
        })
        .max();
    size.map_or(32 << 20, |(_, n)| n)
}

/// Copies `bytes` repeatedly, timing each copy for about `time`, then at full rate for as long (the best tenth counts). Warm: one source and one destination (cache-hot
/// when they fit). Cold: buffers rotated so that together they are 4× the last-level cache.
pub fn measure(bytes: usize, cold: bool, time: Duration) -> CopyResult {
    // Buffers are consecutive `stride`-byte pieces of two arenas (one allocation each).
    let stride = bytes.next_multiple_of(64);
    let sets = if cold {
        (4 * llc_bytes()).div_ceil(2 * stride).max(2)
    } else {
        1
    };
    let src: Vec<u8> = (0..sets * stride).map(|i| (i / 4096) as u8).collect();
    let mut dst = vec![0u8; sets * stride];
    let copy = |dst: &mut [u8], k: usize| {
        let at = k * stride;
        dst[at..at + bytes].copy_from_slice(black_box(&src[at..at + bytes]));
        black_box(&mut dst[at..at + bytes]);
    };
    // Warm-up (and page faults) outside the measurement.
    for k in 0..sets {
        copy(&mut dst, k);
    }
    let mut lat = Vec::new();
    let t0 = Instant::now();
    let mut i = 0usize;
    while t0.elapsed() < time || lat.len() < 16 {
        let a = Instant::now();
        copy(&mut dst, i % sets);
        lat.push(a.elapsed().as_nanos() as u64);
        i += 1;
    }
    // Throughput without a clock read per copy (it would dominate small copies), in ten
    // stretches; the best one is the bound (another process taking the core only lowers it).
    let mut n = 0usize;
    let mut best = 0.0f64;
    for _ in 0..10 {
        let t1 = Instant::now();
        let mut k = 0usize;
        while t1.elapsed() < time / 10 || k < 16 {
            for _ in 0..16 {
                copy(&mut dst, n % sets);
                n += 1;
                k += 1;
            }
        }
        best = best.max(k as f64 / t1.elapsed().as_secs_f64());
    }
    lat.sort_unstable();
    CopyResult {
        lat_ns: [
            quantile(&lat, 0.5),
            quantile(&lat, 0.99),
            quantile(&lat, 0.999),
        ],
        per_s: best,
    }
}
