//! `shmframe read NAME`: shows frames in a window (or, headless, a status line), saves PNG
//! snapshots, and reports rate, latency and loss.

use super::endpoint::{Input, Next, Place, Received};
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
    if a.low_latency {
        // A hint: without it the reader works the same, only waking later.
        if let Err(e) = shmframe::prefer_low_latency() {
            eprintln!("shmframe read: --low-latency: {e}");
        }
    }
    let limit = a.timeout.map(Duration::from_secs_f64);
    let place = Place::of(
        a.name.as_deref(),
        a.socket.as_deref(),
        a.protocol == Protocol::Seed,
    );
    let wait = limit.unwrap_or(DEFAULT_OPEN_WAIT);
    let Some(input) = Input::open(&place, wait, "shmframe read")? else {
        // Ctrl-C or SIGTERM while waiting for the channel: a clean stop with nothing received.
        eprintln!("shmframe read: stopped before {place} appeared");
        return Session::report(&a, "", &mut Stats::new(), None, None);
    };
    let mut session = Session::new(&a, input, limit)?;
    let ended = session.receive()?;
    let name = session.name.clone();
    Session::report(&a, &name, &mut session.stats, session.snaps.as_ref(), ended)
}

/// One `shmframe read` after the channel opened: where frames go, and what has been seen.
struct Session<'a> {
    a: &'a ReadArgs,
    /// The channel's name (a socket-served channel's as its writer gave it).
    name: String,
    input: Input,
    display: Display,
    snaps: Option<Snapshots>,
    stats: Stats,
    /// How long one wait for a frame lasts (a window needs its events handled often).
    wait: Duration,
    /// `--timeout`: for a frame, and for a new writer once the writer is gone.
    limit: Option<Duration>,
    last_frame: Instant,
    /// Since when the writer is dead, and what the library said.
    gone: Option<(Instant, String)>,
}

impl<'a> Session<'a> {
    fn new(a: &'a ReadArgs, mut input: Input, limit: Option<Duration>) -> anyhow::Result<Self> {
        let display = if a.headless {
            Display::Headless
        } else if let Some(why) = window::unavailable() {
            eprintln!("shmframe read: {why}: running headless");
            Display::Headless
        } else {
            Display::Pending
        };
        // A window shows the newest frame; headless statistics count every frame in order.
        input.set_latest_only(!matches!(display, Display::Headless));
        let name = input.name();
        let snaps = match &a.save {
            Some(dir) => Some(Snapshots::new(dir, &name, a.every)?),
            None => None,
        };
        let wait = if a.headless {
            Duration::from_millis(200)
        } else {
            Duration::from_millis(15)
        };
        Ok(Session {
            a,
            name,
            input,
            display,
            snaps,
            stats: Stats::new(),
            wait,
            limit,
            last_frame: Instant::now(),
            gone: None,
        })
    }

    /// Receives until a limit (`--frames`, `--seconds`), Ctrl-C, the window's close or the
    /// writer's close (returned: the library's message).
    fn receive(&mut self) -> anyhow::Result<Option<String>> {
        let started = Instant::now();
        let run_for = self.a.seconds.map(Duration::from_secs_f64);
        loop {
            if stop::requested()
                || self.a.frames.is_some_and(|n| self.stats.frames >= n)
                || run_for.is_some_and(|d| started.elapsed() >= d)
                || matches!(&self.display, Display::Window(w) if w.closed())
            {
                return Ok(None);
            }
            match self.input.next(self.wait)? {
                Next::Frame(f) => {
                    self.gone = None;
                    self.last_frame = Instant::now();
                    let (stats, snaps, display) =
                        (&mut self.stats, &mut self.snaps, &mut self.display);
                    take(&self.name, stats, snaps, display, &f)?;
                }
                Next::Idle => self.idle()?,
                Next::Ended(msg) => return Ok(Some(msg)),
                Next::Gone(msg) => self.writer_gone(msg)?,
            }
        }
    }

    /// No frame within one wait.
    fn idle(&mut self) -> anyhow::Result<()> {
        if let Display::Window(w) = &mut self.display {
            w.idle();
        }
        self.no_new_writer()?;
        if let Some(limit) = self.limit {
            if self.last_frame.elapsed() >= limit {
                self.stats.finish_status();
                bail!(
                    "no frame on channel `{}` within {limit:?}: is its writer publishing? (`shmframe info {}` shows its state)",
                    self.name,
                    match &self.a.socket {
                        Some(p) => format!("--socket {}", p.display()),
                        None => self.name.clone(),
                    }
                );
            }
        }
        if matches!(self.display, Display::Headless) {
            self.stats.status(&self.name);
        }
        Ok(())
    }

    /// The writer is dead: say so once, then wait for a new writer up to the limit.
    fn writer_gone(&mut self, msg: String) -> anyhow::Result<()> {
        if self.gone.is_none() {
            self.stats.finish_status();
            eprintln!("shmframe read: {msg}");
            self.gone = Some((Instant::now(), msg));
        }
        if let Display::Window(w) = &mut self.display {
            w.idle();
        }
        // Until a new writer appears, the library reports the dead one at once: wait here the
        // interval a frame could have taken.
        std::thread::sleep(self.wait);
        self.no_new_writer()
    }

    /// Fails once the writer has been gone for the limit (default [`DEFAULT_OPEN_WAIT`]).
    fn no_new_writer(&mut self) -> anyhow::Result<()> {
        if let Some((since, msg)) = &self.gone {
            if since.elapsed() >= self.limit.unwrap_or(DEFAULT_OPEN_WAIT) {
                self.stats.finish_status();
                bail!(
                    "{msg} (no new writer appeared within {:?})",
                    since.elapsed()
                );
            }
        }
        Ok(())
    }

    /// Prints the summary (or `--json`), then fails if frames were missing or torn.
    fn report(
        a: &ReadArgs,
        name: &str,
        stats: &mut Stats,
        snaps: Option<&Snapshots>,
        ended: Option<String>,
    ) -> anyhow::Result<()> {
        stats.finish_status();
        if let Some(msg) = &ended {
            eprintln!("shmframe read: {msg}");
        }
        let snapshot = snaps.and_then(|s| s.last.as_ref());
        if a.json {
            let mut j = stats.json();
            if let Some(path) = snapshot {
                j["snapshot"] = serde_json::Value::from(path.display().to_string());
            }
            println!("{j}");
        } else {
            eprintln!("shmframe read: {}", stats.summary());
            if let Some(path) = snapshot {
                eprintln!("shmframe read: last snapshot {}", path.display());
            }
        }
        if let (Some(n), Some(_)) = (a.frames, &ended) {
            if stats.frames < n {
                bail!(
                    "the writer closed channel `{name}` after this reader got {} of {n} frames",
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
}

/// One received frame: counted, offered to the snapshots, shown (the window opens at the first).
fn take(
    name: &str,
    stats: &mut Stats,
    snaps: &mut Option<Snapshots>,
    display: &mut Display,
    f: &Received<'_>,
) -> anyhow::Result<()> {
    let received = stats.frames;
    if f.intact == Some(false) {
        stats.torn += 1;
    }
    stats.record(f.index, f.missed, f.latency_us, f.shape, f.dtype.name());
    let layout = || convert::frame_layout(f.dtype, f.shape, f.format);
    if let Some(s) = snaps {
        let (w, h, fmt) = layout()?;
        s.offer(received, f.index, w, h, fmt, f.data)?;
    }
    match display {
        Display::Pending => {
            let (w, h, fmt) = layout()?;
            match Window::open(name, w, h) {
                Ok(mut win) => {
                    show(&mut win, fmt, w, h, f.data)?;
                    *display = Display::Window(Box::new(win));
                }
                Err(why) => {
                    eprintln!("shmframe read: {why}: running headless");
                    *display = Display::Headless;
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
        Display::Headless => stats.status(name),
    }
    Ok(())
}

fn show(win: &mut Window, fmt: PixelFormat, w: usize, h: usize, data: &[u8]) -> anyhow::Result<()> {
    win.show(fmt, w, h, data).map_err(|e| anyhow::anyhow!(e))
}
