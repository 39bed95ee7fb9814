//! Socket-served channels: the channel's memory is an anonymous object (`memfd`), never named in
//! /dev/shm, and the writer hands it to each reader that connects to a Unix socket at a path of
//! the user's choosing, as descriptors (`SCM_RIGHTS`). Peers then need only a shared directory,
//! not a shared IPC namespace, and nothing is left behind when every process is gone: the memory
//! lives exactly as long as some descriptor or mapping of it.
//!
//! The handshake (docs/protocol.md, "Socket-served channels") is one message from writer to
//! reader right after `accept`: a [`Hello`] record, the channel's name, and two descriptors — the
//! channel (read-only) and the pin table (read-write), each a fresh open file description made for
//! this reader through `/proc/self/fd`, so that the reader's pin-entry lock is its own and the
//! writer's lock on the channel is visible to it. The connection then stays open and carries
//! nothing: its hang-up tells the reader that the writer died, as the writer's lock does.

use crate::error::{CreateError, Errno, OpenError};
use crate::layout::{
    Hello, HELLO_ADMITTED, HELLO_MAGIC, HELLO_REFUSED, MAX_HELLO_TEXT, SOCKET_VERSION,
};
use crate::name::Name;
use crate::pins::Entry;
use crate::pins::Pins;
use crate::segment::Segment;
use crate::uring::FutexRing;
use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections a serving writer keeps open at most (readers beyond the pin table's 64 entries
/// are refused when they attach; this bounds what a flood of connections can take).
const MAX_CONNECTIONS: usize = 256;

/// How long a reader waits for the writer's handshake after connecting.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// A peer the writer turned away, for the writer's owner to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedPeer {
    /// The peer's process id (in the writer's PID namespace; 0 if outside it).
    pub pid: u32,
    /// The peer's user id.
    pub uid: u32,
    /// The peer's group id.
    pub gid: u32,
    /// Why, as the peer was told.
    pub reason: String,
}

/// A reader's connection to the writer of a socket-served channel.
pub(crate) struct Link {
    path: PathBuf,
    sock: Arc<OwnedFd>,
    /// The io_uring a blocking reader sleeps in (futex wait and hang-up at once), made at the
    /// first sleep; `None` inside where the kernel has none.
    ring: std::sync::OnceLock<Option<Mutex<FutexRing>>>,
}

impl Link {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection (for a hang-up watch).
    pub fn sock(&self) -> &Arc<OwnedFd> {
        &self.sock
    }

    /// Sleeps like [`Entry::sleep`], woken also by the writer's hang-up where io_uring allows.
    pub fn sleep(
        &self,
        entry: &Entry,
        wake: &AtomicU32,
        seen: u32,
        timeout: Duration,
    ) -> Result<(), Errno> {
        let ring = self
            .ring
            .get_or_init(|| FutexRing::new(None).map(Mutex::new));
        let Some(ring) = ring else {
            return entry.sleep(wake, seen, timeout);
        };
        let mut r = ring.lock().unwrap_or_else(|p| p.into_inner());
        r.watch_hangup(&self.sock);
        entry.sleep_with(wake, seen, |pins, rung| {
            if r.wait(pins, rung).is_err() {
                return crate::wake::wait(pins.bell(), rung, timeout);
            }
            let slept = r.block(timeout);
            r.reap();
            slept
        })
    }

    /// `true` if a sleep saw the writer hang up (no system call).
    pub fn saw_hangup(&self) -> bool {
        self.ring
            .get()
            .and_then(Option::as_ref)
            .is_some_and(|r| r.lock().unwrap_or_else(|p| p.into_inner()).hung_up())
    }

    /// `true` once the writer's end of the connection is closed (the writer process is gone or
    /// closed its channel). One non-blocking `poll`.
    pub fn hung_up(&self) -> bool {
        let mut fds = [PollFd::new(&self.sock, PollFlags::IN | PollFlags::RDHUP)];
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match poll(&mut fds, Some(&zero)) {
            Ok(0) => false,
            Ok(_) => fds[0]
                .revents()
                .intersects(PollFlags::HUP | PollFlags::RDHUP | PollFlags::ERR | PollFlags::IN),
            Err(_) => false,
        }
    }
}

/// What a reader receives from the writer.
pub(crate) struct Admission {
    pub name: Name,
    pub channel: OwnedFd,
    pub pins: OwnedFd,
    pub link: Link,
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

fn unix_addr(path: &Path) -> Result<SocketAddrUnix, Errno> {
    SocketAddrUnix::new(path)
}

fn seqpacket(flags: SocketFlags) -> Result<OwnedFd, Errno> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | flags,
        None,
    )
}

/// Connects to the writer serving `path` and takes the handshake.
pub(crate) fn connect(path: &Path) -> Result<Admission, OpenError> {
    let p = path_str(path);
    let io = |op, e| OpenError::Io {
        name: p.clone(),
        op,
        source: e,
    };
    let sock = seqpacket(SocketFlags::empty()).map_err(|e| io("socket", e))?;
    let addr = unix_addr(path).map_err(|_| OpenError::NotShmframeSocket {
        path: p.clone(),
        what: "the path is too long for a Unix socket (108 bytes at most)".into(),
    })?;
    match rustix::net::connect(&sock, &addr) {
        Ok(()) => {}
        Err(Errno::NOENT) => return Err(OpenError::NoSocket { path: p }),
        Err(Errno::CONNREFUSED) => {
            use std::os::unix::fs::FileTypeExt;
            return Err(match std::fs::symlink_metadata(path) {
                Ok(md) if !md.file_type().is_socket() => OpenError::NotShmframeSocket {
                    what: format!(
                        "it is {}, not a socket",
                        crate::mapped::non_regular(md.file_type()).unwrap_or("a regular file")
                    ),
                    path: p,
                },
                _ => OpenError::StaleSocket { path: p },
            });
        }
        Err(Errno::ACCESS) | Err(Errno::PERM) => {
            use std::os::unix::fs::MetadataExt;
            let md = std::fs::metadata(path).ok();
            return Err(OpenError::SocketDenied {
                mode: md.as_ref().map_or(0, |m| m.mode() & 0o7777),
                uid: md.as_ref().map_or(u32::MAX, |m| m.uid()),
                path: p,
            });
        }
        Err(Errno::PROTOTYPE) | Err(Errno::NOTSOCK) => {
            return Err(OpenError::NotShmframeSocket {
                path: p,
                what: "not a socket of the kind shmframe serves (SOCK_SEQPACKET)".into(),
            })
        }
        Err(e) => return Err(io("connect", e)),
    }
    rustix::net::sockopt::set_socket_timeout(
        &sock,
        rustix::net::sockopt::Timeout::Recv,
        Some(HELLO_TIMEOUT),
    )
    .map_err(|e| io("setsockopt(SO_RCVTIMEO)", e))?;
    let (hello, text, mut fds) = receive_hello(&sock).map_err(|e| match e {
        Errno::AGAIN => OpenError::NotShmframeSocket {
            path: p.clone(),
            what: format!("no handshake within {HELLO_TIMEOUT:?}"),
        },
        // The writer stopped serving (closed or died) between our connect and its accept.
        Errno::CONNRESET => OpenError::StaleSocket { path: p.clone() },
        e => io("recvmsg", e),
    })?;
    let not_ours = |what: String| OpenError::NotShmframeSocket {
        path: p.clone(),
        what,
    };
    let Some(hello) = hello else {
        // The writer closed the connection before saying anything: it is going away.
        return Err(OpenError::StaleSocket { path: p });
    };
    if hello.magic != HELLO_MAGIC {
        return Err(not_ours(
            "its first message is not a shmframe handshake".into(),
        ));
    }
    if hello.version != SOCKET_VERSION {
        return Err(not_ours(format!(
            "handshake version {}, this library speaks {SOCKET_VERSION}: use the same shmframe version on both sides",
            hello.version
        )));
    }
    match hello.status {
        HELLO_REFUSED => Err(OpenError::SocketRefused {
            path: p,
            reason: text,
        }),
        HELLO_ADMITTED if fds.len() == 2 => {
            let name = Name::new(&text).map_err(|e| not_ours(format!("channel name: {e}")))?;
            let pins = fds.pop().expect("two descriptors");
            let channel = fds.pop().expect("two descriptors");
            Ok(Admission {
                name,
                channel,
                pins,
                link: Link {
                    path: path.to_owned(),
                    sock: Arc::new(sock),
                    ring: std::sync::OnceLock::new(),
                },
            })
        }
        HELLO_ADMITTED => Err(not_ours(format!("{} descriptors instead of 2", fds.len()))),
        s => Err(not_ours(format!("unknown handshake status {s}"))),
    }
}

/// Receives the handshake message: its record (`None` if the writer closed the connection), its
/// text, and every descriptor that came with it (closed when dropped, whatever the message).
fn receive_hello(sock: &OwnedFd) -> Result<(Option<Hello>, String, Vec<OwnedFd>), Errno> {
    let mut buf = [0u8; std::mem::size_of::<Hello>() + MAX_HELLO_TEXT];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        match rustix::net::recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    let head = std::mem::size_of::<Hello>();
    if msg.bytes == 0 {
        return Ok((None, String::new(), fds));
    }
    if msg.bytes < head {
        let mut short: Hello = bytemuck::Zeroable::zeroed();
        short.magic = [0; 8];
        return Ok((Some(short), String::new(), fds));
    }
    let hello: Hello = bytemuck::pod_read_unaligned(&buf[..head]);
    let len = (hello.text_len as usize).min(msg.bytes - head);
    let text = String::from_utf8_lossy(&buf[head..head + len]).into_owned();
    Ok((Some(hello), text, fds))
}

/// Sends the handshake message.
fn send_hello(
    sock: BorrowedFd<'_>,
    status: u32,
    text: &str,
    fds: &[BorrowedFd<'_>],
) -> Result<(), Errno> {
    let text = &text.as_bytes()[..text.len().min(MAX_HELLO_TEXT)];
    let hello = Hello {
        magic: HELLO_MAGIC,
        version: SOCKET_VERSION,
        status,
        writer_pid: std::process::id(),
        text_len: text.len() as u32,
    };
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        control.push(SendAncillaryMessage::ScmRights(fds));
    }
    let iov = [IoSlice::new(bytemuck::bytes_of(&hello)), IoSlice::new(text)];
    rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL).map(|_| ())
}

/// The socket file's mode for a channel of mode `mode`: connecting needs write permission, so
/// whoever may read the channel gets read and write on the socket.
fn socket_mode(mode: u32) -> u32 {
    crate::pins::pins_mode(mode)
}

/// A bound, listening socket, before the serving thread runs.
pub(crate) struct Listener {
    path: PathBuf,
    sock: OwnedFd,
    /// The socket file's device, inode and group.
    file: (u64, u64, u32),
    mode: u32,
}

/// Binds a listening socket at `path` for a channel of mode `mode`. A stale socket (nobody
/// listens) is replaced; a live writer's is [`CreateError::SocketInUse`]; anything else at the
/// path is left alone ([`CreateError::NotASocket`]). The check and the bind run under an
/// exclusive `flock` on the directory, so two writers starting at once cannot both replace it.
pub(crate) fn listen(name: &Name, path: &Path, mode: u32) -> Result<Listener, CreateError> {
    let p = path_str(path);
    let err = |op, e| CreateError::Socket {
        name: name.to_string(),
        path: p.clone(),
        op,
        source: e,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let dirfd = rustix::fs::open(
        &dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| err("open(directory)", e))?;
    rustix::fs::flock(&dirfd, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| err("flock(directory)", e))?;
    match std::fs::symlink_metadata(path) {
        Err(_) => {}
        Ok(md) => {
            use std::os::unix::fs::FileTypeExt;
            if !md.file_type().is_socket() {
                return Err(CreateError::NotASocket {
                    path: p,
                    kind: crate::mapped::non_regular(md.file_type()).unwrap_or("a regular file"),
                });
            }
            if let Some(pid) = live_peer(path) {
                return Err(CreateError::SocketInUse { path: p, pid });
            }
            match rustix::fs::unlink(path) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(err("unlink(stale socket)", e)),
            }
        }
    }
    // Bound and listening under a temporary name first, then renamed into place: a reader never
    // finds the socket before it accepts connections (it would take it for a stale one).
    let tmp = dir.join(format!(".shmframe-{:x}.tmp", std::process::id()));
    let (at, addr) = match unix_addr(&tmp) {
        Ok(a) => (tmp.as_path(), a),
        Err(_) => (
            path,
            unix_addr(path).map_err(|e| err("sockaddr_un (path over 108 bytes?)", e))?,
        ),
    };
    let _ = rustix::fs::unlink(at);
    let sock = seqpacket(SocketFlags::NONBLOCK).map_err(|e| err("socket", e))?;
    rustix::net::bind(&sock, &addr).map_err(|e| err("bind", e))?;
    let cleanup = |e: CreateError| {
        let _ = rustix::fs::unlink(at);
        e
    };
    rustix::fs::chmod(at, rustix::fs::Mode::from_raw_mode(socket_mode(mode)))
        .map_err(|e| cleanup(err("chmod", e)))?;
    rustix::net::listen(&sock, 64).map_err(|e| cleanup(err("listen", e)))?;
    if at != path {
        rustix::fs::rename(at, path).map_err(|e| cleanup(err("rename", e)))?;
    }
    let st = rustix::fs::stat(path).map_err(|e| err("stat", e))?;
    Ok(Listener {
        path: path.to_owned(),
        sock,
        file: (st.st_dev, st.st_ino, st.st_gid),
        mode,
    })
}

/// The pid of a live process listening at `path`, if one is (a probe connection).
fn live_peer(path: &Path) -> Option<u32> {
    let sock = seqpacket(SocketFlags::empty()).ok()?;
    match rustix::net::connect(&sock, &unix_addr(path).ok()?) {
        Ok(()) => Some(crate::segment::peer_cred(sock.as_fd()).map_or(0, |(pid, _, _)| pid)),
        // Another kind of socket with a live owner (stream, datagram) is in use all the same.
        Err(Errno::PROTOTYPE) => Some(0),
        Err(_) => None,
    }
}

/// A channel being served: the thread that admits readers, and what it needs to stop.
pub(crate) struct Served {
    path: PathBuf,
    file: (u64, u64),
    stop: OwnedFd,
    thread: Option<std::thread::JoinHandle<()>>,
    refused: Arc<Mutex<Vec<RefusedPeer>>>,
    born: u64,
}

/// What the serving thread hands each admitted reader.
struct Offer {
    name: Name,
    channel: Arc<Segment>,
    pins: Arc<Pins>,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Listener {
    /// Starts the thread that admits readers of channel `name` (whose memory is `channel` and
    /// `pins`).
    pub fn serve(
        self,
        name: &Name,
        channel: Arc<Segment>,
        pins: Arc<Pins>,
    ) -> Result<Served, CreateError> {
        let stop = eventfd(0, EventfdFlags::CLOEXEC).map_err(|e| CreateError::Socket {
            name: name.to_string(),
            path: path_str(&self.path),
            op: "eventfd",
            source: e,
        })?;
        let refused = Arc::new(Mutex::new(Vec::new()));
        let offer = Offer {
            name: name.clone(),
            channel,
            pins,
            mode: self.mode,
            uid: rustix::process::geteuid().as_raw(),
            gid: self.file.2,
        };
        let stop_rx = stop.try_clone().map_err(|e| CreateError::Socket {
            name: name.to_string(),
            path: path_str(&self.path),
            op: "dup",
            source: Errno::from_io_error(&e).unwrap_or(Errno::IO),
        })?;
        let (sock, log) = (self.sock, refused.clone());
        let thread = std::thread::Builder::new()
            .name("shmframe-serve".into())
            .spawn(move || run(sock, stop_rx, offer, log))
            .map_err(|_| CreateError::Socket {
                name: name.to_string(),
                path: path_str(&self.path),
                op: "spawning the serving thread",
                source: Errno::AGAIN,
            })?;
        Ok(Served {
            path: self.path,
            file: (self.file.0, self.file.1),
            stop,
            thread: Some(thread),
            refused,
            born: crate::fork::generation(),
        })
    }
}

/// The serving thread: accepts readers, admits or refuses each, keeps the admitted ones'
/// connections open until they hang up, until told to stop.
fn run(listener: OwnedFd, stop: OwnedFd, offer: Offer, refused: Arc<Mutex<Vec<RefusedPeer>>>) {
    let mut conns: Vec<OwnedFd> = Vec::new();
    loop {
        let (stopped, mut accept, gone) = {
            let mut fds = vec![
                PollFd::new(&stop, PollFlags::IN),
                PollFd::new(&listener, PollFlags::IN),
            ];
            fds.extend(conns.iter().map(|c| PollFd::new(c, PollFlags::IN)));
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(_) => return,
            }
            let gone: Vec<usize> = (0..conns.len())
                .filter(|&i| !fds[i + 2].revents().is_empty())
                .collect();
            (
                !fds[0].revents().is_empty(),
                !fds[1].revents().is_empty(),
                gone,
            )
        };
        if stopped {
            return;
        }
        for i in gone.into_iter().rev() {
            conns.swap_remove(i);
        }
        // The listener does not block: take every pending connection, then poll again.
        while accept {
            match rustix::net::accept_with(&listener, SocketFlags::CLOEXEC) {
                Ok(conn) if conns.len() >= MAX_CONNECTIONS => {
                    let why = format!(
                        "the writer already holds {MAX_CONNECTIONS} connections (the channel serves {} readers at most)",
                        crate::layout::PIN_ENTRIES
                    );
                    let _ = send_hello(conn.as_fd(), HELLO_REFUSED, &why, &[]);
                }
                Ok(conn) => conns.extend(admit(conn, &offer, &refused)),
                Err(Errno::INTR) | Err(Errno::CONNABORTED) => continue,
                Err(_) => accept = false,
            }
        }
    }
}

/// Admits or refuses one connecting reader; returns the connection to keep.
fn admit(conn: OwnedFd, offer: &Offer, refused: &Mutex<Vec<RefusedPeer>>) -> Option<OwnedFd> {
    // A peer in another PID namespace (another container) has pid 0 here.
    let (pid, uid, gid) = crate::segment::peer_cred(conn.as_fd()).ok()?;
    let verdict = match refusal(offer, uid, gid, &crate::segment::peer_groups(conn.as_fd())) {
        Some(reason) => Err(reason),
        None => descriptors(offer),
    };
    match verdict {
        Ok((channel, pins)) => {
            send_hello(
                conn.as_fd(),
                HELLO_ADMITTED,
                offer.name.as_str(),
                &[channel.as_fd(), pins.as_fd()],
            )
            .ok()?;
            Some(conn)
        }
        Err(reason) => {
            // Logged before the peer is told, so that a refused peer is always in the log by
            // the time it knows.
            let mut log = refused.lock().unwrap_or_else(|p| p.into_inner());
            if log.len() < 1024 {
                log.push(RefusedPeer {
                    pid,
                    uid,
                    gid,
                    reason: reason.clone(),
                });
            }
            drop(log);
            let _ = send_hello(conn.as_fd(), HELLO_REFUSED, &reason, &[]);
            None
        }
    }
}

/// Why a peer with these credentials may not read the channel, if it may not: the channel's mode
/// applied to the peer as to a file (owner, group, others), with no exception for root.
fn refusal(offer: &Offer, uid: u32, gid: u32, groups: &[u32]) -> Option<String> {
    let mode = offer.mode;
    let in_group = gid == offer.gid || groups.contains(&offer.gid);
    if uid == offer.uid || (mode & 0o040 != 0 && in_group) || mode & 0o004 != 0 {
        return None;
    }
    Some(format!(
        "channel `{}` (mode {mode:o}) admits uid {}{}; this process runs as uid {uid} gid {gid}: run it as uid {}, or have the writer serve with a group mode (--mode 0o660) and join group {}",
        offer.name,
        offer.uid,
        if mode & 0o040 != 0 {
            format!(" and group {}", offer.gid)
        } else {
            String::new()
        },
        offer.uid,
        offer.gid,
    ))
}

/// A reader's own descriptors: the channel read-only, the pin table read-write, each a new open
/// file description.
fn descriptors(offer: &Offer) -> Result<(OwnedFd, OwnedFd), String> {
    let why = |e: Errno| {
        format!("the writer could not re-open its memory for this reader through /proc/self/fd ({e}); /proc must be mounted where the writer runs")
    };
    let channel = offer.channel.reopen(false).map_err(why)?;
    let pins = offer.pins.reopen_for_reader().map_err(why)?;
    Ok((channel, pins))
}

impl Served {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Peers refused since the last call.
    pub fn take_refused(&self) -> Vec<RefusedPeer> {
        std::mem::take(&mut *self.refused.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Stops admitting readers, hangs up on every connected one and removes the socket file if
    /// it is still ours. Not in a `fork()`ed child (the thread and the socket are the parent's).
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if crate::fork::generation() != self.born {
            std::mem::forget(thread);
            return;
        }
        // The name goes first, so that a reader connecting now finds no socket rather than one
        // that hangs up on it.
        let ours =
            rustix::fs::lstat(&self.path).is_ok_and(|st| (st.st_dev, st.st_ino) == self.file);
        if ours {
            let _ = rustix::fs::unlink(&self.path);
        }
        let _ = rustix::io::write(&self.stop, &1u64.to_ne_bytes());
        let _ = thread.join();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}
