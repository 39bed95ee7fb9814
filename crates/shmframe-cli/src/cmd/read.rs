//! `shmframe read NAME`: shows frames in a window (or, headless, a status line), saves PNG
//! snapshots, and reports rate, latency and loss.

use super::endpoint::{Input, Next};
use crate::cli::{Protocol, ReadArgs};
use crate::convert::{self, PixelFormat};
use crate::sink::snapshot::Snapshots;
use crate::sink::stats::Stats;
use crate::sink::window::{self, Window};
use crate::stop;
use anyhow::bail;
use std::time::{Duration, Instant};

/// How long `read` waits for the channel to appear without `--timeout`.
const DEFAULT_OPEN_WAIT: Duration = Duration::from_secs(10);

/// Where frames go besides the statistics.
enum Display {
    /// Not decided yet: the window opens at the first frame (it needs the frame's size).
    Pending,
    /// Frames go to this window.
    Window(Box<Window>),
    /// No window: a status line on stderr.
    Headless,
}

/// Runs `shmframe read`.
pub fn run(a: ReadArgs) -> anyhow::Result<()> {
    let limit = a.timeout.map(Duration::from_secs_f64);
    let Some(mut input) = Input::open(
        &a.name,
        a.protocol == Protocol::Seed,
        limit.unwrap_or(DEFAULT_OPEN_WAIT),
        "shmframe read",
    )?
    else {
        // Ctrl-C or SIGTERM while waiting for the channel: a clean stop with nothing received.
        eprintln!(
            "shmframe read: stopped before channel `{}` appeared",
            a.name
        );
        let stats = Stats::new();
        if a.json {
            println!("{}", stats.json());
        } else {
            eprintln!("shmframe read: {}", stats.summary());
        }
        return Ok(());
    };
    let mut display = if a.headless {
        Display::Headless
    } else if let Some(why) = window::unavailable() {
        eprintln!("shmframe read: {why}: running headless");
        Display::Headless
    } else {
        Display::Pending
    };
    // A window shows the newest frame; headless statistics count every frame in order.
    input.set_latest_only(!matches!(display, Display::Headless));
    let mut snaps = match &a.save {
        Some(dir) => Some(Snapshots::new(dir, &a.name, a.every)?),
        None => None,
    };
    let wait = if a.headless {
        Duration::from_millis(200)
    } else {
        Duration::from_millis(15)
    };
    let started = Instant::now();
    let run_for = a.seconds.map(Duration::from_secs_f64);
    let mut last_frame = Instant::now();
    let mut stats = Stats::new();
    let mut ended = None;
    // Since when the writer is dead, and what the library said.
    let mut gone: Option<(Instant, String)> = None;

    loop {
        if stop::requested()
            || a.frames.is_some_and(|n| stats.frames >= n)
            || run_for.is_some_and(|d| started.elapsed() >= d)
        {
            break;
        }
        if let Display::Window(w) = &display {
            if w.closed() {
                break;
            }
        }
        let f = match input.next(wait)? {
            Next::Frame(f) => f,
            Next::Idle => {
                if let Display::Window(w) = &mut display {
                    w.idle();
                }
                if let Some((since, msg)) = &gone {
                    if since.elapsed() >= limit.unwrap_or(DEFAULT_OPEN_WAIT) {
                        stats.finish_status();
                        bail!(
                            "{msg} (no new writer appeared within {:?})",
                            since.elapsed()
                        );
                    }
                }
                if let Some(limit) = limit {
                    if last_frame.elapsed() >= limit {
                        stats.finish_status();
                        bail!(
                            "no frame on channel `{}` within {limit:?}: is its writer publishing? (`shmframe info {}` shows its state)",
                            a.name,
                            a.name
                        );
                    }
                }
                if matches!(display, Display::Headless) {
                    stats.status(&a.name);
                }
                continue;
            }
            Next::Ended(msg) => {
                ended = Some(msg);
                break;
            }
            Next::Gone(msg) => {
                if gone.is_none() {
                    stats.finish_status();
                    eprintln!("shmframe read: {msg}");
                    gone = Some((Instant::now(), msg));
                }
                if let Display::Window(w) = &mut display {
                    w.idle();
                }
                // Until a new writer appears, the library reports the dead one at once: wait
                // here the interval a frame could have taken.
                std::thread::sleep(wait);
                if let Some((since, msg)) = &gone {
                    if since.elapsed() >= limit.unwrap_or(DEFAULT_OPEN_WAIT) {
                        bail!(
                            "{msg} (no new writer appeared within {:?})",
                            since.elapsed()
                        );
                    }
                }
                continue;
            }
        };
        gone = None;
        last_frame = Instant::now();
        let received = stats.frames;
        if f.intact == Some(false) {
            stats.torn += 1;
        }
        stats.record(f.index, f.missed, f.latency_us, f.shape, f.dtype.name());
        let layout = || convert::frame_layout(f.dtype, f.shape, f.format);
        if let Some(s) = &mut snaps {
            let (w, h, fmt) = layout()?;
            s.offer(received, f.index, w, h, fmt, f.data)?;
        }
        match &mut display {
            Display::Pending => {
                let (w, h, fmt) = layout()?;
                match Window::open(&a.name, w, h) {
                    Ok(mut win) => {
                        show(&mut win, fmt, w, h, f.data)?;
                        display = Display::Window(Box::new(win));
                    }
                    Err(why) => {
                        eprintln!("shmframe read: {why}: running headless");
                        display = Display::Headless;
                    }
                }
            }
            Display::Window(win) => {
                let (w, h, fmt) = layout()?;
                show(win, fmt, w, h, f.data)?;
                if let Some((fps, p50, p99)) = stats.window_rates() {
                    win.set_status(fps, p50, p99, stats.missed);
                }
            }
            Display::Headless => stats.status(&a.name),
        }
    }
    stats.finish_status();

    if let Some(msg) = &ended {
        eprintln!("shmframe read: {msg}");
    }
    if a.json {
        let mut j = stats.json();
        if let Some(path) = snaps.as_ref().and_then(|s| s.last.as_ref()) {
            j["snapshot"] = serde_json::Value::from(path.display().to_string());
        }
        println!("{j}");
    } else {
        eprintln!("shmframe read: {}", stats.summary());
        if let Some(path) = snaps.as_ref().and_then(|s| s.last.as_ref()) {
            eprintln!("shmframe read: last snapshot {}", path.display());
        }
    }
    if let (Some(n), Some(_)) = (a.frames, &ended) {
        if stats.frames < n {
            bail!(
                "the writer closed channel `{}` after this reader got {} of {n} frames",
                a.name,
                stats.frames
            );
        }
    }
    if stats.torn > 0 {
        bail!(
            "{} frames did not match their writer's checksum",
            stats.torn
        );
    }
    Ok(())
}

fn show(win: &mut Window, fmt: PixelFormat, w: usize, h: usize, data: &[u8]) -> anyhow::Result<()> {
    win.show(fmt, w, h, data).map_err(|e| anyhow::anyhow!(e))
}
