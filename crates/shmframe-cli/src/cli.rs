//! The command line, declared with clap's derive API.

use crate::convert::PixelFormat;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[cfg(feature = "gstreamer")]
macro_rules! with_gstreamer {
    () => {
        " gstreamer"
    };
}
#[cfg(not(feature = "gstreamer"))]
macro_rules! with_gstreamer {
    () => {
        ""
    };
}
#[cfg(feature = "zenoh")]
macro_rules! with_zenoh {
    () => {
        " zenoh"
    };
}
#[cfg(not(feature = "zenoh"))]
macro_rules! with_zenoh {
    () => {
        ""
    };
}

/// `--version`: the version and the optional features built in.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (features:",
    with_gstreamer!(),
    with_zenoh!(),
    ")"
);

/// Move camera frames and N-d arrays between processes through POSIX shared memory.
#[derive(Parser, Debug)]
#[command(name = "shmframe", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Publish frames (test pattern, camera, images, video) to channel NAME.
    Write(WriteArgs),
    /// Show frames of channel NAME in a window, or report their rate and latency.
    Read(ReadArgs),
    /// List channels in /dev/shm (and objects that are not usable channels).
    Ls(LsArgs),
    /// Describe channel NAME: header, metadata schema, slots.
    Info(InfoArgs),
    /// Remove channel NAME, or every channel whose writer is gone (--stale).
    Rm(RmArgs),
    /// Run a writer and a reader as two processes on the test pattern and print a summary.
    Demo(DemoArgs),
    /// Measure shmframe against other ways of moving frames.
    Bench(shmframe_bench::BenchArgs),
    /// Copy frames from one endpoint to another: NAME, seed:NAME, socket:PATH or zenoh:KEYEXPR.
    Bridge(BridgeArgs),
}

/// Wire protocol of a channel.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// shmframe's own channel (`/dev/shm/shmframe.NAME`): lock-free ring, any dtype and shape.
    #[default]
    Native,
    /// The article's protocol: objects `NAME-meta` and `NAME` and semaphore `NAME` (HxWxC uint8).
    Seed,
}

/// `shmframe write`.
#[derive(Args, Debug, Clone)]
pub struct WriteArgs {
    /// Channel name (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// testsrc, camera, camera:/dev/videoN, an image (PNG/JPEG) path or glob, a video file or
    /// gst:URI (video needs the `gstreamer` feature).
    #[arg(long, default_value = "testsrc")]
    pub source: String,
    /// Frame size WIDTHxHEIGHT for the test pattern and the camera (images keep their own size).
    #[arg(long, default_value = "640x480", value_parser = parse_size)]
    pub size: (usize, usize),
    /// Frames per second (the camera and live streams set their own pace).
    #[arg(long, default_value_t = 30.0, value_parser = parse_fps)]
    pub fps: f64,
    /// Pixel format: bgr8 (HxWx3, OpenCV's order), rgb8 (HxWx3) or gray8 (HxW).
    #[arg(long, value_enum, default_value_t = PixelFormat::Bgr8)]
    pub format: PixelFormat,
    /// Stop after N frames (default: until Ctrl-C or the end of a video).
    #[arg(long)]
    pub frames: Option<u64>,
    /// Slots in the channel's ring.
    #[arg(long, default_value_t = shmframe::DEFAULT_SLOTS)]
    pub slots: u32,
    /// Leave the channel in /dev/shm at exit (remove it later with `shmframe rm NAME`).
    #[arg(long)]
    pub keep: bool,
    /// Permission bits of the channel, e.g. 0o600 or 0o640.
    #[arg(long, default_value = "0o600", value_parser = parse_mode)]
    pub mode: u32,
    /// Wire protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Native)]
    pub protocol: Protocol,
    /// Serve the channel on a Unix socket at PATH instead of naming it in /dev/shm: readers
    /// connect with `--socket PATH` and need only that directory, not the IPC namespace.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["keep", "protocol"])]
    pub socket: Option<PathBuf>,
}

/// `shmframe read`.
#[derive(Args, Debug, Clone)]
pub struct ReadArgs {
    /// Channel name.
    #[arg(required_unless_present = "socket")]
    pub name: Option<String>,
    /// No window: a live status line on stderr.
    #[arg(long)]
    pub headless: bool,
    /// Stop after N frames.
    #[arg(long)]
    pub frames: Option<u64>,
    /// Give up if the channel does not appear, or no frame arrives, within S seconds.
    #[arg(long, value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// Save PNG snapshots in DIR (created if missing).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// With --save: save every Nth frame received (1 saves all).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub every: u64,
    /// Stop after S seconds.
    #[arg(long, value_parser = parse_seconds)]
    pub seconds: Option<f64>,
    /// At exit, print one JSON object with frames, fps, latency and shape on stdout.
    #[arg(long)]
    pub json: bool,
    /// Wire protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Native)]
    pub protocol: Protocol,
    /// Connect to the channel a writer serves on the Unix socket at PATH (`write --socket`).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["name", "protocol"])]
    pub socket: Option<PathBuf>,
    /// Ask the scheduler to run this reader as soon as a frame wakes it (a 0.1 ms time slice;
    /// Linux 6.12 and later): lower latency while the writer's core is busy.
    #[arg(long)]
    pub low_latency: bool,
}

/// `shmframe ls`.
#[derive(Args, Debug, Clone)]
pub struct LsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `shmframe info`.
#[derive(Args, Debug, Clone)]
pub struct InfoArgs {
    /// Channel name.
    #[arg(required_unless_present = "socket")]
    pub name: Option<String>,
    /// Describe the channel served on the Unix socket at PATH.
    #[arg(long, value_name = "PATH", conflicts_with = "name")]
    pub socket: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `shmframe rm`.
#[derive(Args, Debug, Clone)]
#[command(override_usage = "shmframe rm NAME...\n       shmframe rm --stale")]
pub struct RmArgs {
    /// Channel names to remove, or entries as `shmframe ls` lists them (/dev/shm/shmframe.…,
    /// with its escapes for names that are not UTF-8).
    #[arg(
        value_name = "NAME",
        required_unless_present = "stale",
        conflicts_with = "stale"
    )]
    pub names: Vec<String>,
    /// Remove every channel whose writer is gone (died, or exited with --keep).
    #[arg(long)]
    pub stale: bool,
}

/// `shmframe demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// How long the reader runs.
    #[arg(long, default_value_t = 5.0, value_parser = parse_seconds)]
    pub seconds: f64,
}

/// `shmframe bridge`.
#[derive(Args, Debug, Clone)]
pub struct BridgeArgs {
    /// Source endpoint: NAME, seed:NAME, socket:PATH or zenoh:KEYEXPR.
    #[arg(long)]
    pub from: String,
    /// Destination endpoint: NAME, seed:NAME, socket:PATH or zenoh:KEYEXPR.
    #[arg(long)]
    pub to: String,
    /// Stop after N frames.
    #[arg(long)]
    pub frames: Option<u64>,
    /// Zenoh endpoint to connect to, e.g. tcp/127.0.0.1:7447 (repeatable).
    #[arg(long)]
    pub zenoh_connect: Vec<String>,
    /// Zenoh endpoint to listen on (repeatable).
    #[arg(long)]
    pub zenoh_listen: Vec<String>,
    /// Zenoh configuration file.
    #[arg(long)]
    pub zenoh_config: Option<PathBuf>,
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("`{s}` is not a size: write WIDTHxHEIGHT, e.g. 640x480");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: usize = w.trim().parse().map_err(|_| bad())?;
    let h: usize = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > 16384 || h > 16384 {
        return Err(format!(
            "`{s}`: width and height must be between 1 and 16384"
        ));
    }
    Ok((w, h))
}

/// Slowest frame rate `--fps` accepts: one frame in 11.6 days.
pub const MIN_FPS: f64 = 1e-6;
/// Fastest frame rate `--fps` accepts.
pub const MAX_FPS: f64 = 100_000.0;
/// Longest duration `--timeout` and `--seconds` accept (about 31 years): far below what a
/// `Duration` or an `Instant` can hold, so no deadline computed from it can overflow.
pub const MAX_SECONDS: f64 = 1e9;

/// Parses a frame rate: a number from [`MIN_FPS`] to [`MAX_FPS`] (NaN, infinities and numbers
/// outside are refused with this message, never passed on).
fn parse_fps(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if (MIN_FPS..=MAX_FPS).contains(&f) => Ok(f),
        _ => Err(format!(
            "`{s}` is not a frame rate: give frames per second between {MIN_FPS} and {MAX_FPS}, e.g. 30 or 0.5"
        )),
    }
}

/// Parses a duration in seconds: a number from 0 to [`MAX_SECONDS`].
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        // `-0` is 0: `Duration::from_secs_f64(-0.0)` is zero.
        Ok(f) if (0.0..=MAX_SECONDS).contains(&f) => Ok(f.abs()),
        _ => Err(format!(
            "`{s}` is not a number of seconds: give one between 0 and {MAX_SECONDS:e}, e.g. 5 or 0.5"
        )),
    }
}

/// Parses permission bits: `0o640`, `0640` or `640` (octal).
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "`{s}` is not a permission mode: give octal bits such as 0o600 or 0o640"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("640x480"), Ok((640, 480)));
        assert_eq!(parse_size("2X3"), Ok((2, 3)));
        assert!(parse_size("640").unwrap_err().contains("WIDTHxHEIGHT"));
        assert!(parse_size("0x5").is_err());
        assert!(parse_size("axb").is_err());
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0o640"), Ok(0o640));
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert!(parse_mode("0o800").is_err());
        assert!(parse_mode("1777").is_err());
    }

    /// Every number Rust can parse at the edges of `f64` (and a few it cannot) is either refused
    /// with the message or gives a period and a deadline that fit `Duration` and `Instant`.
    const EXTREMES: &[&str] = &[
        "0",
        "-0",
        "-0.0",
        "+0",
        "NaN",
        "nan",
        "-NaN",
        "inf",
        "-inf",
        "infinity",
        "1e-300",
        "1e-320",
        "4.9e-324",
        "1e-19",
        "1e-7",
        "1e-6",
        "0.5",
        "1e5",
        "100001",
        "1e9",
        "1e19",
        "1.8446744073709552e19",
        "18446744073709551615",
        "18446744073709551616",
        "1e308",
        "1.7976931348623157e308",
        "-1",
        "-1e-300",
        "-1e308",
        "",
        " ",
        "1e",
        "0x10",
        "30fps",
    ];

    #[test]
    fn extreme_frame_rates_are_refused_or_safe() {
        for s in EXTREMES {
            match parse_fps(s) {
                Ok(f) => {
                    let period = std::time::Duration::try_from_secs_f64(1.0 / f)
                        .unwrap_or_else(|e| panic!("--fps {s}: {e}"));
                    let now = std::time::Instant::now();
                    assert!(now.checked_add(period * 1000).is_some(), "--fps {s}");
                }
                Err(e) => assert!(e.contains("frames per second between"), "{s}: {e}"),
            }
        }
        assert!(parse_fps("1e-300").is_err() && parse_fps("1e-19").is_err());
        assert_eq!(parse_fps("30"), Ok(30.0));
    }

    #[test]
    fn extreme_durations_are_refused_or_safe() {
        for s in EXTREMES {
            match parse_seconds(s) {
                Ok(f) => {
                    let d = std::time::Duration::try_from_secs_f64(f)
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                    assert!(
                        std::time::Instant::now().checked_add(d * 2).is_some(),
                        "{s}"
                    );
                }
                Err(e) => assert!(e.contains("number of seconds"), "{s}: {e}"),
            }
        }
        assert_eq!(parse_seconds("-0"), Ok(0.0));
        assert!(parse_seconds("NaN").is_err() && parse_seconds("1e19").is_err());
    }

    #[test]
    fn command_line_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
