//! Readiness for event loops: a file descriptor (an eventfd) that becomes readable when a reader
//! has something to do — a frame, a close, a grown ring, a dead writer — so that epoll, mio, tokio
//! or asyncio can wait on many channels from one thread.
//!
//! A futex cannot be polled, so a waker thread waits on the bells (the pin tables' futex words)
//! of the readers that are *armed* (they found nothing and asked to be told) all at once with
//! `futex_waitv` (Linux ≥ 5.16), counting itself among each channel's sleepers so that writers
//! ring the bell and call `FUTEX_WAKE` for it (the same handshake as a sleeping reader,
//! `ring::announce_sleep`). When a channel's `wake` word moves it writes the reader's eventfd and
//! disarms it. One thread serves up to [`PER_THREAD`] armed readers; more readers get more
//! threads. Every [`LIVENESS`] it also checks the writers of armed readers and fires for a dead
//! one. On kernels without `futex_waitv` the thread looks at the words every millisecond instead
//! (a light poll; said in the docs).
//!
//! Where the kernel offers io_uring futex waits (Linux ≥ 6.7), a registration waits without the
//! thread: its own small ring queues a `FUTEX_WAIT` on the bell and signals the eventfd when the
//! writer wakes it (`uring.rs`), one wake-up instead of two. The ring defers its completions to
//! the reader's thread, so the writer's wake-up signals the eventfd itself; a reader that moves
//! to another thread gets a new ring there. The thread then only checks those readers' writers
//! for life.

use crate::pins::Pins;
use crate::ring;
use crate::segment::Segment;
use crate::uring::FutexRing;
use rustix::event::{eventfd, EventfdFlags};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::thread::futex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Armed readers one waker thread serves (`futex_waitv` takes 128 words; one is the thread's own
/// control word).
pub(crate) const PER_THREAD: usize = 127;
/// How often armed readers' writers are checked for life.
pub(crate) const LIVENESS: Duration = Duration::from_millis(200);

/// What a waker needs to wait for one armed reader.
struct Armed {
    seg: Arc<Segment>,
    wake_at: usize,
    pins: Arc<Pins>,
    seen: u32,
    /// The value of the bell of `pins` to wait on, read before counting in (see
    /// `ring::announce_sleep`); valid while `counted`.
    rung: u32,
    /// Counted in the channel's sleepers (by the waker thread, or by `arm` for a ring's wait).
    counted: bool,
    /// Waited for by the registration's io_uring: the thread only checks the writer for life.
    uring: bool,
}

/// One reader's registration: its eventfd, and what to wait for while armed.
pub(crate) struct Registration {
    efd: OwnedFd,
    /// The io_uring that waits for the word, where the kernel offers one.
    ring: Mutex<Option<FutexRing>>,
    armed: Mutex<Option<Armed>>,
    /// Set by the waker when it found the writer dead.
    writer_gone: AtomicBool,
    shard: Arc<Shard>,
}

/// A waker thread and the registrations it serves.
struct Shard {
    regs: Mutex<Vec<Weak<Registration>>>,
    /// Process-private futex word: bumped to make the thread look at its registrations again.
    ctl: AtomicU32,
}

static SHARDS: Mutex<Vec<Arc<Shard>>> = Mutex::new(Vec::new());

impl Registration {
    /// A new registration with a thread that has room for it.
    pub fn new() -> Result<Arc<Registration>, Errno> {
        let efd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let mut shards = SHARDS.lock().unwrap_or_else(|p| p.into_inner());
        let free = shards.iter().find(|s| {
            let mut regs = s.regs.lock().unwrap_or_else(|p| p.into_inner());
            regs.retain(|w| w.strong_count() > 0);
            regs.len() < PER_THREAD
        });
        let shard = match free {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(Shard {
                    regs: Mutex::new(Vec::new()),
                    ctl: AtomicU32::new(0),
                });
                let t = s.clone();
                std::thread::Builder::new()
                    .name("shmframe-waker".into())
                    .spawn(move || t.run())
                    .map_err(|_| Errno::AGAIN)?;
                shards.push(s.clone());
                s
            }
        };
        let ring = Mutex::new(FutexRing::new(Some(efd.as_fd())));
        let reg = Arc::new(Registration {
            efd,
            ring,
            armed: Mutex::new(None),
            writer_gone: AtomicBool::new(false),
            shard: shard.clone(),
        });
        shard
            .regs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&reg));
        Ok(reg)
    }

    /// The eventfd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.efd.as_fd()
    }

    /// Takes the ring's completions and empties the eventfd (after a look that found nothing).
    ///
    /// In that order: with deferred completions the kernel signals the eventfd twice for one
    /// wake-up, at the writer's `FUTEX_WAKE` and again when `reap` posts the completion; reading
    /// after reaping takes both, so the second is no spurious wake-up of the event loop.
    pub fn clear(&self) {
        let (mut ring, moved) = self.ring_here();
        if moved {
            // What the old ring watched (the connection's hang-up) completes on its own thread,
            // out of our reach: the reader checks the writer's life at this look instead.
            self.writer_gone.store(true, Ordering::Relaxed);
        }
        if let Some(r) = ring.as_mut() {
            r.reap();
            if r.hung_up() {
                // The reader checks the writer's life (its lock and the connection) on this.
                self.writer_gone.store(true, Ordering::Relaxed);
            }
        }
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.efd, &mut buf);
    }

    /// `true` (once) if the waker found the writer dead.
    pub fn take_writer_gone(&self) -> bool {
        self.writer_gone.swap(false, Ordering::Relaxed)
    }

    /// Puts back what [`Registration::take_writer_gone`] took (the reader had frames to take
    /// first).
    pub fn keep_writer_gone(&self) {
        self.writer_gone.store(true, Ordering::Relaxed);
    }

    /// Asks to be told when the wake word at `wake_at` of `seg` no longer holds `seen` (the value
    /// loaded before the reader last looked for frames).
    /// `hangup`: the connection to a socket-served channel's writer, whose hang-up fires too
    /// (where io_uring watches it; elsewhere the thread's liveness check finds the dead writer).
    pub fn arm(
        &self,
        seg: &Arc<Segment>,
        wake_at: usize,
        pins: &Arc<Pins>,
        seen: u32,
        hangup: Option<Arc<OwnedFd>>,
    ) {
        let mut a = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        disarm(&mut a);
        let mut armed = Armed {
            seg: seg.clone(),
            wake_at,
            pins: pins.clone(),
            seen,
            rung: 0,
            counted: false,
            uring: false,
        };
        let (mut ring, _) = self.ring_here();
        if let Some(r) = ring.as_mut() {
            if let Some(sock) = &hangup {
                r.watch_hangup(sock);
            }
            // The sleeping reader's handshake (`ring::announce_sleep`), then the ring's wait on
            // the bell: a publish after the check, seeing us counted, rings it and wakes the wait.
            armed.counted = true;
            let Some(rung) = ring::announce_sleep(armed.word(), pins.sleepers(), pins.bell(), seen)
            else {
                *a = Some(armed);
                self.fire(&mut a);
                return;
            };
            armed.rung = rung;
            armed.uring = r.wait(pins, rung).is_ok();
            if armed.uring {
                // The thread finds it at its next liveness round; no need to wake it now.
                *a = Some(armed);
                return;
            }
            ring::end_sleep(pins.sleepers());
            armed.counted = false;
        }
        *a = Some(armed);
        drop(a);
        self.shard.ctl.fetch_add(1, Ordering::Release);
        let _ = futex::wake(&self.shard.ctl, futex::Flags::PRIVATE, 1);
    }

    /// Locks the ring of the calling thread: a ring made on another thread (the reader moved)
    /// posts its completions only there, so it is replaced by a new one; `true` if it was.
    fn ring_here(&self) -> (MutexGuard<'_, Option<FutexRing>>, bool) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let moved = ring.as_ref().is_some_and(|r| !r.usable_here());
        if moved {
            *ring = FutexRing::new(Some(self.efd.as_fd()));
        }
        (ring, moved)
    }

    fn fire(&self, a: &mut Option<Armed>) {
        disarm(a);
        let _ = rustix::io::write(&self.efd, &1u64.to_ne_bytes());
    }
}

/// Forgets what `a` waited for, leaving the sleepers it was counted in.
fn disarm(a: &mut Option<Armed>) {
    if let Some(old) = a.take() {
        if old.counted {
            ring::end_sleep(old.pins.sleepers());
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        disarm(self.armed.get_mut().unwrap_or_else(|p| p.into_inner()));
    }
}

impl Armed {
    fn word(&self) -> &AtomicU32 {
        self.seg.atomic_u32(self.wake_at)
    }
}

impl Shard {
    fn run(self: Arc<Self>) {
        let mut waitv_works = true;
        let mut checked = Instant::now();
        loop {
            let ctl_seen = self.ctl.load(Ordering::Acquire);
            let regs: Vec<Arc<Registration>> = {
                let mut regs = self.regs.lock().unwrap_or_else(|p| p.into_inner());
                regs.retain(|w| w.strong_count() > 0);
                regs.iter().filter_map(Weak::upgrade).collect()
            };
            let live_check = checked.elapsed() >= LIVENESS;
            if live_check {
                checked = Instant::now();
            }
            let mut waits = vec![futex::Wait::new(); 1];
            waits[0].uaddr = futex::WaitPtr::new(self.ctl.as_ptr().cast());
            waits[0].val = ctl_seen as u64;
            waits[0].flags = futex::WaitFlags::SIZE_U32 | futex::WaitFlags::PRIVATE;
            for r in &regs {
                let mut g = r.armed.lock().unwrap_or_else(|p| p.into_inner());
                let Some(a) = g.as_mut() else { continue };
                if a.uring {
                    // The ring waits for the word; only the writer's life is ours to check.
                    if live_check && a.seg.writer_alive() == Ok(false) {
                        r.writer_gone.store(true, Ordering::Relaxed);
                        r.fire(&mut g);
                    }
                    continue;
                }
                let moved = if a.counted {
                    // A bell rung by a publish is read with the publish's `wake` (acquire), so a
                    // new value here with `wake` unmoved was rung by no publish: wait on it.
                    let bell = a.pins.bell().load(Ordering::Acquire);
                    let moved = a.word().load(Ordering::Relaxed) != a.seen;
                    a.rung = bell;
                    moved
                } else {
                    a.counted = true;
                    match ring::announce_sleep(a.word(), a.pins.sleepers(), a.pins.bell(), a.seen) {
                        Some(rung) => {
                            a.rung = rung;
                            false
                        }
                        None => true,
                    }
                };
                if moved {
                    r.fire(&mut g);
                    continue;
                }
                if live_check && a.seg.writer_alive() == Ok(false) {
                    r.writer_gone.store(true, Ordering::Relaxed);
                    r.fire(&mut g);
                    continue;
                }
                let mut w = futex::Wait::new();
                w.uaddr = futex::WaitPtr::new(a.pins.bell().as_ptr().cast());
                w.val = a.rung as u64;
                w.flags = futex::WaitFlags::SIZE_U32;
                waits.push(w);
            }
            if waitv_works {
                let until = crate::wake::timespec(
                    Duration::from_nanos(crate::clock::monotonic_ns()) + LIVENESS,
                );
                match futex::waitv(
                    &waits,
                    futex::WaitvFlags::empty(),
                    Some(&until),
                    rustix::time::ClockId::Monotonic,
                ) {
                    Err(Errno::NOSYS) => waitv_works = false,
                    // The registrations (and with them the mappings of the words) stay alive until
                    // the wait is over.
                    _ => {
                        drop(regs);
                        continue;
                    }
                }
            }
            drop(regs);
            // No futex_waitv (Linux < 5.16): look again in a millisecond.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
