//! The two peer processes of every measured row: a writer and one or more readers, each a re-run
//! of the current executable (`… bench --peer writer|reader …`), talking to the orchestrating
//! process over stdin/stdout lines (`ready`, `go`, `done`, then one JSON result).

use crate::pattern::{self, Stamp, END};
use anyhow::{anyhow, bail, Context, Result};
use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::{Duration, Instant};

/// How long a reader waits for a frame before it gives up on the run.
const RECV_TIMEOUT: Duration = Duration::from_secs(20);

/// A transport under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Transport {
    /// shmframe channel.
    Shmframe,
    /// shmframe channel served on a Unix socket (memfd handed over once; the same hot path).
    ShmframeSocket,
    /// iceoryx2 publish-subscribe of `[u8]` slices.
    Iceoryx2,
    /// The article's protocol: `NAME-meta` + `NAME` + a POSIX semaphore.
    Seed,
    /// A Unix domain stream socket: length + payload bytes.
    Uds,
}

impl Transport {
    /// The name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Shmframe => "shmframe",
            Transport::ShmframeSocket => "shmframe socket",
            Transport::Iceoryx2 => "iceoryx2",
            Transport::Seed => "article (seed)",
            Transport::Uds => "unix socket",
        }
    }
}

/// How the reader reads a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum ReadMode {
    /// Zero-copy: verify the check words in place (shmframe `next_view`, an iceoryx2 `Sample`).
    View,
    /// Copy every byte out into a reused buffer, then verify.
    Copy,
}

/// How the reader waits for the next frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum WaitMode {
    /// Busy-wait on a core.
    Spin,
    /// Sleep in the kernel until woken (futex, iceoryx2 event, blocking read).
    Sleep,
    /// Await the frame in a tokio runtime (shmframe's `next_view_async`: the reader's readiness
    /// fd in the runtime's epoll, signalled by the writer's wake-up through an io_uring futex
    /// wait, or by the process's waker thread where io_uring offers none).
    Async,
}

/// Parameters of one peer, passed on its command line.
#[derive(Clone, Debug)]
pub struct PeerSpec {
    pub transport: Transport,
    pub read: ReadMode,
    pub wait: WaitMode,
    pub bytes: usize,
    pub name: String,
    /// Pause between publishes (0: full rate).
    pub period_us: u64,
    /// Frames to publish (a limit, with `seconds`).
    pub frames: u64,
    /// Publishing time limit.
    pub seconds: f64,
    /// Readers to wait for (Unix socket: connections to accept).
    pub readers: usize,
    /// shmframe ring slots.
    pub slots: u32,
    /// A reader asks for a short scheduler time slice before it opens the channel.
    pub low_latency: bool,
}

impl PeerSpec {
    /// Command-line arguments for `role` (after `bench`).
    pub fn args(&self, role: &str) -> Vec<String> {
        fn v<T: clap::ValueEnum>(x: &T) -> String {
            x.to_possible_value().expect("value").get_name().to_string()
        }
        vec![
            "--peer".into(),
            role.into(),
            "--transport".into(),
            v(&self.transport),
            "--read".into(),
            v(&self.read),
            "--wait".into(),
            v(&self.wait),
            "--bytes".into(),
            self.bytes.to_string(),
            "--name".into(),
            self.name.clone(),
            "--period-us".into(),
            self.period_us.to_string(),
            "--frames".into(),
            self.frames.to_string(),
            "--seconds".into(),
            self.seconds.to_string(),
            "--readers".into(),
            self.readers.to_string(),
            "--slots".into(),
            self.slots.to_string(),
        ]
        .into_iter()
        .chain(self.low_latency.then(|| "--low-latency".to_string()))
        .collect()
    }
}

/// What a writer reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WriterResult {
    pub frames: u64,
    /// First to last publish, ns.
    pub wall_ns: u64,
    /// CPU time (user + system) while publishing, ns.
    pub cpu_ns: u64,
}

/// What a reader reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReaderResult {
    pub frames: u64,
    pub missed: u64,
    pub torn: u64,
    /// First to last frame received, ns.
    pub wall_ns: u64,
    /// CPU time from the first frame to the last, ns.
    pub cpu_ns: u64,
    /// A paced run's one-way latencies, ns, in arrival order (empty for a full-rate run: the
    /// parent merges the rounds of a row before it takes percentiles).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lat: Vec<u64>,
}

/// Process CPU time (user + system), ns.
pub fn cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The `q`-quantile of sorted `v`.
pub fn quantile(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

fn line(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}")?;
    out.flush()?;
    Ok(())
}

fn expect_line(want: &str) -> Result<()> {
    let mut l = String::new();
    std::io::stdin().lock().read_line(&mut l)?;
    if l.trim() != want {
        bail!("expected `{want}` from the benchmark, got {l:?}");
    }
    Ok(())
}

fn ice_name(name: &str) -> Result<ServiceName> {
    ServiceName::new(&format!("shmframe-bench/{name}")).map_err(|e| anyhow!("{e:?}"))
}

fn ice_node() -> Result<Node<ipc::Service>> {
    set_log_level(LogLevel::Error);
    NodeBuilder::new()
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .map_err(|e| anyhow!("iceoryx2 node: {e:?}"))
}

/// The socket a socket-served channel of the run is served on.
fn served_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{name}.sock"))
}

fn uds_addr(name: &str) -> Result<SocketAddr> {
    Ok(SocketAddr::from_abstract_name(
        format!("shmframe-bench-{name}").as_bytes(),
    )?)
}

struct IcePub {
    _node: Node<ipc::Service>,
    publisher: Publisher<ipc::Service, [u8], ()>,
    notifier: Notifier<ipc::Service>,
}

// One per process: the size of the enum does not matter.
#[allow(clippy::large_enum_variant)]
enum Pub {
    Shm(shmframe::Writer),
    Ice(Box<IcePub>),
    Seed(shmframe::seed::SeedWriter),
    Uds(UnixListener, Vec<UnixStream>),
}

impl Pub {
    fn create(s: &PeerSpec) -> Result<Pub> {
        Ok(match s.transport {
            Transport::Shmframe | Transport::ShmframeSocket => {
                let mut opts = shmframe::WriterOptions::new()
                    .capacity(s.bytes)
                    .slots(s.slots);
                if s.transport == Transport::ShmframeSocket {
                    opts = opts.socket(served_path(&s.name));
                }
                Pub::Shm(shmframe::Writer::create(&s.name, opts)?)
            }
            Transport::Iceoryx2 => {
                let node = ice_node()?;
                let svc = node
                    .service_builder(&ice_name(&s.name)?)
                    .publish_subscribe::<[u8]>()
                    .max_subscribers(s.readers.max(1))
                    .max_publishers(1)
                    .subscriber_max_buffer_size(2)
                    .subscriber_max_borrowed_samples(1)
                    .history_size(0)
                    .enable_safe_overflow(true)
                    .create()
                    .map_err(|e| anyhow!("iceoryx2 service: {e:?}"))?;
                let publisher = svc
                    .publisher_builder()
                    .initial_max_slice_len(s.bytes)
                    .max_loaned_samples(1)
                    .create()
                    .map_err(|e| anyhow!("iceoryx2 publisher: {e:?}"))?;
                let ev = node
                    .service_builder(&ice_name(&s.name)?)
                    .event()
                    .max_listeners(s.readers.max(1))
                    .create()
                    .map_err(|e| anyhow!("iceoryx2 event service: {e:?}"))?;
                let notifier = ev
                    .notifier_builder()
                    .create()
                    .map_err(|e| anyhow!("iceoryx2 notifier: {e:?}"))?;
                Pub::Ice(Box::new(IcePub {
                    _node: node,
                    publisher,
                    notifier,
                }))
            }
            Transport::Seed => Pub::Seed(shmframe::seed::SeedWriter::create(&s.name)?),
            Transport::Uds => Pub::Uds(UnixListener::bind_addr(&uds_addr(&s.name)?)?, Vec::new()),
        })
    }

    fn accept(&mut self, readers: usize) -> Result<()> {
        if let Pub::Uds(l, conns) = self {
            while conns.len() < readers {
                conns.push(l.accept()?.0);
            }
        }
        Ok(())
    }

    /// Publishes `src` as frame `index`: one full write of the payload by every transport.
    fn publish(&mut self, src: &mut [u8], index: u64, notify: bool) -> Result<()> {
        pattern::mark(src, index);
        match self {
            Pub::Shm(w) => {
                let mut loan = w.loan(shmframe::DType::U8, &[src.len()])?;
                let d = loan.data_mut();
                d.copy_from_slice(src);
                pattern::stamp_time(d);
                loan.publish();
            }
            Pub::Ice(ice) => {
                let IcePub {
                    publisher,
                    notifier,
                    ..
                } = &mut **ice;
                let sample = publisher
                    .loan_slice_uninit(src.len())
                    .map_err(|e| anyhow!("iceoryx2 loan: {e:?}"))?;
                let mut sample = sample.write_from_slice(src);
                pattern::stamp_time(sample.payload_mut());
                sample.send().map_err(|e| anyhow!("iceoryx2 send: {e:?}"))?;
                if notify {
                    notifier
                        .notify()
                        .map_err(|e| anyhow!("iceoryx2 notify: {e:?}"))?;
                }
            }
            Pub::Seed(w) => {
                pattern::stamp_time(src);
                w.write([1, src.len(), 1], src)?;
            }
            Pub::Uds(_, conns) => {
                pattern::stamp_time(src);
                for c in conns {
                    c.write_all(&(src.len() as u64).to_le_bytes())?;
                    c.write_all(src)?;
                }
            }
        }
        Ok(())
    }

    fn close(self) -> Result<()> {
        match self {
            Pub::Shm(w) => w.close()?,
            Pub::Seed(w) => w.close()?,
            Pub::Ice(_) | Pub::Uds(..) => {}
        }
        Ok(())
    }
}

/// The writer peer.
pub fn writer(s: &PeerSpec) -> Result<()> {
    let mut p = Pub::create(s)?;
    let mut src = vec![0x5Au8; s.bytes];
    // Touch the source so page faults do not land in the first measured frames.
    for (i, b) in src.iter_mut().enumerate() {
        *b = i as u8;
    }
    line("ready")?;
    expect_line("go")?;
    p.accept(s.readers)?;
    // iceoryx2 readers that sleep need a notification; spinning ones poll.
    let notify = s.wait == WaitMode::Sleep;
    let period = Duration::from_micros(s.period_us);
    let limit = Duration::from_secs_f64(s.seconds);
    let cpu0 = cpu_ns();
    let t0 = Instant::now();
    let mut last = t0;
    let mut n = 0u64;
    while n < s.frames {
        if !period.is_zero() {
            let due = t0 + period * n as u32;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        p.publish(&mut src, n, notify)?;
        last = Instant::now();
        n += 1;
        if last - t0 >= limit {
            break;
        }
    }
    let result = WriterResult {
        frames: n,
        wall_ns: (last - t0).as_nanos() as u64,
        cpu_ns: cpu_ns() - cpu0,
    };
    // The sentinel ends every reader's loop; resend it until the orchestrator says all are done
    // (a reader that lost it to an overwrite sees the next one).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(expect_line("done"));
    });
    loop {
        p.publish(&mut src, END, true)?;
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(r) => {
                r?;
                break;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => bail!("stdin: {e}"),
        }
        if let Pub::Uds(..) = p {
            // A stream delivers the first sentinel; do not fill the socket with more.
            let _ = rx.recv();
            break;
        }
    }
    p.close()?;
    line(&serde_json::to_string(&result)?)
}

struct IceSub {
    _node: Node<ipc::Service>,
    subscriber: Subscriber<ipc::Service, [u8], ()>,
    listener: Listener<ipc::Service>,
    buf: Vec<u8>,
}

// One per process: the size of the enum does not matter.
#[allow(clippy::large_enum_variant)]
enum Sub {
    Shm(shmframe::Reader, shmframe::Frame),
    ShmAsync(shmframe::Reader, tokio::runtime::Runtime),
    Ice(Box<IceSub>),
    Seed(shmframe::seed::SeedReader, shmframe::seed::SeedFrame),
    Uds(UnixStream, Vec<u8>),
}

impl Sub {
    fn open(s: &PeerSpec) -> Result<Sub> {
        Ok(match s.transport {
            Transport::Shmframe if s.wait == WaitMode::Async => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .context("tokio runtime")?;
                let r = shmframe::Reader::open_wait(&s.name, Duration::from_secs(10))?;
                Sub::ShmAsync(r, rt)
            }
            Transport::Shmframe | Transport::ShmframeSocket => {
                let mut r = if s.transport == Transport::ShmframeSocket {
                    shmframe::Reader::connect_wait(served_path(&s.name), Duration::from_secs(10))?
                } else {
                    shmframe::Reader::open_wait(&s.name, Duration::from_secs(10))?
                };
                if s.wait == WaitMode::Spin {
                    // Longer than any pause between frames: the reader never sleeps.
                    r.set_spin(Duration::from_secs(1));
                }
                Sub::Shm(r, shmframe::Frame::default())
            }
            Transport::Iceoryx2 => {
                let node = ice_node()?;
                let svc = node
                    .service_builder(&ice_name(&s.name)?)
                    .publish_subscribe::<[u8]>()
                    .open()
                    .map_err(|e| anyhow!("iceoryx2 open: {e:?}"))?;
                let subscriber = svc
                    .subscriber_builder()
                    .create()
                    .map_err(|e| anyhow!("iceoryx2 subscriber: {e:?}"))?;
                let ev = node
                    .service_builder(&ice_name(&s.name)?)
                    .event()
                    .open()
                    .map_err(|e| anyhow!("iceoryx2 event open: {e:?}"))?;
                let listener = ev
                    .listener_builder()
                    .create()
                    .map_err(|e| anyhow!("iceoryx2 listener: {e:?}"))?;
                Sub::Ice(Box::new(IceSub {
                    _node: node,
                    subscriber,
                    listener,
                    buf: Vec::new(),
                }))
            }
            Transport::Seed => Sub::Seed(
                shmframe::seed::SeedReader::open_wait(&s.name, Duration::from_secs(10))?,
                shmframe::seed::SeedFrame::default(),
            ),
            Transport::Uds => Sub::Uds(UnixStream::connect_addr(&uds_addr(&s.name)?)?, Vec::new()),
        })
    }

    /// Receives and verifies the next frame: `Ok(None)` if it is torn. The clock is read once
    /// the reader holds the frame (a view or sample not yet released, or the finished copy) and
    /// before the check words are read: the latency is the transport's, not the time to fetch
    /// one word of every page of a large frame, which every transport would pay alike.
    fn recv(&mut self, s: &PeerSpec) -> Result<(Option<Stamp>, u64)> {
        let in_hand = |buf: &[u8]| {
            let now = shmframe::monotonic_ns();
            // Keep the check words' loads after the clock read: without it the compiler may
            // start the first ones (a miss on the frame's first page) before reading the clock.
            std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
            (pattern::verify(buf), now)
        };
        match self {
            Sub::Shm(r, f) => match s.read {
                ReadMode::View => {
                    let v = r.next_view(Some(RECV_TIMEOUT))?;
                    let got = in_hand(v.data());
                    drop(v);
                    Ok(got)
                }
                ReadMode::Copy => {
                    r.next_into(f, Some(RECV_TIMEOUT))?;
                    Ok(in_hand(&f.data))
                }
            },
            Sub::ShmAsync(r, rt) => rt.block_on(async {
                let v = r.next_view_async().await?;
                let got = in_hand(v.data());
                drop(v);
                Ok::<_, anyhow::Error>(got)
            }),
            Sub::Ice(ice) => {
                let IceSub {
                    subscriber,
                    listener,
                    buf,
                    ..
                } = &mut **ice;
                let deadline = Instant::now() + RECV_TIMEOUT;
                loop {
                    let got = subscriber
                        .receive()
                        .map_err(|e| anyhow!("iceoryx2 receive: {e:?}"))?;
                    if let Some(sample) = got {
                        return Ok(match s.read {
                            ReadMode::View => {
                                let got = in_hand(sample.payload());
                                drop(sample);
                                got
                            }
                            ReadMode::Copy => {
                                buf.resize(sample.payload().len(), 0);
                                buf.copy_from_slice(sample.payload());
                                drop(sample);
                                in_hand(buf)
                            }
                        });
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        bail!("iceoryx2: no sample for {RECV_TIMEOUT:?}");
                    }
                    match s.wait {
                        WaitMode::Spin => std::hint::spin_loop(),
                        WaitMode::Sleep | WaitMode::Async => {
                            listener
                                .timed_wait(
                                    |_| {},
                                    (deadline - now).min(Duration::from_millis(100)),
                                )
                                .map_err(|e| anyhow!("iceoryx2 wait: {e:?}"))?;
                        }
                    }
                }
            }
            Sub::Seed(r, f) => {
                r.next_into(f, Some(RECV_TIMEOUT))?;
                Ok(in_hand(&f.data))
            }
            Sub::Uds(c, buf) => {
                let mut len = [0u8; 8];
                c.read_exact(&mut len)?;
                buf.resize(u64::from_le_bytes(len) as usize, 0);
                c.read_exact(buf)?;
                Ok(in_hand(buf))
            }
        }
    }
}

/// The reader peer.
pub fn reader(s: &PeerSpec) -> Result<()> {
    if s.low_latency {
        shmframe::prefer_low_latency().context("--low-latency")?;
    }
    let mut sub = Sub::open(s).context("opening the benchmark channel")?;
    line("ready")?;
    // Latencies are kept for paced runs only (a full-rate run reports rate and CPU time).
    let paced = s.period_us > 0;
    let mut lat = Vec::with_capacity(if paced {
        s.frames.min(1 << 20) as usize
    } else {
        0
    });
    let mut r = ReaderResult::default();
    let mut last: Option<u64> = None;
    let (mut t0, mut cpu0) = (Instant::now(), 0);
    let mut t_last = t0;
    loop {
        let (got, now_ns) = sub.recv(s)?;
        let Some(st) = got else {
            r.torn += 1;
            continue;
        };
        if st.index == END {
            break;
        }
        if last.is_none() {
            t0 = Instant::now();
            cpu0 = cpu_ns();
        }
        t_last = Instant::now();
        r.frames += 1;
        if let Some(l) = last {
            r.missed += st.index.saturating_sub(l + 1);
        } else {
            r.missed += st.index;
        }
        last = Some(st.index);
        if paced {
            lat.push(now_ns.saturating_sub(st.timestamp_ns));
        }
    }
    r.wall_ns = (t_last - t0).as_nanos() as u64;
    r.cpu_ns = if cpu0 == 0 { 0 } else { cpu_ns() - cpu0 };
    r.lat = lat;
    drop(sub);
    line(&serde_json::to_string(&r)?)
}
