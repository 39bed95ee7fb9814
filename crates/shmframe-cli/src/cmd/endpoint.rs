//! Both ends of a stream of frames over either protocol: [`Input`] receives from a native or
//! seed-protocol channel, [`Output`] publishes to one. `read`, `write` and `bridge` share them.

use crate::convert::{PixelFormat, PixelInfo};
use crate::stop;
use anyhow::{bail, Context};
use shmframe::seed::{SeedError, SeedFrame, SeedReader, SeedWriter};
use shmframe::{DType, Frame, OpenError, ReadError, Reader, Writer, WriterOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A frame just received, borrowed from the [`Input`].
pub struct Received<'a> {
    /// Writer's index (native) or count (seed).
    pub index: u64,
    /// Frames skipped since the previous one.
    pub missed: u64,
    /// Receipt time minus publish time, µs (native only: the seed protocol has no timestamp).
    pub latency_us: Option<u64>,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: &'a [usize],
    /// The array's bytes.
    pub data: &'a [u8],
    /// The metadata bytes (empty for the seed protocol).
    pub meta: &'a [u8],
    /// The pixel format named by the frame's metadata.
    pub format: Option<PixelFormat>,
    /// `Some(false)` if the bytes do not match the writer's checksum.
    pub intact: Option<bool>,
}

/// What waiting for a frame gave.
pub enum Next<'a> {
    /// A frame.
    Frame(Received<'a>),
    /// Nothing within the wait.
    Idle,
    /// The writer closed the channel (the message says so).
    Ended(String),
    /// The writer died; a new writer of the same name is picked up by later calls.
    Gone(String),
}

/// A receiving end.
pub enum Input {
    /// A shmframe channel, the frame buffer, and when it was opened (frames published before
    /// that get no latency: their age is backlog, not transport time).
    Native(Box<Reader>, Box<Frame>, u64),
    /// An article-protocol channel.
    Seed(Box<SeedReader>, Box<SeedFrame>, Option<i64>, Vec<usize>),
}

/// The longest a wait for a channel runs without checking for Ctrl-C / SIGTERM.
const OPEN_SLICE: Duration = Duration::from_millis(100);

/// Fails if an object of channel `name` (native, or the seed protocol's `NAME` and `NAME-meta`)
/// exists but is not a regular file: another program owns the name, and opening it could block.
pub fn refuse_non_regular(name: &str, seed: bool) -> anyhow::Result<()> {
    if shmframe::Name::new(name).is_err() {
        return Ok(()); // the library reports the bad name
    }
    let objects = if seed {
        vec![name.to_string(), format!("{name}-meta")]
    } else {
        vec![format!("{}{name}", shmframe::OBJECT_PREFIX)]
    };
    for object in objects {
        let path = Path::new(shmframe::SHM_DIR).join(&object);
        if let Some(kind) = std::fs::symlink_metadata(&path)
            .ok()
            .and_then(|md| shmframe::channels::non_regular(md.file_type()))
        {
            bail!(
                "{} is {kind}, not a shmframe channel: another program owns this name; pick another name",
                path.display()
            );
        }
    }
    Ok(())
}

/// Where a stream of frames is found: a named channel, an article-protocol channel, or a channel
/// served on a Unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// `/dev/shm/shmframe.NAME`.
    Named(String),
    /// The article's objects `NAME`, `NAME-meta` and semaphore `NAME`.
    Seed(String),
    /// A socket-served channel (`--socket PATH`, `socket:PATH`).
    Socket(PathBuf),
}

impl Place {
    /// The place for `name` (or `socket`, if given) in protocol `seed` or native.
    pub fn of(name: Option<&str>, socket: Option<&Path>, seed: bool) -> Place {
        match (socket, name) {
            (Some(p), _) => Place::Socket(p.to_owned()),
            (None, Some(n)) if seed => Place::Seed(n.to_string()),
            (None, n) => Place::Named(n.unwrap_or_default().to_string()),
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Named(n) => write!(f, "channel `{n}`"),
            Place::Seed(n) => write!(f, "seed-protocol channel `{n}`"),
            Place::Socket(p) => write!(f, "the channel served on `{}`", p.display()),
        }
    }
}

impl Input {
    /// Opens the channel at `place`, waiting up to `wait` for it to appear. Waits in slices and
    /// gives up with `Ok(None)` when Ctrl-C or SIGTERM arrives. `who` prefixes the message saying
    /// that it waits.
    pub fn open(place: &Place, wait: Duration, who: &str) -> anyhow::Result<Option<Input>> {
        let start = Instant::now();
        let mut said = false;
        loop {
            if stop::requested() {
                return Ok(None);
            }
            let left = wait.saturating_sub(start.elapsed());
            let slice = left.min(OPEN_SLICE);
            let last = left <= OPEN_SLICE;
            let opened = match place {
                Place::Seed(name) => {
                    refuse_non_regular(name, true)?;
                    match SeedReader::open_wait(name, slice) {
                        Ok(r) => Some(Input::Seed(Box::new(r), Box::default(), None, Vec::new())),
                        Err(SeedError::OpenTimeout { name, missing, .. }) if last => {
                            return Err(SeedError::OpenTimeout {
                                name,
                                waited: start.elapsed(),
                                missing,
                            }
                            .into())
                        }
                        Err(SeedError::OpenTimeout { .. }) => None,
                        Err(e) => return Err(e.into()),
                    }
                }
                Place::Named(name) => {
                    refuse_non_regular(name, false)?;
                    match Reader::open_wait(name, slice) {
                        Ok(r) => Some(Input::native(r)),
                        Err(OpenError::Timeout { name, .. }) if last => {
                            return Err(OpenError::Timeout {
                                name,
                                waited: start.elapsed(),
                            }
                            .into())
                        }
                        Err(OpenError::Timeout { .. }) => None,
                        Err(e) => return Err(e.into()),
                    }
                }
                Place::Socket(path) => match Reader::connect_wait(path, slice) {
                    Ok(r) => Some(Input::native(r)),
                    Err(OpenError::SocketTimeout { path, .. }) if last => {
                        return Err(OpenError::SocketTimeout {
                            path,
                            waited: start.elapsed(),
                        }
                        .into())
                    }
                    Err(OpenError::SocketTimeout { .. }) => None,
                    Err(e) => return Err(e.into()),
                },
            };
            if opened.is_some() {
                return Ok(opened);
            }
            if !said {
                said = true;
                eprintln!("{who}: waiting up to {wait:.1?} for {place} to appear (Ctrl-C stops)");
            }
        }
    }

    fn native(r: Reader) -> Input {
        Input::Native(Box::new(r), Box::default(), shmframe::monotonic_ns())
    }

    /// The channel's name (a socket-served channel's as its writer gave it).
    pub fn name(&self) -> String {
        match self {
            Input::Native(r, ..) => r.name().to_string(),
            Input::Seed(r, ..) => r.name().to_string(),
        }
    }

    /// Native channels: skip to the newest frame on each call (a display wants that).
    pub fn set_latest_only(&mut self, yes: bool) {
        if let Input::Native(r, ..) = self {
            r.set_latest_only(yes);
        }
    }

    /// The metadata schema of a native channel.
    pub fn schema(&self) -> Option<shmframe::Schema> {
        match self {
            Input::Native(r, ..) => r.schema().cloned(),
            Input::Seed(..) => None,
        }
    }

    /// Waits up to `wait` for the next frame.
    pub fn next(&mut self, wait: Duration) -> anyhow::Result<Next<'_>> {
        match self {
            Input::Native(r, f, opened) => match r.next_into(f, Some(wait)) {
                Ok(()) => {
                    let now = shmframe::monotonic_ns();
                    let info = PixelInfo::of(f, r.schema());
                    Ok(Next::Frame(Received {
                        index: f.index,
                        missed: f.missed,
                        latency_us: (f.timestamp_ns >= *opened)
                            .then(|| now.saturating_sub(f.timestamp_ns) / 1000),
                        dtype: f.dtype,
                        shape: &f.shape,
                        data: &f.data,
                        meta: &f.meta,
                        format: info.and_then(|i| i.format()),
                        intact: info.map(|i| i.matches(&f.data)),
                    }))
                }
                Err(ReadError::Timeout { .. }) => Ok(Next::Idle),
                Err(e @ ReadError::Closed { .. }) => Ok(Next::Ended(e.to_string())),
                Err(e @ ReadError::WriterGone { .. }) => Ok(Next::Gone(e.to_string())),
                Err(e) => Err(e.into()),
            },
            Input::Seed(r, f, last, shape) => match r.next_into(f, Some(wait)) {
                Ok(()) => {
                    // Counts come from another process's memory: no arithmetic on them may overflow.
                    let missed = last.map_or(0, |l| {
                        f.count.saturating_sub(l).saturating_sub(1).max(0) as u64
                    });
                    *last = Some(f.count);
                    shape.clear();
                    shape.extend_from_slice(&f.shape);
                    Ok(Next::Frame(Received {
                        index: f.count as u64,
                        missed,
                        latency_us: None,
                        dtype: DType::U8,
                        shape,
                        data: &f.data,
                        meta: &[],
                        format: None,
                        intact: None,
                    }))
                }
                Err(SeedError::Timeout { .. }) => Ok(Next::Idle),
                Err(e @ SeedError::Closed { .. }) => Ok(Next::Ended(e.to_string())),
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// A publishing end.
pub enum Output {
    /// A shmframe channel.
    Native(Box<Writer>),
    /// An article-protocol channel.
    Seed(Box<SeedWriter>),
}

impl Output {
    /// Creates channel `name`. `schema` is the native channel's metadata schema; `capacity` the
    /// expected frame size (the channel grows if a frame is larger).
    pub fn create(
        name: &str,
        seed: bool,
        opts: WriterOptions,
        mode: u32,
    ) -> anyhow::Result<Output> {
        if seed {
            return Ok(Output::Seed(Box::new(SeedWriter::create_with_mode(
                name, mode,
            )?)));
        }
        Ok(Output::Native(Box::new(Writer::create(name, opts)?)))
    }

    /// Publishes one frame. The seed protocol carries only HxWxC `uint8`: a 2-d frame is sent as
    /// HxWx1 and metadata is dropped.
    pub fn write(
        &mut self,
        dtype: DType,
        shape: &[usize],
        data: &[u8],
        meta: &[u8],
    ) -> anyhow::Result<()> {
        match self {
            Output::Native(w) => {
                w.write_with_meta(dtype, shape, data, meta)?;
            }
            Output::Seed(w) => {
                let hwc = match *shape {
                    [h, wd] => [h, wd, 1],
                    [h, wd, c] => [h, wd, c],
                    _ => bail!(
                        "the article's protocol carries HxW or HxWxC frames; this one has shape {shape:?}"
                    ),
                };
                if dtype != DType::U8 {
                    bail!("the article's protocol carries uint8 frames; this one is {dtype}");
                }
                w.write(hwc, data)
                    .context("publishing on the seed channel")?;
            }
        }
        Ok(())
    }

    /// Readers a socket-served channel refused since the last call.
    pub fn refused_peers(&self) -> Vec<shmframe::RefusedPeer> {
        match self {
            Output::Native(w) => w.refused_peers(),
            Output::Seed(_) => Vec::new(),
        }
    }

    /// Closes the channel (removing it, unless a native writer was created with `keep`).
    pub fn close(self) -> anyhow::Result<()> {
        match self {
            Output::Native(w) => w.close()?,
            Output::Seed(w) => w.close()?,
        }
        Ok(())
    }
}
