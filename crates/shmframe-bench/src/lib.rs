//! The benchmark behind `shmframe bench`: shmframe next to iceoryx2, the article's protocol
//! (`NAME-meta` + `NAME` + a POSIX semaphore), a Unix domain socket and `memcpy`, between two
//! processes, for payloads from 64 bytes to 3840x2160x3, with the shmframe writer's own bound
//! (the writer alone, no reader) as a row of its own.
//!
//! Interface used by a binary: embed [`BenchArgs`] as its `bench` subcommand and call [`run`].
//! The benchmark starts its peer processes by re-running the current executable as
//! `EXE bench --peer writer|reader …`, so the binary must dispatch `bench …` to [`run`] (the
//! `shmframe` binary does; so does this crate's `examples/bench.rs`).
//!
//! How each number is measured is written in `docs/benchmarks.md` and in the report itself.
#![forbid(unsafe_code)]

mod judge;
mod memcpy;
mod paired;
mod pattern;
mod peer;
mod report;

use anyhow::{bail, Context, Result};
use peer::{PeerSpec, ReaderResult, WriterResult};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

pub use peer::{ReadMode, Transport, WaitMode};

/// Options of `shmframe bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Finish in under a minute (shorter runs; p99.9 then rests on few samples).
    #[arg(long, conflicts_with = "smoke")]
    pub quick: bool,

    /// A few frames per row, two small payloads: proves every row works end to end (for CI).
    #[arg(long)]
    pub smoke: bool,

    /// Also write `benchmarks.md` (its generated section) and `bench.png` into this directory,
    /// e.g. `--out docs` from the repository root.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Measure only these transports (memcpy is always measured).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Transport>,

    /// Measure only these payloads (fan-out runs with 1920x1080x3).
    #[arg(long, value_delimiter = ',', value_parser = ["64B", "640x480x3", "1920x1080x3", "3840x2160x3"])]
    pub payload: Vec<String>,

    /// Every reader peer, of every transport, first asks for a short scheduler time slice
    /// (`shmframe::prefer_low_latency`, Linux 6.12 and later), as `shmframe read --low-latency`.
    #[arg(long)]
    pub low_latency: bool,

    /// Measure each payload's rows in N interleaved rounds, each a share of every row's runs
    /// (default 3; `--quick` 2, `--smoke` 1): a drift of the machine's speed then weighs on all
    /// rows alike.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=20))]
    pub rounds: Option<u64>,

    /// Instead of the full table: shmframe's spinning zero-copy reader and iceoryx2's busy poll
    /// in N back-to-back pairs of paced runs per payload (`--payload` picks them), with the
    /// median of the pairs' p50 differences. For differences below what one run resolves.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=200),
          conflicts_with_all = ["out", "only", "rounds"])]
    pub paired: Option<u64>,

    /// Internal: run as a peer process of the benchmark.
    #[arg(long, hide = true, value_parser = ["writer", "reader"])]
    pub peer: Option<String>,
    #[arg(long, hide = true, value_enum, default_value = "shmframe")]
    #[doc(hidden)]
    pub transport: Transport,
    #[arg(long, hide = true, value_enum, default_value = "view")]
    #[doc(hidden)]
    pub read: ReadMode,
    #[arg(long, hide = true, value_enum, default_value = "sleep")]
    #[doc(hidden)]
    pub wait: WaitMode,
    #[arg(long, hide = true, default_value_t = 64)]
    #[doc(hidden)]
    pub bytes: usize,
    #[arg(long, hide = true, default_value = "")]
    #[doc(hidden)]
    pub name: String,
    #[arg(long, hide = true, default_value_t = 0)]
    #[doc(hidden)]
    pub period_us: u64,
    #[arg(long, hide = true, default_value_t = u64::MAX)]
    #[doc(hidden)]
    pub frames: u64,
    #[arg(long, hide = true, default_value_t = 1.0)]
    #[doc(hidden)]
    pub seconds: f64,
    #[arg(long, hide = true, default_value_t = 1)]
    #[doc(hidden)]
    pub readers: usize,
    #[arg(long, hide = true, default_value_t = shmframe::DEFAULT_SLOTS)]
    #[doc(hidden)]
    pub slots: u32,
}

/// The payloads measured: name and bytes.
pub const PAYLOADS: [(&str, usize); 4] = [
    ("64 B", 64),
    ("640x480x3", 640 * 480 * 3),
    ("1920x1080x3", 1920 * 1080 * 3),
    ("3840x2160x3", 3840 * 2160 * 3),
];

impl BenchArgs {
    /// The command line that repeats this run, as the reports print it.
    pub(crate) fn command(&self) -> String {
        use std::fmt::Write as _;
        let mut command = String::from("shmframe bench");
        if let Some(n) = self.paired {
            let _ = write!(command, " --paired {n}");
        }
        if self.quick {
            command.push_str(" --quick");
        }
        if self.smoke {
            command.push_str(" --smoke");
        }
        if let Some(o) = &self.out {
            let _ = write!(command, " --out {}", o.display());
        }
        if self.low_latency {
            command.push_str(" --low-latency");
        }
        if let Some(n) = self.rounds {
            let _ = write!(command, " --rounds {n}");
        }
        if !self.only.is_empty() {
            let names: Vec<String> = self
                .only
                .iter()
                .map(|t| format!("{t:?}").to_lowercase())
                .collect();
            let _ = write!(command, " --only {}", names.join(","));
        }
        if !self.payload.is_empty() {
            let _ = write!(command, " --payload {}", self.payload.join(","));
        }
        command
    }

    /// Whether `--payload` (none: all) asks for the payload named `name` in [`PAYLOADS`].
    pub(crate) fn wants_payload(&self, name: &str) -> bool {
        self.payload.is_empty() || self.payload.iter().any(|p| *p == name.replace(' ', ""))
    }
}

/// How long each kind of run lasts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    /// Paced (latency) run: seconds, and bounds on the frame count.
    pub lat_secs: f64,
    pub lat_min: u64,
    pub lat_max: u64,
    /// Full-rate run, seconds.
    pub full_secs: f64,
    /// memcpy, seconds per measurement.
    pub copy_secs: f64,
    /// Fan-out run, seconds.
    pub fan_secs: f64,
    /// Payloads measured.
    pub payloads: usize,
    /// Fan-out reader counts.
    pub fan: &'static [usize],
    /// Reader peers ask for a short time slice (`--low-latency`).
    pub low_latency: bool,
    /// Interleaved rounds each payload's rows are measured in (see `report::measure_payload`).
    pub rounds: u64,
}

impl Budget {
    fn of(args: &BenchArgs) -> Budget {
        let low_latency = args.low_latency;
        let b = if args.smoke {
            Budget {
                lat_secs: 0.05,
                lat_min: 20,
                lat_max: 50,
                full_secs: 0.1,
                copy_secs: 0.02,
                fan_secs: 0.2,
                payloads: 2,
                fan: &[1, 2],
                low_latency,
                rounds: 1,
            }
        } else if args.quick {
            Budget {
                lat_secs: 0.25,
                lat_min: 30,
                lat_max: 250,
                full_secs: 0.25,
                copy_secs: 0.1,
                fan_secs: 0.5,
                payloads: 4,
                fan: &[0, 1, 2, 4],
                low_latency,
                rounds: 2,
            }
        } else {
            Budget {
                lat_secs: 3.0,
                lat_min: 300,
                lat_max: 3000,
                full_secs: 2.0,
                copy_secs: 0.5,
                fan_secs: 2.0,
                payloads: 4,
                fan: &[0, 1, 2, 4],
                low_latency,
                rounds: 3,
            }
        };
        Budget {
            rounds: args.rounds.unwrap_or(b.rounds),
            ..b
        }
    }
}

/// Runs the benchmark (or, with the hidden `--peer`, one of its peer processes) and prints its
/// table on stdout.
pub fn run(args: BenchArgs) -> Result<()> {
    if let Some(role) = &args.peer {
        let spec = PeerSpec {
            transport: args.transport,
            read: args.read,
            wait: args.wait,
            bytes: args.bytes.max(pattern::MIN_PAYLOAD),
            name: args.name.clone(),
            period_us: args.period_us,
            frames: args.frames,
            seconds: args.seconds,
            readers: args.readers,
            slots: args.slots,
            low_latency: args.low_latency,
        };
        return match role.as_str() {
            "writer" => peer::writer(&spec),
            _ => peer::reader(&spec),
        };
    }
    if args.low_latency {
        // Asked in a thread of its own (this one keeps its slice): a kernel without per-thread
        // slices fails here, once, rather than in every reader peer.
        std::thread::spawn(shmframe::prefer_low_latency)
            .join()
            .map_err(|_| anyhow::anyhow!("--low-latency: the check panicked"))?
            .context("--low-latency")?;
    }
    let budget = Budget::of(&args);
    let _leftovers = Iceoryx2Leftovers::note();
    if let Some(rounds) = args.paired {
        return paired::run(&args, rounds, budget);
    }
    let report = report::measure(&args, budget)?;
    let md = report.markdown();
    println!("{md}");
    if let Some(dir) = &args.out {
        report
            .write(dir)
            .with_context(|| format!("writing the report into {}", dir.display()))?;
        eprintln!(
            "wrote {} and {}",
            dir.join("benchmarks.md").display(),
            dir.join("bench.png").display()
        );
    }
    let torn: u64 = report.rows.iter().map(|r| r.torn).sum::<u64>()
        + report.fan.iter().map(|f| f.torn).sum::<u64>();
    let failed: Vec<&str> = report
        .rows
        .iter()
        .filter_map(|r| r.error.as_deref())
        .chain(report.fan.iter().filter_map(|f| f.error.as_deref()))
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} measurement(s) failed: {}",
            failed.len(),
            failed.join("; ")
        );
    }
    if torn > 0 {
        bail!(
            "{torn} torn frame(s) detected: a transport delivered a frame mixed from two publishes"
        );
    }
    Ok(())
}

/// What iceoryx2 keeps after its last node has ended, a node-management file in /dev/shm
/// (`iox2_*`) and the directory /tmp/iceoryx2: removed when the benchmark ends, all but what
/// was there before it started (another iceoryx2 user's).
struct Iceoryx2Leftovers {
    shm_before: Vec<std::ffi::OsString>,
    tmp_existed: bool,
}

const IOX2_SHM: &str = "/dev/shm";
const IOX2_TMP: &str = "/tmp/iceoryx2";

impl Iceoryx2Leftovers {
    fn note() -> Iceoryx2Leftovers {
        Iceoryx2Leftovers {
            shm_before: Self::shm_files(),
            tmp_existed: std::path::Path::new(IOX2_TMP).exists(),
        }
    }

    fn shm_files() -> Vec<std::ffi::OsString> {
        std::fs::read_dir(IOX2_SHM)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.file_name()))
                    .filter(|n| n.as_encoded_bytes().starts_with(b"iox2_"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Iceoryx2Leftovers {
    fn drop(&mut self) {
        for f in Self::shm_files() {
            if !self.shm_before.contains(&f) {
                let _ = std::fs::remove_file(std::path::Path::new(IOX2_SHM).join(f));
            }
        }
        if !self.tmp_existed {
            let _ = std::fs::remove_dir_all(IOX2_TMP);
        }
    }
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A channel name unique to this run (the `sft-` prefix lets the test suite notice leftovers).
pub(crate) fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("sft-bench-{}-{n}", std::process::id())
}

struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    role: &'static str,
}

impl Peer {
    fn start(role: &'static str, spec: &PeerSpec) -> Result<Peer> {
        let exe = std::env::current_exe().context("finding the current executable")?;
        let mut child = Command::new(&exe)
            .arg("bench")
            .args(spec.args(role))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} bench --peer {role}", exe.display()))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(Peer {
            child,
            stdin,
            stdout,
            role,
        })
    }

    fn read_line(&mut self) -> Result<String> {
        let mut l = String::new();
        self.stdout.read_line(&mut l)?;
        if l.is_empty() {
            let status = self.child.wait()?;
            bail!(
                "the {} peer exited ({status}) without answering (its error is above; the \
                 executable must dispatch `bench …` to shmframe_bench::run)",
                self.role
            );
        }
        Ok(l.trim().to_string())
    }

    fn expect(&mut self, want: &str) -> Result<()> {
        let l = self.read_line()?;
        if l != want {
            bail!("the {} peer said {l:?}, expected {want:?}", self.role);
        }
        Ok(())
    }

    fn send(&mut self, s: &str) -> Result<()> {
        let w = self.stdin.as_mut().context("peer stdin closed")?;
        writeln!(w, "{s}")?;
        w.flush()?;
        Ok(())
    }

    fn result<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let l = self.read_line()?;
        let v = serde_json::from_str(&l)
            .with_context(|| format!("the {} peer's result {l:?}", self.role))?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("the {} peer failed: {status}", self.role);
        }
        Ok(v)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs one writer and `readers` readers to completion.
pub(crate) fn run_peers(spec: &PeerSpec) -> Result<(WriterResult, Vec<ReaderResult>)> {
    let mut w = Peer::start("writer", spec)?;
    w.expect("ready")?;
    let mut rs = Vec::new();
    for _ in 0..spec.readers {
        let mut r = Peer::start("reader", spec)?;
        r.expect("ready")?;
        rs.push(r);
    }
    w.send("go")?;
    let mut results = Vec::new();
    for r in &mut rs {
        results.push(r.result::<ReaderResult>()?);
    }
    w.send("done")?;
    let wr = w.result::<WriterResult>()?;
    Ok((wr, results))
}

/// Milliseconds to wait between frames in a paced run: long enough that the writer's copy and
/// the reader's work are done well before the next frame (an idle reader).
pub(crate) fn pace_us(copy_ns: u64) -> u64 {
    (3 * copy_ns / 1000).max(1000)
}

pub(crate) fn spec(
    (transport, read, wait): (Transport, ReadMode, WaitMode),
    bytes: usize,
    b: Budget,
) -> PeerSpec {
    PeerSpec {
        transport,
        read,
        wait,
        bytes,
        name: unique_name(),
        period_us: 0,
        frames: u64::MAX,
        seconds: 1.0,
        readers: 1,
        slots: shmframe::DEFAULT_SLOTS,
        low_latency: b.low_latency,
    }
}

pub(crate) fn sleep_between_runs() {
    std::thread::sleep(Duration::from_millis(20));
}
