//! Benchmark: 1920x1080x3 frames through the Zenoh bridge on loopback.
//!
//! ```text
//! cargo run --release -p shmframe-zenoh --example bench_bridge [-- --seconds S]
//! ```
//!
//! This process writes frames to a local channel and reads the recreated channel; two child
//! processes (this program again) are the sending and the receiving bridge, Zenoh peers over TCP
//! on 127.0.0.1. Latency is the reader's receipt (CLOCK_MONOTONIC) minus the time the frame was
//! written, carried in the frame's metadata: valid because every process runs on this host. It
//! prints one markdown table, one row per offered rate.

use shmframe::{DType, Reader, Writer, WriterOptions};
use shmframe_zenoh::{receive, send, ZenohOptions};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

shmframe::metadata! {
    /// When the frame was written.
    struct Sent { sent_ns: u64 }
}

const SHAPE: [usize; 3] = [1080, 1920, 3];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--side") {
        side(&args[1..]);
        return;
    }
    let mut seconds = 5.0f64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--seconds", Some(v)) => seconds = v.parse().expect("--seconds S"),
            _ => {
                eprintln!("usage: bench_bridge [--seconds S]");
                std::process::exit(2);
            }
        }
    }
    println!("| frame | offered fps | delivered fps | MB/s | latency p50 | latency p99 | frames |");
    println!("|---|---|---|---|---|---|---|");
    for fps in [30.0, 0.0] {
        let r = run(fps, Duration::from_secs_f64(seconds));
        let offered = if fps > 0.0 {
            format!("{fps:.0}")
        } else {
            "unpaced".into()
        };
        println!(
            "| 1920x1080x3 uint8 | {offered} | {:.1} | {:.0} | {:.2} ms | {:.2} ms | {} |",
            r.fps,
            r.fps * (SHAPE.iter().product::<usize>() as f64) / 1e6,
            r.p50_ms,
            r.p99_ms,
            r.frames
        );
    }
}

struct Row {
    fps: f64,
    p50_ms: f64,
    p99_ms: f64,
    frames: usize,
}

/// A child process running one side of the bridge; stops when its stdin closes.
struct SideProcess(Child);
impl SideProcess {
    fn start(args: &[String]) -> SideProcess {
        let exe = std::env::current_exe().expect("own path");
        let child = Command::new(exe)
            .arg("--side")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn a bridge side");
        SideProcess(child)
    }
}
impl Drop for SideProcess {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

fn run(fps: f64, duration: Duration) -> Row {
    let id = std::process::id();
    let src = format!("sft-bench-zenoh-src-{id}");
    let dst = format!("sft-bench-zenoh-dst-{id}");
    let key = format!("shmframe-bench/{id}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let endpoint = format!("tcp/127.0.0.1:{port}");

    let stop = Arc::new(AtomicBool::new(false));
    let mut w = Writer::create(
        &src,
        WriterOptions::new()
            .metadata::<Sent>()
            .capacity(SHAPE.iter().product()),
    )
    .expect("create the source channel");
    let writer_stop = stop.clone();
    let writer = std::thread::spawn(move || {
        let frame = vec![0x5au8; SHAPE.iter().product()];
        let period = (fps > 0.0).then(|| Duration::from_secs_f64(1.0 / fps));
        let mut next = Instant::now();
        while !writer_stop.load(Ordering::Relaxed) {
            let meta = Sent {
                sent_ns: shmframe::monotonic_ns(),
            };
            w.write_with_meta(
                DType::U8,
                &SHAPE,
                &frame,
                shmframe::__bytemuck::bytes_of(&meta),
            )
            .expect("write");
            if let Some(p) = period {
                next += p;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        }
    });

    let no_scouting = ["--multicast".to_string(), "off".to_string()];
    let tx = SideProcess::start(
        &[
            vec![
                "send".into(),
                src.clone(),
                key.clone(),
                "--listen".into(),
                endpoint.clone(),
            ],
            no_scouting.to_vec(),
        ]
        .concat(),
    );
    let rx = SideProcess::start(
        &[
            vec![
                "recv".into(),
                key.clone(),
                dst.clone(),
                "--connect".into(),
                endpoint,
            ],
            no_scouting.to_vec(),
        ]
        .concat(),
    );

    let mut r = Reader::open_wait(&dst, Duration::from_secs(60)).expect("the recreated channel");
    // Warm up: connections, channel growth, page faults.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(1) {
        let _ = r.next_view(Some(Duration::from_secs(10))).expect("frames");
    }
    let mut lat = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        let v = r.next_view(Some(Duration::from_secs(10))).expect("frames");
        let now = shmframe::monotonic_ns();
        let m: Sent = v.meta_as().expect("metadata");
        lat.push(now.saturating_sub(m.sent_ns));
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    drop(r);
    drop(tx);
    drop(rx);
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1e6;
    Row {
        fps: lat.len() as f64 / elapsed,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        frames: lat.len(),
    }
}

/// `--side send SRC KEY --listen E --multicast off` or `--side recv KEY DST --connect E ...`.
fn side(args: &[String]) {
    let mut opts = ZenohOptions::default();
    let mut it = args[3..].iter();
    let mut cfg = None;
    while let (Some(flag), Some(v)) = (it.next(), it.next()) {
        match flag.as_str() {
            "--listen" => opts.listen.push(v.clone()),
            "--connect" => opts.connect.push(v.clone()),
            "--multicast" => {
                let p = std::env::temp_dir()
                    .join(format!("sft-bench-zenoh-{}.json5", std::process::id()));
                std::fs::write(&p, "{ scouting: { multicast: { enabled: false } } }")
                    .expect("config");
                opts.config = Some(p.clone());
                cfg = Some(p);
            }
            _ => panic!("unknown side flag {flag}"),
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        flag.store(true, Ordering::Relaxed);
    });
    let result = match args[0].as_str() {
        "send" => send(&args[1], &args[2], &opts, &stop, None),
        _ => receive(&args[1], &args[2], &opts, &stop, None),
    };
    if let Some(p) = cfg {
        let _ = std::fs::remove_file(p);
    }
    if let Err(e) = result {
        eprintln!("error: {:#}", anyhow::Error::from(e));
        std::process::exit(1);
    }
}
