//! `shmframe write NAME`: publishes frames from a source until Ctrl-C, `--frames N`, or the end
//! of a video; then closes (and, unless `--keep`, removes) the channel.

use super::endpoint::Output;
use crate::cli::{Protocol, WriteArgs};
use crate::convert::{pixel_schema, PixelInfo};
use crate::{source, stop};
use shmframe::{DType, WriterOptions};
use std::time::{Duration, Instant};

/// Runs `shmframe write`.
pub fn run(a: WriteArgs) -> anyhow::Result<()> {
    // Check the name before touching a camera or decoding files.
    shmframe::Name::new(&a.name)?;
    // `--fps` is at least cli::MIN_FPS, so the period is at most 1e6 s and `due` below
    // cannot overflow.
    let period = Duration::try_from_secs_f64(1.0 / a.fps)
        .map_err(|_| anyhow::anyhow!("--fps {} gives no usable frame period", a.fps))?;
    let mut src = source::open(&a.source, a.size, a.format, a.fps)?;
    let seed = a.protocol == Protocol::Seed;
    let mut opts = WriterOptions::new()
        .slots(a.slots)
        .mode(a.mode)
        .keep(a.keep)
        .schema(pixel_schema())
        .capacity(a.size.0 * a.size.1 * a.format.channels());
    if let Some(path) = &a.socket {
        opts = opts.socket(path);
    }
    let mut out = Output::create(&a.name, seed, opts, a.mode)?;
    eprintln!(
        "shmframe write: publishing {} as {} on {}channel `{}`{} (pid {}); Ctrl-C stops",
        src.describe(),
        a.format.name(),
        if seed { "seed-protocol " } else { "" },
        a.name,
        a.socket.as_ref().map_or(String::new(), |p| format!(
            ", served on {} (read it with `shmframe read --socket {}`)",
            p.display(),
            p.display()
        )),
        std::process::id()
    );

    let mut due = Instant::now();
    let mut buf = Vec::new();
    let mut published = 0u64;
    let mut dropped = Dropped::default();
    let result = loop {
        if stop::requested() || a.frames.is_some_and(|n| published >= n) {
            break Ok(());
        }
        let (w, h) = match src.next_frame(&mut buf) {
            Ok(Some(size)) => size,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let shape = a.format.shape(w, h);
        let meta = PixelInfo::new(a.format, &buf);
        let written = out.write(DType::U8, &shape, &buf, meta.bytes());
        for p in out.refused_peers() {
            eprintln!(
                "shmframe write: refused a reader (pid {}, uid {}, gid {}): {}",
                p.pid, p.uid, p.gid, p.reason
            );
        }
        match written {
            Ok(()) => published += 1,
            // Readers pinning every slot, or someone truncating the channel, cost a frame, not
            // the writer: count it, say so at most once a second, go on.
            Err(e) if dropped.note(&e) => {}
            Err(e) => break Err(e),
        }
        if a.frames.is_some_and(|n| published >= n) {
            break Ok(()); // not after a last wait of one period
        }
        if !src.paced() {
            due += period;
            let now = Instant::now();
            if due < now {
                // Behind (a slow machine or a huge frame): do not try to catch up in a burst.
                due = now;
            }
            sleep_until(due);
        }
    };

    if a.keep && seed {
        // The seed writer removes its objects when dropped; keeping them means not dropping it.
        std::mem::forget(out);
    } else {
        out.close()?;
    }
    result?;
    match (a.keep, seed) {
        (true, false) => eprintln!(
            "shmframe write: {published} frames; channel `{}` kept (remove it with `shmframe rm {}`)",
            a.name, a.name
        ),
        (true, true) => eprintln!(
            "shmframe write: {published} frames; seed channel `{0}` kept (remove /dev/shm/{0}, /dev/shm/{0}-meta and /dev/shm/sem.{0} when done)",
            a.name
        ),
        (false, _) if a.socket.is_some() => eprintln!(
            "shmframe write: {published} frames; channel `{}` closed, its socket removed",
            a.name
        ),
        (false, _) => eprintln!("shmframe write: {published} frames; channel `{}` removed", a.name),
    }
    Ok(())
}

/// Sleeps until `t`, waking early if a stop was requested.
fn sleep_until(t: Instant) {
    loop {
        let now = Instant::now();
        if now >= t || stop::requested() {
            return;
        }
        std::thread::sleep((t - now).min(Duration::from_millis(50)));
    }
}

/// Frames dropped because of readers or a truncation, warned about at a bounded rate.
#[derive(Default)]
struct Dropped {
    count: u64,
    warned: Option<Instant>,
}

impl Dropped {
    /// `true` if `e` costs one frame and the writer goes on.
    fn note(&mut self, e: &anyhow::Error) -> bool {
        use shmframe::WriteError;
        let droppable = matches!(
            e.downcast_ref::<WriteError>(),
            Some(WriteError::AllSlotsPinned { .. }) | Some(WriteError::Truncated { .. })
        );
        if !droppable {
            return false;
        }
        self.count += 1;
        if self
            .warned
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.warned = Some(Instant::now());
            eprintln!(
                "shmframe write: warning: {e} ({} frames dropped so far)",
                self.count
            );
        }
        true
    }
}
