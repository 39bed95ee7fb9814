//! Runs every measurement, judges the targets, and writes the table, the markdown and the plot.

use crate::memcpy;
use crate::peer::{ReadMode, ReaderResult, Transport, WaitMode, WriterResult};
use crate::{pace_us, run_peers, sleep_between_runs, spec, BenchArgs, Budget, PAYLOADS};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;

/// What a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Two processes over a transport.
    Peer(Transport, ReadMode, WaitMode),
    /// memcpy in one process.
    Memcpy { cold: bool },
    /// A shmframe writer alone (no reader): `Writer::loan`, fill, stamp, `publish` at full rate.
    FillBound,
}

/// One line of the main table.
#[derive(Clone, Debug)]
pub struct Row {
    pub kind: Kind,
    pub payload: &'static str,
    pub bytes: usize,
    /// p50, p99, p99.9, ns (paced run; memcpy: one copy). `None`: not measured (fill bound).
    pub lat: Option<[u64; 3]>,
    /// Frames in the paced run and the pause between them.
    pub lat_frames: u64,
    pub period_us: u64,
    /// Frames per second received at full rate.
    pub fps: f64,
    pub cpu_w_us: Option<f64>,
    pub cpu_r_us: Option<f64>,
    pub missed: u64,
    pub torn: u64,
    pub verdict: String,
    pub error: Option<String>,
}

/// One line of the fan-out table.
#[derive(Clone, Debug)]
pub struct Fan {
    pub readers: usize,
    pub writer_fps: f64,
    pub writer_cpu_us: f64,
    pub reader_fps: Vec<f64>,
    pub missed: u64,
    pub torn: u64,
    pub error: Option<String>,
}

/// Everything one run measured.
pub struct Report {
    pub rows: Vec<Row>,
    pub fan: Vec<Fan>,
    pub command: String,
    pub machine: String,
    pub load_before: String,
    pub load_after: String,
    pub date: String,
    pub mode: &'static str,
    /// Interleaved rounds of each payload's rows.
    pub rounds: u64,
}

fn combos(only: &[Transport]) -> Vec<(Transport, ReadMode, WaitMode)> {
    use ReadMode::*;
    use Transport::*;
    use WaitMode::*;
    let all = [
        (Shmframe, View, Spin),
        (Shmframe, View, Sleep),
        (Shmframe, Copy, Spin),
        (Shmframe, Copy, Sleep),
        (Shmframe, View, Async),
        (ShmframeSocket, View, Sleep),
        (ShmframeSocket, Copy, Sleep),
        (Iceoryx2, View, Spin),
        (Iceoryx2, View, Sleep),
        (Iceoryx2, Copy, Spin),
        (Iceoryx2, Copy, Sleep),
        (Seed, Copy, Sleep),
        (Uds, Copy, Sleep),
    ];
    all.into_iter()
        .filter(|(t, _, _)| only.is_empty() || only.contains(t))
        .collect()
}

fn per_s(frames: u64, wall_ns: u64) -> f64 {
    if frames < 2 || wall_ns == 0 {
        0.0
    } else {
        (frames - 1) as f64 * 1e9 / wall_ns as f64
    }
}

impl Row {
    /// A row with nothing measured yet.
    pub(crate) fn new(kind: Kind, payload: &'static str, bytes: usize) -> Row {
        Row {
            kind,
            payload,
            bytes,
            lat: None,
            lat_frames: 0,
            period_us: 0,
            fps: 0.0,
            cpu_w_us: None,
            cpu_r_us: None,
            missed: 0,
            torn: 0,
            verdict: String::new(),
            error: None,
        }
    }
}

/// What the rounds of one row's runs add up to.
#[derive(Clone, Default)]
struct Tally {
    /// Every latency of the paced runs, ns.
    lat: Vec<u64>,
    missed: u64,
    torn: u64,
    /// Full-rate runs: the intervals between frames counted (received frames minus one per
    /// run; for the fill bound, the frames published) and their wall time, ns.
    intervals: u64,
    wall_ns: u64,
    /// Full-rate runs: frames and CPU time of the writer and of the reader.
    w_frames: u64,
    w_cpu_ns: u64,
    r_frames: u64,
    r_cpu_ns: u64,
    error: Option<String>,
}

impl Tally {
    /// One round of a peer row: a paced run of `frames` frames every `period_us`, then a
    /// full-rate run of `full_secs`.
    fn peer_round(
        &mut self,
        combo: (Transport, ReadMode, WaitMode),
        bytes: usize,
        (frames, period_us, full_secs): (u64, u64, f64),
        b: Budget,
    ) -> Result<()> {
        let mut paced = spec(combo, bytes, b);
        paced.period_us = period_us;
        paced.frames = frames;
        paced.seconds = 1e9;
        let (_, rs) = run_peers(&paced).context("paced run")?;
        self.add_paced(&rs[0]);
        sleep_between_runs();
        let mut full = spec(combo, bytes, b);
        full.seconds = full_secs;
        let (wr, rs) = run_peers(&full).context("full-rate run")?;
        self.add_full(&wr, Some(&rs[0]));
        Ok(())
    }

    /// One round of the fill bound: the shmframe writer peer of the rows above (same process,
    /// same `Writer::loan`, fill, stamp, `publish`) at full rate for `secs`, no reader attached.
    fn fill_round(&mut self, bytes: usize, secs: f64, b: Budget) -> Result<()> {
        let mut s = spec(
            (Transport::Shmframe, ReadMode::View, WaitMode::Sleep),
            bytes,
            b,
        );
        s.readers = 0;
        s.seconds = secs;
        let (wr, _) = run_peers(&s)?;
        self.add_full(&wr, None);
        Ok(())
    }

    fn add_paced(&mut self, r: &ReaderResult) {
        self.lat.extend_from_slice(&r.lat);
        self.missed += r.missed;
        self.torn += r.torn;
    }

    /// A full-rate run: the reader's frames/s (first frame to last) and both peers' CPU, or,
    /// with no reader, the writer's own rate (first publish to last, as the fan-out table
    /// counts it).
    fn add_full(&mut self, w: &WriterResult, r: Option<&ReaderResult>) {
        self.w_frames += w.frames;
        self.w_cpu_ns += w.cpu_ns;
        match r {
            Some(r) => {
                self.intervals += r.frames.saturating_sub(1);
                self.wall_ns += r.wall_ns;
                self.r_frames += r.frames;
                self.r_cpu_ns += r.cpu_ns;
                self.missed += r.missed;
                self.torn += r.torn;
            }
            None => {
                self.intervals += w.frames;
                self.wall_ns += w.wall_ns;
            }
        }
    }

    fn into_row(mut self, mut row: Row) -> Row {
        let per_frame = |cpu_ns: u64, frames: u64| cpu_ns as f64 / 1e3 / frames.max(1) as f64;
        if self.wall_ns > 0 {
            row.fps = self.intervals as f64 * 1e9 / self.wall_ns as f64;
        }
        row.cpu_w_us = (self.w_frames > 0).then(|| per_frame(self.w_cpu_ns, self.w_frames));
        row.cpu_r_us = (self.r_frames > 0).then(|| per_frame(self.r_cpu_ns, self.r_frames));
        if !self.lat.is_empty() {
            self.lat.sort_unstable();
            row.lat = Some([0.5, 0.99, 0.999].map(|q| crate::peer::quantile(&self.lat, q)));
        }
        row.missed = self.missed;
        row.torn = self.torn;
        row.error = self.error;
        row
    }
}

/// The fill bound and every peer row of one payload, measured in `b.rounds` interleaved rounds
/// (each round a share of every row's paced and full-rate runs, the rows in a rotated order),
/// so that a drift of the machine's speed during the payload's minutes weighs on every row
/// alike: rows are compared with rows of the same run.
fn measure_payload(
    args: &BenchArgs,
    payload: &'static str,
    bytes: usize,
    period_us: u64,
    b: Budget,
) -> Vec<Row> {
    let mut rows = Vec::new();
    if args.only.is_empty() || args.only.contains(&Transport::Shmframe) {
        rows.push(Row::new(Kind::FillBound, payload, bytes));
    }
    let lat_frames = ((b.lat_secs * 1e6 / period_us as f64) as u64).clamp(b.lat_min, b.lat_max);
    let rounds = b.rounds.max(1);
    let per_round = (
        lat_frames.div_ceil(rounds),
        period_us,
        b.full_secs / rounds as f64,
    );
    for (t, r, w) in combos(&args.only) {
        let mut row = Row::new(Kind::Peer(t, r, w), payload, bytes);
        row.lat_frames = per_round.0 * rounds;
        row.period_us = period_us;
        rows.push(row);
    }
    let mut tallies = vec![Tally::default(); rows.len()];
    for round in 0..rounds as usize {
        for k in 0..rows.len() {
            let i = (k + round) % rows.len();
            let tally = &mut tallies[i];
            if tally.error.is_some() {
                continue;
            }
            let done = match rows[i].kind {
                Kind::Peer(t, r, w) => tally.peer_round((t, r, w), bytes, per_round, b),
                _ => tally.fill_round(bytes, per_round.2, b),
            };
            if let Err(e) = done {
                tally.error = Some(match rows[i].kind {
                    Kind::Peer(t, r, w) => format!(
                        "{} {payload} {}/{}: {e:#}",
                        t.label(),
                        read_label(r),
                        wait_label(t, w)
                    ),
                    _ => format!("shmframe fill bound {payload}: {e:#}"),
                });
            }
            sleep_between_runs();
        }
    }
    rows.into_iter()
        .zip(tallies)
        .map(|(row, tally)| tally.into_row(row))
        .collect()
}

fn measure_fan(readers: usize, b: Budget) -> Fan {
    let bytes = PAYLOADS[2].1;
    let mut fan = Fan {
        readers,
        writer_fps: 0.0,
        writer_cpu_us: 0.0,
        reader_fps: Vec::new(),
        missed: 0,
        torn: 0,
        error: None,
    };
    let shm_view_sleep = (Transport::Shmframe, ReadMode::View, WaitMode::Sleep);
    let mut s = spec(shm_view_sleep, bytes, b);
    s.readers = readers;
    s.seconds = b.fan_secs;
    match run_peers(&s) {
        Ok((wr, rs)) => {
            fan.writer_fps = wr.frames as f64 * 1e9 / wr.wall_ns.max(1) as f64;
            fan.writer_cpu_us = wr.cpu_ns as f64 / 1e3 / wr.frames.max(1) as f64;
            for r in rs {
                fan.reader_fps.push(per_s(r.frames, r.wall_ns));
                fan.missed += r.missed;
                fan.torn += r.torn;
            }
        }
        Err(e) => fan.error = Some(format!("fan-out with {readers} readers: {e:#}")),
    }
    sleep_between_runs();
    fan
}

/// Runs everything `b` asks for.
pub fn measure(args: &BenchArgs, b: Budget) -> Result<Report> {
    let load_before = loadavg();
    let mut rows = Vec::new();
    for &(payload, bytes) in &PAYLOADS[..b.payloads] {
        if !args.wants_payload(payload) {
            continue;
        }
        eprintln!("bench: {payload} …");
        let copy_time = std::time::Duration::from_secs_f64(b.copy_secs);
        let mut cold_p50 = 0;
        for cold in [false, true] {
            let c = memcpy::measure(bytes, cold, copy_time);
            if cold {
                cold_p50 = c.lat_ns[0];
            }
            let mut row = Row::new(Kind::Memcpy { cold }, payload, bytes);
            row.lat = Some(c.lat_ns);
            row.fps = c.per_s;
            rows.push(row);
        }
        rows.extend(measure_payload(args, payload, bytes, pace_us(cold_p50), b));
    }
    let mut fan = Vec::new();
    let fan_payload = args.wants_payload(PAYLOADS[2].0);
    if fan_payload && (args.only.is_empty() || args.only.contains(&Transport::Shmframe)) {
        eprintln!("bench: fan-out …");
        for &n in b.fan {
            fan.push(measure_fan(n, b));
        }
    }
    crate::judge::judge(&mut rows);
    Ok(Report {
        rows,
        fan,
        command: args.command(),
        machine: machine(),
        load_before,
        load_after: loadavg(),
        date: utc_now(),
        mode: if args.smoke {
            "smoke"
        } else if args.quick {
            "quick"
        } else {
            "full"
        },
        rounds: b.rounds.max(1),
    })
}

pub(crate) fn us(ns: f64) -> String {
    let u = ns / 1e3;
    if u >= 100.0 {
        format!("{u:.0}")
    } else if u >= 10.0 {
        format!("{u:.1}")
    } else {
        format!("{u:.2}")
    }
}

fn read_label(r: ReadMode) -> &'static str {
    match r {
        ReadMode::View => "zero-copy",
        ReadMode::Copy => "copy-out",
    }
}

fn wait_label(t: Transport, w: WaitMode) -> &'static str {
    match (t, w) {
        (Transport::Shmframe | Transport::ShmframeSocket, WaitMode::Spin) => "spin",
        (Transport::Shmframe | Transport::ShmframeSocket, WaitMode::Sleep) => "futex",
        (Transport::Iceoryx2, WaitMode::Spin) => "busy poll",
        (Transport::Iceoryx2, WaitMode::Sleep) => "event",
        (_, WaitMode::Async) => "tokio",
        (Transport::Seed, _) => "poll 0.5 ms",
        (Transport::Uds, _) => "blocking read",
    }
}

fn row_labels(k: Kind) -> (String, &'static str, &'static str) {
    match k {
        Kind::Peer(t, r, w) => (t.label().to_string(), read_label(r), wait_label(t, w)),
        Kind::Memcpy { cold: false } => ("memcpy warm".into(), "—", "—"),
        Kind::Memcpy { cold: true } => ("memcpy cold".into(), "—", "—"),
        Kind::FillBound => ("shmframe fill bound".into(), "—", "—"),
    }
}

fn opt_ns(v: Option<u64>) -> String {
    v.map_or("—".into(), |n| us(n as f64))
}

fn opt_us(v: Option<f64>) -> String {
    v.map_or("—".into(), |u| us(u * 1e3))
}

impl Report {
    /// The generated markdown: machine, command, tables, verdicts.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "### Run of {} ({} mode)\n", self.date, self.mode);
        let _ = writeln!(s, "- Command: `{}`", self.command);
        let _ = writeln!(s, "- Machine: {}", self.machine);
        let _ = writeln!(
            s,
            "- Load average (1, 5, 15 min): {} before, {} after\n",
            self.load_before, self.load_after
        );
        self.rows_table(&mut s);
        self.periods(&mut s);
        if !self.fan.is_empty() {
            self.fan_table(&mut s);
        }
        s
    }

    /// The main table: one line per row.
    fn rows_table(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "| transport | read | wait | payload | p50 µs | p99 µs | p99.9 µs | frames/s | GB/s | CPU µs/frame writer | CPU µs/frame reader | missed | torn | verdict |"
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
        );
        for r in &self.rows {
            let (t, rd, w) = row_labels(r.kind);
            if let Some(e) = &r.error {
                let _ = writeln!(
                    s,
                    "| {t} | {rd} | {w} | {} | error: {} | | | | | | | | | |",
                    r.payload,
                    e.replace('|', "/")
                );
                continue;
            }
            let _ = writeln!(
                s,
                "| {t} | {rd} | {w} | {} | {} | {} | {} | {:.0} | {:.2} | {} | {} | {} | {} | {} |",
                r.payload,
                opt_ns(r.lat.map(|l| l[0])),
                opt_ns(r.lat.map(|l| l[1])),
                opt_ns(r.lat.map(|l| l[2])),
                r.fps,
                r.fps * r.bytes as f64 / 1e9,
                opt_us(r.cpu_w_us),
                opt_us(r.cpu_r_us),
                if matches!(r.kind, Kind::Peer(..)) {
                    r.missed.to_string()
                } else {
                    "—".into()
                },
                if matches!(r.kind, Kind::Peer(..)) {
                    r.torn.to_string()
                } else {
                    "—".into()
                },
                r.verdict
            );
        }
    }

    /// The paced runs' frame counts and periods.
    fn periods(&self, s: &mut String) {
        let periods: Vec<String> = PAYLOADS
            .iter()
            .filter_map(|(p, _)| {
                self.rows
                    .iter()
                    .find(|r| r.payload == *p && r.period_us > 0)
                    .map(|r| format!("{p}: {} frames every {} µs", r.lat_frames, r.period_us))
            })
            .collect();
        if !periods.is_empty() {
            let rounds = match self.rounds {
                1 => String::new(),
                n => format!(" (each payload's rows in {n} interleaved rounds)"),
            };
            let _ = writeln!(s, "\nPaced (latency) runs{rounds}: {}.", periods.join("; "));
        }
    }

    /// The fan-out table.
    fn fan_table(&self, s: &mut String) {
        let alone = self
            .fan
            .iter()
            .find(|f| f.readers == 0 && f.error.is_none())
            .map(|f| f.writer_fps);
        let _ = writeln!(
            s,
            "\n**Fan-out**: one shmframe writer of {} frames at full rate, N readers (zero-copy, futex, verifying).\n",
            PAYLOADS[2].0
        );
        let _ = writeln!(
            s,
            "| readers | writer frames/s | writer vs alone | writer CPU µs/frame | each reader frames/s | missed (all readers) | torn |"
        );
        let _ = writeln!(s, "|--:|--:|--:|--:|---|--:|--:|");
        for f in &self.fan {
            if let Some(e) = &f.error {
                let _ = writeln!(
                    s,
                    "| {} | error: {} | | | | |",
                    f.readers,
                    e.replace('|', "/")
                );
                continue;
            }
            let each: Vec<String> = f.reader_fps.iter().map(|x| format!("{x:.0}")).collect();
            let vs = alone.map_or("—".into(), |a| format!("{:.2}", f.writer_fps / a));
            let _ = writeln!(
                s,
                "| {} | {:.0} | {vs} | {} | {} | {} | {} |",
                f.readers,
                f.writer_fps,
                us(f.writer_cpu_us * 1e3),
                if each.is_empty() {
                    "—".into()
                } else {
                    each.join(", ")
                },
                f.missed,
                f.torn
            );
        }
    }

    /// Writes `DIR/benchmarks.md` (replacing only the generated section between the markers if
    /// the file has them) and `DIR/bench.png`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let md_path = dir.join("benchmarks.md");
        let section = format!("{BEGIN}\n{}\n{END}", self.markdown());
        let text = match std::fs::read_to_string(&md_path) {
            Ok(old) => match (old.find(BEGIN), old.find(END)) {
                (Some(a), Some(b)) if a < b => {
                    format!("{}{section}{}", &old[..a], &old[b + END.len()..])
                }
                _ => format!("{old}\n{section}\n"),
            },
            Err(_) => {
                format!("# Benchmarks\n\nGenerated by `shmframe bench --out DIR`.\n\n{section}\n")
            }
        };
        std::fs::write(&md_path, text)?;
        crate::report::plot(self, &dir.join("bench.png"))
    }
}

const BEGIN: &str = "<!-- generated by shmframe bench: begin -->";
const END: &str = "<!-- generated by shmframe bench: end -->";

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".into())
}

pub(crate) fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_string(), |s| s.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("unknown".into(), |s| s.trim().to_string());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or("unknown".into(), |kb| {
            format!("{:.1} GiB", kb / (1 << 20) as f64)
        });
    let llc = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index3/size")
        .map(|s| format!(", last-level cache {}", s.trim()))
        .unwrap_or_default();
    format!("{model}, {cores} cores{llc}, Linux {kernel}, {mem} RAM")
}

pub(crate) fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn human(y: f64) -> String {
    let (v, unit) = if y >= 1e6 {
        (y / 1e6, "M")
    } else if y >= 1e3 {
        (y / 1e3, "k")
    } else {
        (y, "")
    };
    let digits = if v >= 10.0 || v == v.round() {
        0
    } else if v >= 1.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{unit}")
}

/// Line colours of [`plot`], one per kind of row.
const PALETTE: [plotters::style::RGBColor; 14] = {
    use plotters::style::RGBColor as C;
    [
        C(31, 119, 180),
        C(174, 199, 232),
        C(23, 190, 207),
        C(158, 218, 229),
        C(0, 90, 130),
        C(214, 39, 40),
        C(255, 152, 150),
        C(148, 103, 189),
        C(197, 176, 213),
        C(255, 127, 14),
        C(44, 160, 44),
        C(80, 80, 80),
        C(160, 160, 160),
        C(227, 119, 194),
    ]
};

/// Two panels: p50 one-way latency and full-rate frames/s against payload, log scales.
pub fn plot(rep: &Report, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    static FONT: std::sync::Once = std::sync::Once::new();
    FONT.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
    let payloads: Vec<&str> = PAYLOADS
        .iter()
        .map(|p| p.0)
        .filter(|p| rep.rows.iter().any(|r| r.payload == *p))
        .collect();
    let mut kinds: Vec<Kind> = Vec::new();
    for r in &rep.rows {
        if !kinds.contains(&r.kind) {
            kinds.push(r.kind);
        }
    }
    let root = BitMapBackend::new(path, (1500, 650)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.titled(
        &format!("shmframe bench ({}), {}", rep.mode, rep.machine),
        ("sans-serif", 18),
    )?;
    for (area, lat) in body.split_evenly((1, 2)).iter().zip([true, false]) {
        panel(area, rep, &payloads, &kinds, lat)?;
    }
    root.present()?;
    Ok(())
}

/// A row's value in a panel of [`plot`]: p50 latency in µs (`lat`) or frames/s.
fn plotted(r: &Row, lat: bool) -> Option<f64> {
    if r.error.is_some() {
        return None;
    }
    let v = if lat { r.lat?[0] as f64 / 1e3 } else { r.fps };
    (v > 0.0).then_some(v)
}

/// One panel of [`plot`]: a line per kind of row against payload.
fn panel(
    area: &plotters::drawing::DrawingArea<
        plotters::prelude::BitMapBackend<'_>,
        plotters::coord::Shift,
    >,
    rep: &Report,
    payloads: &[&str],
    kinds: &[Kind],
    lat: bool,
) -> Result<()> {
    use plotters::prelude::*;
    let n = payloads.len().max(1) as f64;
    let values: Vec<f64> = rep.rows.iter().filter_map(|r| plotted(r, lat)).collect();
    let lo = values
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .max(1e-3)
        / 2.0;
    let hi = values.iter().cloned().fold(0.0, f64::max).max(lo * 10.0) * 2.0;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .caption(
            if lat {
                "one-way latency p50, µs (paced run; memcpy: one copy)"
            } else {
                "frames/s at full rate"
            },
            ("sans-serif", 18),
        )
        .build_cartesian_2d(-0.3..(n - 0.7), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(payloads.len().max(2))
        .x_label_formatter(&|x: &f64| {
            let i = x.round();
            if (x - i).abs() < 0.05 && i >= 0.0 && (i as usize) < payloads.len() {
                payloads[i as usize].to_string()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y: &f64| human(*y))
        .label_style(("sans-serif", 13))
        .draw()?;
    for (i, k) in kinds.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let pts: Vec<(f64, f64)> = payloads
            .iter()
            .enumerate()
            .filter_map(|(x, p)| {
                rep.rows
                    .iter()
                    .find(|r| r.kind == *k && r.payload == *p)
                    .and_then(|r| plotted(r, lat))
                    .map(|v| (x as f64, v))
            })
            .collect();
        let (t, rd, w) = row_labels(*k);
        let label = if rd == "—" {
            t
        } else {
            format!("{t} {rd} {w}")
        };
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
            });
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    if lat {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rounds make one row: percentiles over both rounds' latencies, frames/s and CPU per
    /// frame over both full-rate runs together (not an average of per-round figures).
    #[test]
    fn rounds_add_up_to_one_row() {
        let mut t = Tally::default();
        let paced = |lat: Vec<u64>| ReaderResult {
            lat,
            missed: 1,
            ..ReaderResult::default()
        };
        // Round 1 was slow (latencies 101..=200 µs), round 2 fast (1..=100 µs).
        t.add_paced(&paced((101..=200).map(|u| u * 1000).collect()));
        t.add_paced(&paced((1..=100).rev().map(|u| u * 1000).collect()));
        let w = |frames, cpu_ns| WriterResult {
            frames,
            wall_ns: 0,
            cpu_ns,
        };
        let r = |frames, wall_ns, cpu_ns| ReaderResult {
            frames,
            wall_ns,
            cpu_ns,
            ..ReaderResult::default()
        };
        // 101 frames in 1 s, then 301 frames in 1 s: 400 intervals in 2 s.
        t.add_full(&w(110, 220_000), Some(&r(101, 1_000_000_000, 101_000)));
        t.add_full(&w(310, 620_000), Some(&r(301, 1_000_000_000, 904_000)));
        let row = t.into_row(Row::new(Kind::FillBound, "64 B", 64));
        let lat = row.lat.unwrap();
        assert_eq!(lat[0] / 1000, 101, "p50 over all 200 latencies: {lat:?}");
        assert_eq!(lat[2] / 1000, 200);
        assert_eq!(row.fps, 200.0);
        assert_eq!(row.cpu_w_us, Some(2.0)); // 840 µs over 420 frames
        assert_eq!(row.cpu_r_us, Some(2.5)); // 1005 µs over 402 frames
        assert_eq!(row.missed, 2);
        assert!(row.error.is_none());
    }

    /// The fill bound's rounds: the writer's frames over its wall time, no reader figures.
    #[test]
    fn fill_rounds_count_the_writer_alone() {
        let mut t = Tally::default();
        for frames in [1000, 3000] {
            let w = WriterResult {
                frames,
                wall_ns: 1_000_000_000,
                cpu_ns: frames * 500,
            };
            t.add_full(&w, None);
        }
        let row = t.into_row(Row::new(Kind::FillBound, "64 B", 64));
        assert_eq!(row.fps, 2000.0);
        assert_eq!(row.cpu_w_us, Some(0.5));
        assert_eq!(row.cpu_r_us, None);
        assert_eq!(row.lat, None);
    }
}
