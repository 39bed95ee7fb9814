//! Soak test: one writer process at full rate and four reader processes on one channel, with
//! random `kill -9` of readers and of the writer, immediate restarts, and shape changes (the
//! channel grows and shrinks its frames). Not part of the default test run:
//!
//! ```text
//! cargo run --release -p shmframe --example soak -- --minutes 10
//! ```
//!
//! Every frame carries a self-describing pattern (its index, the writer's pid, and words derived
//! from both), so readers verify every byte. Two readers copy (`next_into`), two hold zero-copy
//! views (`next_view`). At the end it prints frames checked, torn frames (must be 0), recoveries
//! (a reader moving to a restarted writer), the longest recovery (from a reader's last frame of
//! the killed writer to its first frame of the new one), and objects left in /dev/shm (must be 0),
//! and exits non-zero if either is not 0.

use shmframe::{DType, ReadError, Reader, WriteError, Writer, WriterOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SHAPES: [[usize; 3]; 4] = [[48, 64, 3], [120, 160, 3], [24, 32, 1], [240, 320, 3]];
const READERS: usize = 4;

fn word(index: u64, pid: u64, k: usize) -> u64 {
    index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (pid << 40) ^ (k as u64).wrapping_mul(0xC2B2_AE3D)
}

/// Fills a frame: word 0 is the index, word 1 the writer's pid, then the derived words.
fn fill(index: u64, pid: u64, data: &mut [u8]) {
    for (k, c) in data.chunks_exact_mut(8).enumerate() {
        let v = match k {
            0 => index,
            1 => pid,
            _ => word(index, pid, k),
        };
        c.copy_from_slice(&v.to_ne_bytes());
    }
}

/// Checks a frame received as `index`; returns the writer pid it carries if whole.
fn check(index: u64, data: &[u8]) -> Option<u64> {
    if data.len() < 16 || data.len() % 8 != 0 {
        return None;
    }
    let w = |k: usize| u64::from_ne_bytes(data[8 * k..8 * k + 8].try_into().unwrap());
    let pid = w(1);
    if w(0) != index {
        return None;
    }
    (2..data.len() / 8)
        .all(|k| w(k) == word(index, pid, k))
        .then_some(pid)
}

/// Sets the returned flag when stdin reaches end of file (the parent's request to stop).
fn stop_on_stdin_eof() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok(n) = std::io::stdin().read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        s.store(true, Ordering::SeqCst);
    });
    stop
}

fn child_writer(name: &str) {
    let stop = stop_on_stdin_eof();
    let pid = std::process::id() as u64;
    // The previous writer was killed and reaped before we started, so the name is stale, never
    // busy; retry briefly anyway in case a reader is probing the old writer's lock right now.
    let t0 = Instant::now();
    let mut w = loop {
        match Writer::create(name, WriterOptions::new().slots(4)) {
            Ok(w) => break w,
            Err(e) if t0.elapsed() < Duration::from_secs(5) => {
                eprintln!("soak writer: {e}; retrying");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                eprintln!("soak writer: {e}");
                std::process::exit(3);
            }
        }
    };
    let mut i = 0u64;
    let mut pinned = 0u64;
    let mut last_report = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let shape = SHAPES[(i / 50) as usize % SHAPES.len()];
        match w.loan(DType::U8, &shape) {
            Ok(mut loan) => {
                fill(i, pid, loan.data_mut());
                loan.publish();
                i += 1;
            }
            Err(WriteError::AllSlotsPinned { .. }) => pinned += 1,
            Err(e) => {
                eprintln!("soak writer: {e}");
                std::process::exit(4);
            }
        }
        if last_report.elapsed() >= Duration::from_millis(500) {
            last_report = Instant::now();
            println!("W {i} {pinned}");
        }
    }
    println!("W {i} {pinned}");
    w.close().expect("close");
}

fn child_reader(name: &str, view: bool) {
    let stop = stop_on_stdin_eof();
    let mut r = loop {
        match Reader::open_wait(name, Duration::from_millis(500)) {
            Ok(r) => break r,
            // Between a writer's kill and its restart, or after the final close.
            Err(shmframe::OpenError::Timeout { .. }) if !stop.load(Ordering::Relaxed) => {}
            Err(shmframe::OpenError::Timeout { .. }) => return,
            Err(e) => {
                eprintln!("soak reader: {e}");
                std::process::exit(5);
            }
        }
    };
    let (mut frames, mut torn, mut recoveries, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut max_gap_us = 0u64;
    let mut last_pid: Option<u64> = None;
    let mut last_frame_at = Instant::now();
    let mut frame = r.next(Some(Duration::ZERO)).ok();
    let mut f = frame.take().unwrap_or_default();
    let mut last_report = Instant::now();
    let report = |frames, torn, recoveries, max_gap_us, errors| {
        println!("R {frames} {torn} {recoveries} {max_gap_us} {errors}");
        let _ = std::io::stdout().flush();
    };
    while !stop.load(Ordering::Relaxed) {
        let got = if view {
            r.next_view(Some(Duration::from_secs(2))).map(|v| {
                let pid = check(v.index, v.data());
                // Hold the view a moment, so that kills often land while a slot is pinned, then
                // check again: a pinned slot must not change.
                std::thread::sleep(Duration::from_micros(300));
                pid.filter(|_| check(v.index, v.data()).is_some())
            })
        } else {
            r.next_into(&mut f, Some(Duration::from_secs(2)))
                .map(|()| check(f.index, &f.data))
        };
        match got {
            Ok(pid) => {
                frames += 1;
                match pid {
                    None => {
                        torn += 1;
                        eprintln!("soak reader: TORN frame");
                    }
                    Some(p) => {
                        if last_pid.is_some_and(|l| l != p) {
                            recoveries += 1;
                            max_gap_us = max_gap_us.max(last_frame_at.elapsed().as_micros() as u64);
                        }
                        last_pid = Some(p);
                    }
                }
                last_frame_at = Instant::now();
            }
            Err(ReadError::WriterGone { .. })
            | Err(ReadError::Closed { .. })
            | Err(ReadError::Timeout { .. }) => {}
            Err(e) => {
                errors += 1;
                eprintln!("soak reader: {e}");
            }
        }
        if last_report.elapsed() >= Duration::from_millis(500) {
            last_report = Instant::now();
            report(frames, torn, recoveries, max_gap_us, errors);
        }
    }
    report(frames, torn, recoveries, max_gap_us, errors);
}

/// Latest figures reported by each child process (they are cumulative per process).
#[derive(Default, Clone, Copy)]
struct Figures {
    frames: u64,
    torn: u64,
    recoveries: u64,
    max_gap_us: u64,
    errors: u64,
    written: u64,
}

struct Proc {
    child: Child,
    figures: Arc<Mutex<Figures>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn spawn(args: &[&str]) -> Proc {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn soak child");
    let out = child.stdout.take().unwrap();
    let figures = Arc::new(Mutex::new(Figures::default()));
    let fig = figures.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let mut f = fig.lock().unwrap();
            match (line.chars().next(), v.as_slice()) {
                (Some('W'), [n, _]) => f.written = *n,
                (Some('R'), [frames, torn, rec, gap, err]) => {
                    *f = Figures {
                        frames: *frames,
                        torn: *torn,
                        recoveries: *rec,
                        max_gap_us: *gap,
                        errors: *err,
                        written: 0,
                    }
                }
                _ => {}
            }
        }
    });
    Proc {
        child,
        figures,
        reader: Some(reader),
    }
}

impl Proc {
    /// Ends the process (SIGKILL, or a clean stop by closing its stdin) and returns its figures.
    fn finish(&mut self, kill: bool) -> Figures {
        if kill {
            let _ = self.child.kill();
        } else {
            drop(self.child.stdin.take());
        }
        let _ = self.child.wait();
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
        let f = *self.figures.lock().unwrap();
        f
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn add(total: &mut Figures, f: Figures) {
    total.frames += f.frames;
    total.torn += f.torn;
    total.recoveries += f.recoveries;
    total.max_gap_us = total.max_gap_us.max(f.max_gap_us);
    total.errors += f.errors;
    total.written += f.written;
}

fn leftovers(name: &str) -> Vec<String> {
    let prefix = format!("{}{name}", shmframe::OBJECT_PREFIX);
    std::fs::read_dir(shmframe::SHM_DIR)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n == &prefix || n.starts_with(&format!("{prefix}.")))
                .collect()
        })
        .unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--child-writer") => return child_writer(&args[1]),
        Some("--child-reader") => return child_reader(&args[1], args[2] == "view"),
        _ => {}
    }
    let minutes: f64 = args
        .iter()
        .position(|a| a == "--minutes")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let name = format!("soak-{}", std::process::id());
    let mut rng = Rng(shmframe::monotonic_ns() | 1);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(minutes * 60.0);
    let mode = |k: usize| if k % 2 == 0 { "copy" } else { "view" };
    let mut total = Figures::default();
    let (mut writer_kills, mut reader_kills) = (0u64, 0u64);
    let mut writer = spawn(&["--child-writer", &name]);
    let mut readers: Vec<Proc> = (0..READERS)
        .map(|k| spawn(&["--child-reader", &name, mode(k)]))
        .collect();
    let mut last_status = Instant::now();
    eprintln!("soak: channel {name}, {minutes} min, 1 writer + {READERS} readers");
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200 + rng.below(1800)));
        if rng.below(10) < 3 {
            // Kill (and reap) the writer, then start a new one at once: it takes the stale name
            // over and the readers follow it.
            add(&mut total, writer.finish(true));
            writer = spawn(&["--child-writer", &name]);
            writer_kills += 1;
        } else {
            let k = rng.below(READERS as u64) as usize;
            add(&mut total, readers[k].finish(true));
            readers[k] = spawn(&["--child-reader", &name, mode(k)]);
            reader_kills += 1;
        }
        if last_status.elapsed() >= Duration::from_secs(30) {
            last_status = Instant::now();
            eprintln!(
                "soak: {:.0} s, writer kills {writer_kills}, reader kills {reader_kills}, frames checked so far {}, torn {}",
                start.elapsed().as_secs_f64(),
                total.frames,
                total.torn
            );
        }
    }
    // Clean stop: the writer closes (and removes) the channel, then the readers stop.
    add(&mut total, writer.finish(false));
    for r in &mut readers {
        add(&mut total, r.finish(false));
    }
    let left = leftovers(&name);
    for o in &left {
        let _ = std::fs::remove_file(std::path::Path::new(shmframe::SHM_DIR).join(o));
    }
    println!(
        "soak: {:.1} min, frames written (as last reported) {}, frames checked {}, torn {}, reader errors {}, writer kills {writer_kills}, reader kills {reader_kills}, recoveries {}, max recovery {:.1} ms, leaked /dev/shm objects {}{}",
        start.elapsed().as_secs_f64() / 60.0,
        total.written,
        total.frames,
        total.torn,
        total.errors,
        total.recoveries,
        total.max_gap_us as f64 / 1000.0,
        left.len(),
        if left.is_empty() { String::new() } else { format!(" {left:?}") }
    );
    let ok = total.torn == 0 && left.is_empty() && total.errors == 0;
    std::process::exit(if ok { 0 } else { 1 });
}
