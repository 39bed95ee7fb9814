//! Hostile and unlucky conditions that the layout version 2 handles and version 1 did not: a close
//! racing a growth, `kill -9` and `fork()` around pins, truncation, FIFOs and symbolic links under
//! a channel's name, fake writer locks, forged stamps, huge sparse objects, a full or corrupt pin
//! table. Each test says what the version 1 code did.
//!
//! Processes are real: the `peer` example, or this binary re-executed in a role ([`role_entry`]).

mod common;

use common::*;
use shmframe::layout::{off, RING_HEADER_REGION};
use shmframe::{channels, DType, OpenError, ReadError, Reader, WriteError, Writer, WriterOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

/// Entry point of the child roles: a no-op test unless this binary was re-executed by [`role`].
#[test]
fn role_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let name = std::env::var("SFT_NAME").expect("SFT_NAME");
    let code = match role.as_str() {
        "write3-then-hang" => write3_then_hang(&name),
        other => panic!("unknown role {other}"),
    };
    std::process::exit(code);
}

/// Role: creates the channel (capacity 0), waits for a line on stdin, publishes three frames that
/// each grow the channel, says so, and hangs until killed.
fn write3_then_hang(name: &str) -> i32 {
    let mut w = Writer::create(name, WriterOptions::new()).expect("create");
    eprintln!("ROLE created");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("stdin");
    for i in 0..3u64 {
        let len = growing_len(i);
        w.write(DType::U8, &[len], &pattern_frame(i, len))
            .expect("write");
    }
    eprintln!("ROLE wrote 3");
    std::thread::sleep(Duration::from_secs(600));
    0
}

/// Frame `i` of the growth tests: each larger than the channel's capacity after frame `i - 1`.
fn growing_len(i: u64) -> usize {
    [1000, 20_000, 300_000][i as usize]
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// Offsets of the current ring's slots in a channel's bytes.
fn slot_offsets(b: &[u8]) -> Vec<usize> {
    let ring = get_u64(b, off::RING) as usize;
    let slots = get_u32(b, ring + 8) as usize;
    let stride = get_u64(b, ring + 16) as usize;
    (0..slots)
        .map(|k| ring + RING_HEADER_REGION as usize + k * stride)
        .collect()
}

/// A real channel (`slots` slots, `frames` frames of 64 bytes in the peer pattern) copied as
/// channel `name`: its object and its pin table, made while the source writer lived. Returns the
/// channel bytes as written.
fn craft_copy(name: &str, slots: u32, frames: u64, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let src = Guard::new("hostile-src");
    let mut w = Writer::create(&src.name, WriterOptions::new().slots(slots).capacity(64)).unwrap();
    for i in 0..frames {
        w.write(DType::U8, &[64], &pattern_frame(i, 64)).unwrap();
    }
    let mut b = std::fs::read(shm_file(&src.name)).unwrap();
    let pins = std::fs::read(pins_file(&src.name)).unwrap();
    w.close().unwrap();
    std::fs::write(pins_file_of(name, get_u64(&b, 16)), pins).unwrap();
    edit(&mut b);
    std::fs::write(shm_file(name), &b).unwrap();
    b
}

/// Runs `f` on a thread and waits at most `limit` for its answer (a hang fails the test instead
/// of blocking the suite).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not return within {limit:?}"))
}

/// a. A reader attached before the first frame receives every frame written right before
/// `close()`, in order, then a clean `Closed`, even when each of those frames grew the channel.
///
/// Version 1 grew a channel by creating a new object and renaming it over the name; a reader
/// re-opened the name to follow. A `close()` right after the growth unlinked the new object
/// before the reader got there: the reader saw its old object closed and lost the frames of the
/// grown one. Version 2 appends rings to the same object, linked from the old ring.
#[test]
fn close_right_after_growing_writes_loses_nothing() {
    for round in 0..20 {
        let g = Guard::new("close-grow");
        let n = g.name.as_str();
        let mut w = Writer::create(n, WriterOptions::new()).unwrap();
        let mut r = peer(&["read", n, "--wait", "10", "--timeout", "10", "--until-gone"]);
        r.wait_stderr("reader ready");
        for i in 0..3u64 {
            let len = growing_len(i);
            assert_eq!(
                w.write(DType::U8, &[len], &pattern_frame(i, len)).unwrap(),
                i
            );
        }
        w.close().unwrap();
        let (_, line) = r.wait_stderr("reader: ");
        assert!(line.contains("closed it"), "round {round}: {line}");
        let (st, s) = r.summary();
        assert!(st.success(), "round {round}: {st} {s:?}");
        assert_eq!(
            (
                s.num("frames"),
                s.num("missed"),
                s.num("last_index"),
                s.num("torn"),
                s.num("gone"),
                s.num("shapes")
            ),
            (3, 0, 2, 0, 1, 3),
            "round {round}: {s:?}"
        );
        assert!(s.no_errors(), "round {round}: {s:?}");
        assert!(
            g.leftovers().is_empty(),
            "round {round}: {:?}",
            g.leftovers()
        );
    }
}

/// b. The writer is killed (`kill -9`) right after three frames that grew its channel: a reader
/// attached before them receives all three, then `WriterGone`.
///
/// Version 1: each growth was a new object under the name; the reader following it could find
/// the writer's lock gone on the newest object before it had read the frames there, or stay on
/// the old object, and report the writer gone with frames unread.
#[test]
fn writer_kill9_after_three_frames_reader_gets_them_all() {
    use std::io::Write;
    let g = Guard::new("kill-after3");
    let n = g.name.as_str();
    let mut w = role_with_stdin("role_entry", "write3-then-hang", &[("SFT_NAME", n)]);
    w.wait_stderr("ROLE created");
    let mut r = peer(&["read", n, "--wait", "10", "--timeout", "30", "--until-gone"]);
    r.wait_stderr("reader ready");
    w.child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    w.wait_stderr("ROLE wrote 3");
    w.kill9();
    let killed = Instant::now();
    let (t, line) = r.wait_stderr("reader: ");
    assert!(line.contains("is gone"), "{line}");
    assert!(t.duration_since(killed) < Duration::from_secs(5));
    let (st, s) = r.summary();
    assert!(st.success(), "{st} {s:?}");
    assert_eq!(
        (
            s.num("frames"),
            s.num("missed"),
            s.num("last_index"),
            s.num("torn"),
            s.num("gone")
        ),
        (3, 0, 2, 0, 1),
        "{s:?}"
    );
    assert!(s.no_errors(), "{s:?}");
}

/// c. A `Reader` copied into a `fork()`ed child refuses to work there (`ReadError::Forked`), and
/// the child dropping its copies of the reader and of a view does not unpin the parent's view:
/// the writer keeps writing and the parent's view never changes.
///
/// Version 1 pinned a slot with an open-file-description read lock on one byte of the channel.
/// Such a lock belongs to the open file description, which `fork()` shares: the child's copy of
/// the view unlocked it when dropped, and the writer then overwrote the parent's "pinned" view.
/// The child's reader also read on as if it were the parent's.
#[test]
#[allow(unsafe_code)]
fn fork_child_cannot_use_or_unpin_the_parents_reader() {
    let g = Guard::new("fork");
    let n = g.name.as_str();
    let mut w = Writer::create(n, WriterOptions::new().slots(3)).unwrap();
    let mut r = Reader::open(n).unwrap();
    let mut index = 0u64;
    let mut write = |w: &mut Writer| {
        w.write(DType::U8, &[4096], &pattern_frame(index, 4096))
            .unwrap();
        index += 1;
    };
    write(&mut w);
    let v = r.next_view(Some(LONG)).unwrap();
    assert_eq!(v.index, 0);
    let before = v.data().to_vec();
    // SAFETY: the child only calls into the reader (plain memory, atomics, fstat), drops its
    // copies, and leaves with `_exit`, running no destructor of the parent's state beyond those
    // it drops explicitly; glibc's malloc is usable in a child of a multi-threaded process.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = match r.next(Some(Duration::from_millis(100))) {
            Err(ReadError::Forked { .. }) => match r.next_view(Some(Duration::ZERO)) {
                Err(ReadError::Forked { .. }) => 0,
                _ => 3,
            },
            Ok(_) => 1,
            Err(_) => 2,
        };
        drop(v);
        drop(r);
        // SAFETY: ends the child at once, without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    // The writer writes on while the child runs, and after it exited.
    for _ in 0..100 {
        write(&mut w);
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x} (exit 0: Forked; 1: it read a frame; 2: another error; 3: a view)"
    );
    for _ in 0..100 {
        write(&mut w);
    }
    assert_eq!(v.data(), &before[..], "the parent's pinned view changed");
    assert!(is_pattern(0, v.data()));
    let s = channels::inspect(n).unwrap();
    assert!(s.slot_frames.contains(&Some(0)), "{:?}", s.slot_frames);
    // The parent's reader still works.
    drop(v);
    let f = r.next(Some(LONG)).unwrap();
    assert!(is_pattern(f.index, &f.data));
    drop(r);
    w.close().unwrap();
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
}

/// d. Someone truncates the channel object to one page while a writer (here) and a reader (a peer
/// process) use it: the reader reports the truncation instead of dying of `SIGBUS`, the writer
/// gets `WriteError::Truncated` once and then re-creates its channel, which a new reader reads.
/// Truncating the pin table kills nobody either.
///
/// Version 1 mapped the object without any `SIGBUS` guard: the first access past the new end
/// killed the reader, and the writer, with `SIGBUS`.
#[test]
fn truncated_objects_are_reported_not_fatal() {
    let g = Guard::new("trunc");
    let n = g.name.as_str();
    let mut w = Writer::create(n, WriterOptions::new().slots(3)).unwrap();
    let mut index = 0u64;
    // Frame indices advance only with frames published.
    let mut write = |w: &mut Writer| {
        let r = w.write(DType::U8, &[8192], &pattern_frame(index, 8192));
        if let Ok(i) = r {
            assert_eq!(i, index);
            index += 1;
        }
        r
    };
    write(&mut w).unwrap();
    let mut r = peer(&["read", n, "--timeout", "10"]);
    r.wait_stderr("reader ready");
    for _ in 0..20 {
        write(&mut w).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let before_truncation = 20;
    std::fs::OpenOptions::new()
        .write(true)
        .open(shm_file(n))
        .unwrap()
        .set_len(4096)
        .unwrap();
    // The writer: Truncated on a write (the first that touches the lost pages), then it recovers.
    let mut truncated = 0;
    let mut ok_after = 0;
    for _ in 0..200 {
        match write(&mut w) {
            Ok(_) if truncated > 0 => ok_after += 1,
            Ok(_) => {}
            Err(WriteError::Truncated { .. }) => truncated += 1,
            Err(e) => panic!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(truncated, 1, "one write reports the truncation");
    assert!(ok_after > 0);
    // The reader process: an error that says "truncated", no SIGBUS.
    let (st, s) = r.summary();
    assert_eq!(st.signal(), None, "the reader died: {st}");
    assert_eq!(s.num("torn"), 0, "{s:?}");
    // A new reader reads the re-created channel.
    let mut r2 = Reader::open(n).unwrap();
    write(&mut w).unwrap();
    let f = r2.next(Some(LONG)).unwrap();
    assert!(is_pattern(f.index, &f.data));
    drop(r2);
    w.close().unwrap();
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
    // The reader either said what happened (the object was truncated: not "closed", the frames
    // in the lost pages were never read) or, when it was waiting at that moment, saw the writer
    // supersede the object in its header page (which truncation to one page keeps) and followed
    // it to the re-created channel: frames after the truncation, none torn.
    assert!(
        s.0.contains("truncated") || s.num("last_index") > before_truncation,
        "{s:?}"
    );
}

/// d (continued). Someone truncates a channel's pin table to 0 bytes while the writer (here), a
/// zero-copy reader process and a reader here use it: nobody dies of `SIGBUS`; the writer goes on
/// (it may report `Truncated` and re-create its channel) and new readers still get frames.
///
/// Version 1 had no pin table; this checks that the second object v2 maps is guarded like the
/// first.
#[test]
fn truncated_pin_table_kills_nobody() {
    let g = Guard::new("trunc-pins");
    let n = g.name.as_str();
    let mut w = Writer::create(n, WriterOptions::new().slots(3)).unwrap();
    let mut index = 0u64;
    let mut write = |w: &mut Writer| {
        let r = w.write(DType::U8, &[256], &pattern_frame(index, 256));
        if let Ok(i) = r {
            assert_eq!(i, index);
            index += 1;
        }
        r
    };
    write(&mut w).unwrap();
    let mut r2 = Reader::open(n).unwrap();
    let mut r3 = peer(&["read", n, "--view", "--timeout", "5"]);
    r3.wait_stderr("reader ready");
    for _ in 0..10 {
        write(&mut w).unwrap();
        let _ = r2.next(Some(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(pins_file(n))
        .unwrap()
        .set_len(0)
        .unwrap();
    let mut errors = Vec::new();
    for _ in 0..200 {
        match write(&mut w) {
            Ok(_) => {}
            Err(e @ WriteError::Truncated { .. }) => errors.push(e.to_string()),
            Err(e) => panic!("{e}"),
        }
        let _ = r2.next(Some(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(2));
    }
    eprintln!("writer errors after truncating the pin table: {errors:?}");
    // The reader process is still alive (or ended with an error it printed), not killed by a
    // signal.
    if r3.child.try_wait().unwrap().is_none() {
        r3.signal(libc::SIGTERM);
        let st = r3.wait();
        assert_eq!(st.signal(), Some(libc::SIGTERM), "{st}");
    } else {
        let (st, s) = r3.summary();
        assert_eq!(st.signal(), None, "the reader process died: {st}");
        eprintln!("reader process: {s:?}");
    }
    // The writer still publishes to new readers.
    let mut r4 = Reader::open(n).unwrap();
    write(&mut w).unwrap();
    let f = r4.next(Some(LONG)).unwrap();
    assert!(is_pattern(f.index, &f.data));
    drop((r2, r4));
    w.close().unwrap();
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
}

/// e. A FIFO under a channel's name: readers and `inspect` refuse it at once (`NotAFile`), and a
/// writer replaces it. A symbolic link under a channel's name, to a file that looks like a stale
/// channel of ours: readers refuse it, and a writer replaces the link without writing through it.
///
/// Version 1 opened the name with a plain `shm_open(O_RDONLY)`: on a FIFO that blocks until a
/// writer opens the FIFO (forever), and a symbolic link was followed, so a new writer marked the
/// link's target superseded (writing into a file outside /dev/shm).
#[test]
fn fifo_and_symlink_under_the_name() {
    let g = Guard::new("fifo");
    let n = g.name.clone();
    let path = std::ffi::CString::new(shm_file(&n).to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let n2 = n.clone();
    let e = within(
        Duration::from_secs(2),
        "Reader::open on a FIFO",
        move || Reader::open(&n2).err(),
    );
    assert!(matches!(e, Some(OpenError::NotAFile { .. })), "{e:?}");
    assert!(e.unwrap().to_string().contains("FIFO"));
    let n2 = n.clone();
    let e = within(Duration::from_secs(2), "inspect on a FIFO", move || {
        channels::inspect(&n2).err()
    });
    assert!(matches!(e, Some(OpenError::NotAFile { .. })), "{e:?}");
    let n2 = n.clone();
    let mut w = within(
        Duration::from_secs(5),
        "Writer::create over a FIFO",
        move || Writer::create(&n2, WriterOptions::new()).unwrap(),
    );
    assert!(std::fs::symlink_metadata(shm_file(&n)).unwrap().is_file());
    let mut r = Reader::open(&n).unwrap();
    w.write(DType::U8, &[3], &[1, 2, 3]).unwrap();
    assert_eq!(r.next(Some(LONG)).unwrap().data, [1, 2, 3]);
    drop(r);
    w.close().unwrap();
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());

    // A symbolic link to a stale-looking channel of ours (a real one, closed with `keep`).
    let gy = Guard::new("symlink");
    let y = gy.name.clone();
    let mut kept = Writer::create(&y, WriterOptions::new().keep(true)).unwrap();
    kept.write(DType::U8, &[16], &pattern_frame(0, 16)).unwrap();
    kept.close().unwrap();
    let bytes = std::fs::read(shm_file(&y)).unwrap();
    for o in gy.leftovers() {
        std::fs::remove_file(format!("/dev/shm/{o}")).unwrap();
    }
    let dir = std::env::temp_dir().join(format!("shmframe-hostile-{}", unique("dir")));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("stale-channel");
    std::fs::write(&target, &bytes).unwrap();
    std::os::unix::fs::symlink(&target, shm_file(&y)).unwrap();
    let e = Reader::open(&y).err();
    assert!(matches!(e, Some(OpenError::NotAFile { .. })), "{e:?}");
    assert!(matches!(
        channels::inspect(&y),
        Err(OpenError::NotAFile { .. })
    ));
    let y2 = y.clone();
    let w = within(
        Duration::from_secs(5),
        "Writer::create over a symlink",
        move || Writer::create(&y2, WriterOptions::new()).unwrap(),
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        bytes,
        "the writer wrote through the symbolic link"
    );
    assert!(std::fs::symlink_metadata(shm_file(&y)).unwrap().is_file());
    w.close().unwrap();
    assert!(target.exists());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(gy.leftovers().is_empty(), "{:?}", gy.leftovers());
}

/// Opens the channel object of `name` read-only, as a reader process would.
fn open_ro(name: &str) -> std::fs::File {
    std::fs::File::open(shm_file(name)).unwrap()
}

/// An open-file-description lock request (`F_OFD_SETLK`) of `kind` on byte 0.
#[allow(unsafe_code)]
fn ofd_lock_byte0(f: &std::fs::File, kind: i32) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: all-zero is a valid `flock`.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 1;
    // SAFETY: a valid descriptor and a valid `flock` for the call's duration.
    unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) == 0 }
}

/// f. A reader holding `flock(LOCK_SH)`, or an open-file-description read lock on byte 0, of the
/// channel object after its writer was killed: a new writer takes the name over (not `Busy`).
///
/// Version 1's writer liveness was an exclusive `flock` on the object: any reader holding a shared
/// `flock` made the new writer's exclusive `flock` fail, so it reported `Busy` for a dead writer.
#[test]
#[allow(unsafe_code)]
fn reader_locks_cannot_fake_a_live_writer() {
    use std::os::fd::AsRawFd;
    for variant in ["flock", "ofd"] {
        let g = Guard::new(&format!("fake-{variant}"));
        let n = g.name.as_str();
        let mut w = peer(&["write", n, "--fps", "100", "--shape", "8x8"]);
        w.wait_stderr("writer ready");
        let f = open_ro(n);
        if variant == "flock" {
            // SAFETY: `f` is an open descriptor that outlives the call.
            let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
            assert_eq!(r, 0);
        }
        // A read lock cannot be taken while the writer holds its lock…
        assert!(!ofd_lock_byte0(&f, libc::F_RDLCK));
        assert!(channels::inspect(n).unwrap().writer_alive);
        w.kill9();
        if variant == "ofd" {
            // …but once it is dead it can, and must not look like a writer.
            assert!(ofd_lock_byte0(&f, libc::F_RDLCK));
        }
        assert!(!channels::inspect(n).unwrap().writer_alive, "{variant}");
        let mut nw = match Writer::create(n, WriterOptions::new()) {
            Ok(nw) => nw,
            Err(e) => panic!("{variant}: {e}"),
        };
        let mut r = Reader::open(n).unwrap();
        nw.write(DType::U8, &[2], &[5, 6]).unwrap();
        assert_eq!(r.next(Some(LONG)).unwrap().data, [5, 6]);
        assert_eq!(r.writer_pid(), std::process::id());
        drop(f);
        drop(r);
        nw.close().unwrap();
        assert!(g.leftovers().is_empty(), "{variant}: {:?}", g.leftovers());
    }
}

/// g. Forged slot stamps claiming frames the writer never published (a huge index, and the index
/// `head`): readers ignore them, report no absurd `missed` count and do not stall.
///
/// Version 1 trusted any even stamp: the forged frame `2^63 - 2` was "the newest", `latest()`
/// returned it with about 2^63 frames missed, and an in-order reader that had received it waited
/// for frames after it forever.
#[test]
fn forged_stamps_of_unpublished_frames_are_ignored() {
    let g = Guard::new("forge");
    let n = g.name.as_str();
    // Four frames in three slots: frames 1, 2, 3 remain, head is 4; a new reader starts after
    // frame 2 (the newest frame published before it opened is 3).
    craft_copy(n, 3, 4, |b| {
        for at in slot_offsets(b) {
            match get_u64(b, at + off::S_STAMP) {
                4 => put_u64(b, at + off::S_STAMP, u64::MAX - 1), // frame 1
                6 => put_u64(b, at + off::S_STAMP, 2 * 4 + 2),    // frame 2 → "frame 4"
                _ => {}
            }
        }
    });
    let t = Instant::now();
    let mut r = Reader::open(n).unwrap();
    assert_eq!(r.frames_published(), 4);
    let f = r.next(Some(Duration::from_millis(200))).unwrap();
    assert_eq!((f.index, f.missed), (3, 0));
    assert!(is_pattern(3, &f.data));
    // Nothing else: the crafted object has no writer, so the reader says so instead of waiting.
    let e = r.next(Some(Duration::from_millis(200))).unwrap_err();
    assert!(matches!(e, ReadError::WriterGone { .. }), "{e}");
    let mut r = Reader::open(n).unwrap();
    let f = r.latest().unwrap().expect("frame 3");
    assert_eq!((f.index, f.missed), (3, 0));
    assert!(r.latest().unwrap().is_none());
    let mut r = Reader::open(n).unwrap();
    r.set_latest_only(true);
    let v = r.next_view(Some(Duration::from_millis(200))).unwrap();
    assert_eq!((v.index, v.missed), (3, 0));
    drop(v);
    let s = channels::inspect(n).unwrap();
    assert_eq!(s.frames, 4);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

/// h. A channel whose version word is still 0 says it may be abandoned, not just "initialising".
///
/// Version 1's message ("still being initialised by its writer…") sent users waiting for a
/// writer that had died creating the channel.
#[test]
fn version_zero_says_initialising_or_abandoned() {
    let g = Guard::new("v0");
    let n = g.name.as_str();
    craft_copy(n, 2, 1, |b| put_u32(b, off::VERSION, 0));
    let e = Reader::open(n).err().expect("refused");
    assert!(matches!(e, OpenError::Initialising { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("initialising (or abandoned"), "{msg}");
    assert!(msg.contains(n), "{msg}");
    assert!(matches!(
        channels::inspect(n),
        Err(OpenError::Initialising { .. })
    ));
}

/// i. A sparse object of 1 PiB under a channel's name: opening answers at once with a clear
/// error, or opens (mapping only what the header needs); never `ENOMEM` from mapping it all.
///
/// Version 1 mapped the whole object on open: `mmap` of 1 PiB fails with `ENOMEM`, reported as
/// an obscure I/O error by every reader and by `shmframe ls`.
#[test]
fn sparse_petabyte_object_is_answered_quickly() {
    let g = Guard::new("sparse");
    let n = g.name.as_str();
    let huge = 1u64 << 50;
    // Just the magic: version 0.
    let mut b = vec![0u8; 4096];
    b[0..8].copy_from_slice(&shmframe::layout::MAGIC);
    std::fs::write(shm_file(n), &b).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(shm_file(n))
        .unwrap()
        .set_len(huge)
        .unwrap();
    let t = Instant::now();
    let e = Reader::open(n).err();
    assert!(matches!(e, Some(OpenError::Initialising { .. })), "{e:?}");
    assert!(matches!(
        channels::inspect(n),
        Err(OpenError::Initialising { .. })
    ));
    let _ = channels::list();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    std::fs::remove_file(shm_file(n)).unwrap();
    // A real channel's bytes, then 1 PiB of holes.
    craft_copy(n, 2, 1, |_| {});
    std::fs::OpenOptions::new()
        .write(true)
        .open(shm_file(n))
        .unwrap()
        .set_len(huge)
        .unwrap();
    let t = Instant::now();
    match Reader::open(n) {
        Ok(mut r) => {
            let f = r.next(Some(Duration::from_millis(100))).unwrap();
            assert!(f.index == 0 && is_pattern(0, &f.data));
            assert_eq!(channels::inspect(n).unwrap().bytes, huge);
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                !matches!(e, OpenError::Io { .. }) && !msg.contains("memory"),
                "{e:?}"
            );
        }
    }
    let _ = channels::list();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

/// Number of pin-table entries that pin a slot right now.
fn entries_pinning(pins: &[u8]) -> usize {
    (0..64)
        .filter(|e| {
            let at = 128 + 64 * e;
            get_u64(pins, at) | get_u64(pins, at + 8) != 0
        })
        .count()
}

/// j. The pin table: 64 readers at once work and a 65th is told `TooManyReaders`; 64 zero-copy
/// reader processes killed while holding views leave entries that are reclaimed (the writer
/// writes on, 64 new readers attach); a corrupt pin table is refused (`Corrupt`), not waited on.
///
/// Version 1 had no pin table (a byte-range lock per pinned slot); this test checks the table
/// that replaced it: its limit, its recovery from dead readers, its validation.
#[test]
fn pin_table_full_reclaimed_and_corrupt() {
    let g = Guard::new("pins");
    let n = g.name.as_str();
    let mut w = Writer::create(n, WriterOptions::new().slots(4)).unwrap();
    let mut index = 0u64;
    // Frame indices advance only with frames published.
    let mut write = |w: &mut Writer| {
        let r = w.write(DType::U8, &[64], &pattern_frame(index, 64));
        if let Ok(i) = r {
            assert_eq!(i, index);
            index += 1;
        }
        r
    };
    write(&mut w).unwrap();
    // 64 readers in this process, each with its own entry.
    let mut readers: Vec<Reader> = (0..64).map(|_| Reader::open(n).unwrap()).collect();
    let e = Reader::open(n).err();
    assert!(
        matches!(e, Some(OpenError::TooManyReaders { max: 64, .. })),
        "{e:?}"
    );
    write(&mut w).unwrap();
    for r in &mut readers {
        let f = r.next(Some(LONG)).unwrap();
        assert!(is_pattern(f.index, &f.data));
    }
    drop(readers);
    assert!(Reader::open(n).is_ok());

    // 64 reader processes, each holding a zero-copy view.
    let mut procs: Vec<Proc> = (0..64)
        .map(|_| peer(&["read", n, "--view", "--hold-ms", "600000", "--frames", "1"]))
        .collect();
    let pins_path = pins_file(n);
    eventually("64 reader processes holding views", || {
        let _ = write(&mut w); // AllSlotsPinned is fair while they really hold them
        std::thread::sleep(Duration::from_millis(5));
        entries_pinning(&std::fs::read(&pins_path).unwrap()) == 64
    });
    assert!(matches!(
        Reader::open(n),
        Err(OpenError::TooManyReaders { .. })
    ));
    for p in &mut procs {
        p.kill9();
    }
    // The writer tests a pinning entry's lock at most every 100 ms.
    std::thread::sleep(Duration::from_millis(250));
    for _ in 0..20 {
        write(&mut w).expect("the dead readers' pins are reclaimed");
    }
    let mut readers: Vec<Reader> = (0..64).map(|_| Reader::open(n).unwrap()).collect();
    for _ in 0..8 {
        write(&mut w).unwrap();
    }
    for r in &mut readers {
        let f = r.next(Some(LONG)).unwrap();
        assert!(is_pattern(f.index, &f.data));
    }
    drop(readers);

    // A corrupt pin table: a new reader is refused at once.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&pins_path)
        .unwrap()
        .write_all_at(b"GARBAGE!", 0)
        .unwrap();
    let n2 = n.to_string();
    let e = within(
        Duration::from_secs(2),
        "Reader::open on a corrupt pin table",
        move || Reader::open(&n2).err(),
    );
    assert!(matches!(e, Some(OpenError::Corrupt { .. })), "{e:?}");
    write(&mut w).unwrap();
    drop(procs);
    w.close().unwrap();
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
}

/// k. One zero-copy reader process reading as fast as it can and a writer of 64-byte frames at
/// full rate for 10 s, 3 slots: the writer never reports `AllSlotsPinned` (the reader holds one
/// view at a time, so a free slot always exists).
///
/// Version 1's writer claimed a slot with a byte-range write lock while readers pinned with read
/// locks; a reader's lock taken while it only looked at a slot (or not yet released) made the
/// writer skip slots, and all three could look pinned at once.
#[test]
fn fast_view_reader_never_makes_the_writer_drop_frames() {
    let g = Guard::new("fast-view");
    let n = g.name.as_str();
    let mut w = Writer::create(n, WriterOptions::new().slots(3).capacity(64)).unwrap();
    let mut r = peer(&["read", n, "--view", "--until-gone", "--timeout", "30"]);
    r.wait_stderr("reader ready");
    let start = Instant::now();
    let (mut written, mut failed, mut errors) = (0u64, 0u64, Vec::new());
    let mut data = vec![0u8; 64];
    while start.elapsed() < Duration::from_secs(10) {
        // Frame `written` in the peer's pattern (indices advance only with frames published).
        for (k, b) in data.iter_mut().enumerate() {
            *b = pattern(written, k);
        }
        match w.write(DType::U8, &[64], &data) {
            Ok(_) => written += 1,
            Err(e) => {
                failed += 1;
                if errors.len() < 5 {
                    errors.push(e.to_string());
                }
            }
        }
    }
    w.close().unwrap();
    let (st, s) = r.summary();
    eprintln!("{written} frames written, {failed} refused; reader {s:?}");
    assert!(
        errors.is_empty(),
        "{failed} of {} writes failed, first: {errors:?}",
        written + failed
    );
    assert!(st.success(), "{st} {s:?}");
    assert_eq!(s.num("torn"), 0, "{s:?}");
    assert!(s.num("frames") > 0 && s.no_errors(), "{s:?}");
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
}

/// l. A reader killed (`kill -9`) while it sleeps in `next()`: the writer keeps writing, the
/// sleeper count the dead reader left behind is cleared, and a new reader still receives frames.
///
/// Version 1 had no sleeper count (the writer woke the futex on every frame); version 2 wakes only
/// when a reader says it sleeps, so a dead sleeper must not leave it (or a new reader) stuck.
#[test]
fn reader_killed_while_sleeping_leaves_the_writer_unharmed() {
    let g = Guard::new("sleep-kill");
    let n = g.name.as_str();
    let mut w = Writer::create(n, WriterOptions::new()).unwrap();
    let mut r = peer(&["read", n, "--timeout", "60"]);
    r.wait_stderr("reader ready");
    let pins_path = pins_file(n);
    let sleepers = || get_u32(&std::fs::read(&pins_path).unwrap(), off::P_SLEEPERS);
    eventually("the reader sleeps", || sleepers() == 1);
    r.kill9();
    let mut i = 0u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    while sleepers() != 0 {
        assert!(
            Instant::now() < deadline,
            "the dead reader's sleep is never cleared"
        );
        for _ in 0..64 {
            w.write(DType::U8, &[32], &pattern_frame(i, 32)).unwrap();
            i += 1;
        }
    }
    let mut r2 = peer(&["read", n, "--frames", "5", "--timeout", "10"]);
    r2.wait_stderr("reader ready");
    let mut r3 = Reader::open(n).unwrap();
    while r2.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the new reader got no frames");
        w.write(DType::U8, &[32], &pattern_frame(i, 32)).unwrap();
        i += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    let (st, s) = r2.summary();
    assert!(
        st.success() && s.num("frames") == 5 && s.no_errors(),
        "{st} {s:?}"
    );
    let f = r3.next(Some(LONG)).unwrap();
    assert!(is_pattern(f.index, &f.data));
    drop(r3);
    w.close().unwrap();
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
}
