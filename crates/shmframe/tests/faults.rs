//! Fault injection with real processes. Each `article_*` test replays a failure of the system the
//! project started from (two Python programs sharing frames through a shared-memory object, a
//! metadata object and a named semaphore) and checks what shmframe does instead. The `hostile_*`
//! tests check that a reader or a forged segment cannot hurt others.

mod common;

use common::*;
use shmframe::layout::{Geometry, HEADER_REGION};
use shmframe::{
    channels, CreateError, DType, NameError, OpenError, ReadError, Reader, Writer, WriterOptions,
};
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
        "blocked-reader" => blocked_reader(&name),
        "scribbler" => scribbler(&name),
        "grow-then-hang" => grow_then_hang(&name),
        other => panic!("unknown role {other}"),
    };
    std::process::exit(code);
}

/// Held by tests that leave an object without a writer lock in /dev/shm on purpose, and by the
/// test that calls `channels::remove_stale` (which would remove those objects under them).
static UNLOCKED_OBJECTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

static SIGNALS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Role: a reader blocked in `next` while signals arrive (handler installed without SA_RESTART,
/// so the futex wait returns EINTR). It must keep waiting and then receive the frame.
fn blocked_reader(name: &str) -> i32 {
    // SAFETY: installs an async-signal-safe handler (one atomic add) for SIGUSR1; the sigaction
    // struct is fully initialised (zeroed, then handler and empty mask set).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = count_signal as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0; // no SA_RESTART: interrupted system calls fail with EINTR
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let mut r = Reader::open(name).expect("open");
    eprintln!("ROLE blocked");
    match r.next(Some(Duration::from_secs(60))) {
        Ok(f) => {
            println!(
                "ROLE got index={} signals={}",
                f.index,
                SIGNALS.load(std::sync::atomic::Ordering::SeqCst)
            );
            0
        }
        Err(e) => {
            println!("ROLE error {e}");
            1
        }
    }
}

/// Role: a reader that tries to write into the channel through its mapping. The mapping is
/// read-only, so the store faults (SIGSEGV) and the process dies; reaching the end is a failure.
fn scribbler(name: &str) -> i32 {
    let mut r = Reader::open(name).expect("open");
    let v = r.next_view(Some(LONG)).expect("view");
    let p = v.data().as_ptr() as *mut u8;
    eprintln!("ROLE scribbling");
    // SAFETY: deliberately unsound: this store targets a read-only shared mapping and is meant to
    // fault with SIGSEGV, killing this child process; the test asserts exactly that. It is never
    // executed in the test process itself.
    unsafe { std::ptr::write_volatile(p, 0xEE) };
    println!("ROLE wrote into the channel");
    2
}

/// Role: a writer that creates its channel without reserving capacity, waits for a line on
/// stdin, then publishes one frame (which grows the channel into a new segment) and hangs.
fn grow_then_hang(name: &str) -> i32 {
    let mut w = Writer::create(name, WriterOptions::new()).expect("create");
    eprintln!("ROLE created");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("stdin");
    w.write(DType::U8, &[64], &pattern_frame(0, 64))
        .expect("write");
    eprintln!("ROLE grown");
    std::thread::sleep(Duration::from_secs(600));
    0
}

/// A reader still attached to the segment a writer replaced when it grew, whose writer then died:
/// the reader follows to the grown segment, gets the frame published there, and reports the
/// writer gone promptly (not after its whole timeout, waiting for a live successor).
#[test]
fn writer_killed_right_after_growing_is_reported_promptly() {
    use std::io::Write;
    let g = Guard::new("growdie");
    let n = g.name.as_str();
    let mut w = role_with_stdin("role_entry", "grow-then-hang", &[("SFT_NAME", n)]);
    w.wait_stderr("ROLE created");
    let mut r = Reader::open(n).unwrap();
    w.child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    w.wait_stderr("ROLE grown");
    w.kill9();
    let killed = Instant::now();
    let f = r
        .next(Some(LONG))
        .expect("the frame published in the grown segment");
    assert!(f.index == 0 && is_pattern(0, &f.data));
    let e = r.next(Some(LONG)).unwrap_err();
    assert!(matches!(e, ReadError::WriterGone { .. }), "{e}");
    let after = killed.elapsed();
    assert!(after < Duration::from_secs(5), "reported after {after:?}");
}

/// Article: the writer crashed mid-write and readers hung on (or read) a half-written frame.
/// Here: readers never see the partial frame, report the writer gone (naming it) within about a
/// second, a new writer takes the stale name over, and the readers resume by themselves: two
/// reader processes (copy and view) and one in the test process, whose first frame from the new
/// writer is its index 0.
#[test]
fn article_writer_kill9_mid_write_restart_readers_resume() {
    const SHAPE: [usize; 3] = [64, 64, 3];
    const LEN: usize = 64 * 64 * 3;
    let g = Guard::new("a-wkill");
    let n = g.name.as_str();
    let mut w = peer(&["write", n, "--hold-ms", "100", "--shape", "64x64x3"]);
    w.wait_stderr("writer ready");
    let args = [
        "read",
        n,
        "--resume",
        "1",
        "--until-gone",
        "--timeout",
        "60",
    ];
    let mut readers = [peer(&args), peer(&[&args[..], &["--view"]].concat())];
    for r in &readers {
        r.wait_stderr("reader ready");
    }
    let mut inproc = Reader::open(n).unwrap();
    assert!(inproc.next(Some(LONG)).is_ok());
    eventually("frames published", || {
        channels::inspect(n).is_ok_and(|s| s.frames >= 3)
    });
    w.kill9();
    let killed = Instant::now();
    let published = channels::inspect(n).unwrap().frames;
    loop {
        match inproc.next(Some(LONG)) {
            Ok(f) => assert!(is_pattern(f.index, &f.data), "frame {} torn", f.index),
            Err(ReadError::WriterGone { pid, .. }) => {
                assert_eq!(pid, w.pid());
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(killed.elapsed() < Duration::from_secs(5));
    for r in &readers {
        let (t, line) = r.wait_stderr("is gone");
        let after = t.duration_since(killed);
        assert!(after < Duration::from_secs(5), "{after:?}: {line}");
        eprintln!("writer death noticed after {after:?}");
    }
    let mut w2 = Writer::create(n, WriterOptions::new()).expect("take over the stale name");
    // The new channel and its pin table; the dead writer's table went with the takeover.
    assert_eq!(g.leftovers().len(), 2, "{:?}", g.leftovers());
    for i in 0..40 {
        w2.write(DType::U8, &SHAPE, &pattern_frame(i, LEN)).unwrap();
        if i == 0 {
            // The in-process reader resumes by itself: a new stream, indices from 0.
            let f = inproc.next(Some(LONG)).unwrap();
            assert_eq!(f.index, 0);
            assert!(is_pattern(0, &f.data));
            assert_eq!(inproc.writer_pid(), std::process::id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    w2.close().unwrap();
    for r in &mut readers {
        let (st, s) = r.summary();
        assert!(st.success(), "{st} {s:?}");
        assert_eq!(s.num("torn"), 0, "{s:?}");
        assert_eq!((s.num("gone"), s.num("resumed")), (2, 1), "{s:?}");
        assert!(s.no_errors(), "{s:?}");
        // Its last frame came from the new writer (indices restart with a new writer).
        assert!(
            s.num("last_index") < 40,
            "{s:?} (old writer published {published})"
        );
    }
    assert!(g.leftovers().is_empty());
}

/// Article: a reader crashed while using the frame (holding the semaphore: the writer blocked
/// forever). Here: a zero-copy reader is killed while holding a view; the writer never errs or
/// waits, even with one of its two slots pinned, and both slots are used again by the next two
/// frames once the reader is gone (and its pin is reclaimed: the first time it is in the way).
#[test]
fn article_reader_kill9_holding_view_writer_unaffected() {
    let g = Guard::new("a-rkill");
    let n = g.name.as_str();
    let mut w = Writer::create(n, WriterOptions::new().slots(2)).unwrap();
    let shape = [8, 8];
    let mut index = 0u64;
    let mut write = |w: &mut Writer| {
        let data = pattern_frame(index, 64);
        assert_eq!(w.write(DType::U8, &shape, &data).unwrap(), index);
        index += 1;
    };
    write(&mut w);
    let mut r = peer(&["read", n, "--view", "--hold-ms", "600000", "--frames", "1"]);
    r.wait_stderr("reader ready");
    // Keep publishing until one slot stays behind: the reader's pinned view.
    eventually("a slot pinned by the reader", || {
        for _ in 0..12 {
            write(&mut w);
        }
        let s = channels::inspect(n).unwrap();
        s.slot_frames
            .iter()
            .any(|f| f.is_some_and(|i| i + 10 < s.frames))
    });
    for _ in 0..100 {
        write(&mut w); // unaffected by the pin: one slot is enough
    }
    r.kill9();
    // The writer tests a pinning reader's lock at most every 100 ms: after that, the dead
    // reader's pin is reclaimed the first time it is in the way.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let head = w.frames_published();
    for _ in 0..2 {
        write(&mut w);
    }
    let s = channels::inspect(n).unwrap();
    assert!(
        s.slot_frames.iter().all(|f| f.is_some_and(|i| i >= head)),
        "every slot reused after the reader died: {:?} (head {head})",
        s.slot_frames
    );
    w.close().unwrap();
    assert_eq!(g.leftovers(), Vec::<String>::new());
}

/// As above with a ring of 32 slots and a slow writer. The dead reader's slot holds a frame it is
/// done with, the slot the writer would rewrite first, so its pin is in the way of every claim;
/// once it has been for 100 ms the writer tests the reader's lock and reclaims the pin, long
/// before the ring comes round (a whole ring behind, a dead reader's entry is reclaimed anyway).
#[test]
fn a_dead_readers_pin_is_reclaimed_long_before_the_ring_comes_round() {
    let g = Guard::new("a-rkill32");
    let n = g.name.as_str();
    let mut w = Writer::create(n, WriterOptions::new().slots(32)).unwrap();
    let mut index = 0u64;
    let mut write = |w: &mut Writer| write_pattern(w, &mut index, 64);
    write(&mut w);
    let mut r = peer(&["read", n, "--view", "--hold-ms", "600000", "--frames", "1"]);
    r.wait_stderr("reader holding 0");
    r.kill9();
    // 12 frames over 1.2 s: the ring (32 slots) does not come round.
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(100));
        write(&mut w);
    }
    let s = channels::inspect(n).unwrap();
    assert!(
        !s.slot_frames.contains(&Some(0)),
        "the dead reader's slot (frame 0) must have been reclaimed and rewritten: {:?}",
        s.slot_frames
    );
    w.close().unwrap();
    assert_eq!(g.leftovers(), Vec::<String>::new());
}

/// Article: the reader had to be started after the writer. Here either order works: readers
/// waiting for a channel create nothing, and attach as soon as its writer appears.
#[test]
fn article_reader_started_first() {
    let g = Guard::new("a-first");
    let n = g.name.as_str();
    let mut readers = [
        peer(&["read", n, "--until-gone", "--wait", "60", "--timeout", "60"]),
        peer(&["read", n, "--wait", "60", "--frames", "5"]),
    ];
    std::thread::sleep(Duration::from_millis(200));
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
    let mut w = peer(&["write", n, "--frames", "200", "--fps", "400"]);
    assert!(w.wait().success());
    for (r, five) in readers.iter_mut().zip([false, true]) {
        let (st, s) = r.summary();
        assert!(
            st.success() && s.num("frames") > 0 && s.no_errors(),
            "{st} {s:?}"
        );
        assert_eq!(s.num("torn"), 0, "{s:?}");
        if five {
            assert_eq!(s.num("frames"), 5, "{s:?}");
        }
    }
    assert!(g.leftovers().is_empty());
}

/// Article: the segment was sized by the first frame; a larger frame broke it. Here frames grow
/// and shrink freely and readers follow, every frame whole and with its own shape.
#[test]
fn article_size_changes_up_and_down() {
    const SHAPES: [[usize; 3]; 4] = [[48, 64, 3], [120, 160, 3], [24, 32, 1], [240, 320, 3]];
    let g = Guard::new("a-size");
    let n = g.name.clone();
    let opener = std::thread::spawn(move || Reader::open_wait(&n, LONG).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    let mut w = peer(&[
        "write", &g.name, "--frames", "120", "--fps", "300", "--vary", "--keep",
    ]);
    let mut r = opener.join().unwrap();
    let (mut ups, mut downs, mut last_len) = (0, 0, None);
    loop {
        match r.next(Some(LONG)) {
            Ok(f) => {
                let want = SHAPES[(f.index / 7) as usize % 4];
                assert_eq!(f.shape, want, "frame {}", f.index);
                assert!(is_pattern(f.index, &f.data), "frame {} torn", f.index);
                match last_len {
                    Some(l) if f.data.len() > l => ups += 1,
                    Some(l) if f.data.len() < l => downs += 1,
                    _ => {}
                }
                last_len = Some(f.data.len());
            }
            Err(ReadError::Closed { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(w.wait().success());
    assert!(ups >= 2 && downs >= 1, "ups {ups}, downs {downs}");
    let s = channels::inspect(&g.name).unwrap();
    assert!(
        s.generation >= 2,
        "the channel grew: generation {}",
        s.generation
    );
    // Growth appends rings to the one object: the channel (kept) and its pin table remain.
    let mut left = g.leftovers();
    left.sort();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left[0].starts_with(&format!("shmframe-pins.{}.", g.name)),
        "{left:?}"
    );
    assert_eq!(left[1], format!("shmframe.{}", g.name), "{left:?}");
}

/// Article: two writers on one name corrupted each other's frames. Here the second is refused,
/// told who holds the name (library and `peer`, which exits 3), and the live channel is untouched.
#[test]
fn article_second_writer_on_live_name() {
    let g = Guard::new("a-two");
    let n = g.name.as_str();
    let w = peer(&["write", n, "--fps", "100"]);
    w.wait_stderr("writer ready");
    let mut w2 = peer(&["write", n, "--frames", "10"]);
    assert_eq!(w2.wait().code(), Some(3));
    let (_, line) = w2.wait_stderr("error:");
    assert!(
        line.contains("already has a live writer") && line.contains(&w.pid().to_string()),
        "{line}"
    );
    match Writer::create(n, WriterOptions::new()) {
        Err(CreateError::Busy { pid, .. }) => assert_eq!(pid, w.pid()),
        Err(e) => panic!("expected Busy, got {e}"),
        Ok(_) => panic!("a second writer was allowed on a live channel"),
    }
    let mut r = Reader::open(n).unwrap();
    assert!(r.next(Some(LONG)).is_ok());
    assert_eq!(r.writer_pid(), w.pid());
}

/// Article: a reader could not tell a silent writer from a dead one (it polled forever). Here a
/// live writer that publishes nothing gives `Timeout`; a dead one gives `WriterGone`.
#[test]
fn article_writer_that_never_writes() {
    let g = Guard::new("a-silent");
    let n = g.name.as_str();
    // Creates the channel, takes a loan and sleeps in it: never publishes.
    let mut w = peer(&["write", n, "--frames", "1", "--hold-ms", "600000"]);
    w.wait_stderr("writer ready");
    let mut r = Reader::open(n).unwrap();
    for _ in 0..2 {
        let e = r.next(Some(Duration::from_millis(700))).unwrap_err();
        assert!(matches!(e, ReadError::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("alive but not publishing"), "{e}");
    }
    assert!(matches!(
        r.next_view(Some(Duration::from_millis(300))),
        Err(ReadError::Timeout { .. })
    ));
    assert!(r.latest().unwrap().is_none());
    assert!(r.writer_alive());
    w.kill9();
    let e = r.next(Some(LONG)).unwrap_err();
    assert!(matches!(e, ReadError::WriterGone { .. }), "{e}");
    assert!(!r.writer_alive());
}

/// Article: the reader slept in one-second polls. Here it sleeps on a futex; signals that
/// interrupt the wait (a handler without SA_RESTART, SIGSTOP/SIGCONT) do not end it early.
#[test]
fn article_signal_during_blocking_wait() {
    let g = Guard::new("a-signal");
    let n = g.name.as_str();
    let mut w = Writer::create(n, WriterOptions::new()).unwrap();
    let mut child = role("role_entry", "blocked-reader", &[("SFT_NAME", n)]);
    child.wait_stderr("ROLE blocked");
    std::thread::sleep(Duration::from_millis(300)); // let it enter the futex wait
    for _ in 0..3 {
        child.signal(libc::SIGUSR1);
        std::thread::sleep(Duration::from_millis(100));
    }
    child.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(200));
    child.signal(libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.child.try_wait().unwrap().is_none(),
        "the blocked reader returned before any frame"
    );
    w.write(DType::U8, &[4], &[1, 2, 3, 4]).unwrap();
    let (_, line) = child.wait_stdout("ROLE ");
    // Signals sent while one is still pending merge into one, so count at least one.
    let got = line.split("ROLE ").nth(1).unwrap_or_default();
    assert!(got.starts_with("got index=0 signals="), "{line}");
    assert!(
        !got.ends_with("signals=0"),
        "no signal reached the blocked reader: {line}"
    );
    assert!(child.wait().success());
    w.close().unwrap();
    assert!(g.leftovers().is_empty());
}

/// Article: frames were used after the shared memory was released. Here a view keeps its mapping:
/// it outlives its reader, and even the writer closing and removing the channel.
#[test]
fn article_frame_view_outlives_reader_and_writer() {
    let g = Guard::new("a-view");
    let n = g.name.as_str();
    let mut w = Writer::create(n, WriterOptions::new()).unwrap();
    let mut r = Reader::open(n).unwrap();
    w.write(DType::U8, &[100], &pattern_frame(5, 100)).unwrap();
    let v = r.next_view(Some(LONG)).unwrap();
    drop(r);
    for i in 0..10 {
        w.write(DType::U8, &[100], &pattern_frame(i, 100)).unwrap();
    }
    assert!(is_pattern(5, v.data()), "the pinned view changed");
    w.close().unwrap();
    assert!(g.leftovers().is_empty());
    assert!(is_pattern(5, v.data()));
    assert_eq!(v.to_frame().data.len(), 100);
    drop(v);
}

/// Article: a crashed run left its objects and semaphore behind and the next run failed. Here
/// stale channels are reported, removed with `remove_stale`, or simply taken over.
#[test]
fn article_stale_objects_from_crashed_run() {
    let _serial = UNLOCKED_OBJECTS.lock().unwrap_or_else(|p| p.into_inner());
    let live = Guard::new("a-live");
    let stale = Guard::new("a-stale");
    let taken = Guard::new("a-taken");
    let mut lw = Writer::create(&live.name, WriterOptions::new()).unwrap();
    lw.write(DType::U8, &[1], &[1]).unwrap();
    for g in [&stale, &taken] {
        let mut w = peer(&["write", &g.name, "--fps", "100"]);
        w.wait_stderr("writer ready");
        w.kill9();
    }
    // A temporary object of a writer that died while creating a channel.
    let tmp = format!("/dev/shm/shmframe.{}.tmp-999999999-0", stale.name);
    std::fs::write(&tmp, [0u8; 64]).unwrap();
    let (good, broken) = channels::list();
    let st = good.iter().find(|c| c.name == stale.name).expect("listed");
    assert!(!st.writer_alive && st.state == "open");
    assert!(good.iter().any(|c| c.name == live.name && c.writer_alive));
    assert!(broken.iter().any(|b| tmp.ends_with(&b.object)));
    // Automatic take-over of one stale channel…
    let mut tw = Writer::create(&taken.name, WriterOptions::new()).expect("take over");
    tw.write(DType::U8, &[1], &[2]).unwrap();
    // …and explicit removal of the rest, sparing live channels.
    let removed = channels::remove_stale();
    eprintln!("removed {removed:?}");
    assert!(stale.leftovers().is_empty(), "{:?}", stale.leftovers());
    // A live channel, and the one taken over: each its object and its pin table.
    assert_eq!(live.leftovers().len(), 2, "{:?}", live.leftovers());
    assert_eq!(taken.leftovers().len(), 2, "{:?}", taken.leftovers());
    let mut r = Reader::open(&live.name).unwrap();
    assert_eq!(r.next(Some(LONG)).unwrap().data, [1]);
    tw.close().unwrap();
    lw.close().unwrap();
    assert!(live.leftovers().is_empty() && taken.leftovers().is_empty());
}

/// A reader process that writes through its mapping dies with SIGSEGV; the channel is intact.
#[test]
fn hostile_reader_cannot_modify_the_channel() {
    let g = Guard::new("h-scribble");
    let n = g.name.as_str();
    let mut w = Writer::create(n, WriterOptions::new().slots(2)).unwrap();
    w.write(DType::U8, &[64], &pattern_frame(0, 64)).unwrap();
    let mut child = role("role_entry", "scribbler", &[("SFT_NAME", n)]);
    child.wait_stderr("ROLE scribbling");
    let st = child.wait();
    assert_eq!(st.signal(), Some(libc::SIGSEGV), "{st}");
    let mut r = Reader::open(n).unwrap();
    let f = r.next(Some(LONG)).unwrap();
    assert!(f.index == 0 && is_pattern(0, &f.data));
    w.write(DType::U8, &[64], &pattern_frame(1, 64)).unwrap();
    assert!(is_pattern(1, &r.next(Some(LONG)).unwrap().data));
    w.close().unwrap();
}

/// A forged channel whose (valid-looking) ring claims 64 slots of 1 GiB in a two-page object is
/// refused by a reader process (no SIGBUS, no hang), and a writer replaces it.
#[test]
fn hostile_lying_header_is_refused() {
    use shmframe::layout::{off, LAYOUT_VERSION, PINS_MAGIC, PINS_SIZE, PIN_ENTRIES};
    let _serial = UNLOCKED_OBJECTS.lock().unwrap_or_else(|p| p.into_inner());
    let g = Guard::new("h-lie");
    let n = g.name.as_str();
    let geom = Geometry::new(64, 0, 1 << 30, HEADER_REGION).unwrap();
    assert!(geom.ring_end() > 64 << 30);
    let lineage: u64 = 0x5eed_0000_0000_0001;
    let mut b = vec![0u8; HEADER_REGION as usize + 4096];
    b[0..8].copy_from_slice(&shmframe::layout::MAGIC);
    let put32 =
        |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    let put64 =
        |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    put32(&mut b, off::VERSION, LAYOUT_VERSION);
    put32(&mut b, 12, HEADER_REGION as u32);
    put64(&mut b, 16, lineage);
    put32(&mut b, 32, 1); // writer pid
    put32(&mut b, 40, 256); // schema offset
    put32(&mut b, 48, PIN_ENTRIES);
    put64(&mut b, off::RING, HEADER_REGION);
    let at = HEADER_REGION as usize;
    b[at..at + 64].copy_from_slice(shmframe::__bytemuck::bytes_of(&geom.ring_fixed(0)));
    std::fs::write(shm_file(n), &b).unwrap();
    // A matching pin table, so that nothing but the lie stands in the way.
    let mut p = vec![0u8; PINS_SIZE as usize];
    p[0..8].copy_from_slice(&PINS_MAGIC);
    put32(&mut p, 8, LAYOUT_VERSION);
    put32(&mut p, 12, PIN_ENTRIES);
    put64(&mut p, 16, lineage);
    let pins = format!("/dev/shm/shmframe-pins.{n}.{lineage:016x}");
    std::fs::write(&pins, &p).unwrap();
    let t = Instant::now();
    let mut r = peer(&["read", n, "--wait", "5", "--frames", "1"]);
    let st = r.wait();
    assert_eq!(st.code(), Some(5), "{st}");
    let (_, line) = r.wait_stdout("open_error");
    assert!(line.contains("truncated"), "{line}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(matches!(Reader::open(n), Err(OpenError::Truncated { .. })));
    assert!(matches!(
        channels::inspect(n),
        Err(OpenError::Truncated { .. })
    ));
    // The forged object holds no writer lock: a real writer takes the name over (and removes the
    // forged pin table with it).
    let w = Writer::create(n, WriterOptions::new()).unwrap();
    assert!(Reader::open(n).is_ok());
    assert!(!std::path::Path::new(&pins).exists());
    w.close().unwrap();
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
}

/// Names cannot reach outside /dev/shm or collide with temporaries.
#[test]
fn hostile_names_cannot_escape_dev_shm() {
    for bad in [
        "../x",
        "a/b",
        "/abs",
        "..",
        ".",
        "x/../../etc",
        "a\0b",
        "",
        "a.tmp-1-2",
    ] {
        let c = Writer::create(bad, WriterOptions::new()).err();
        assert!(matches!(c, Some(CreateError::Name(_))), "{bad:?}: {c:?}");
        assert!(
            matches!(Reader::open(bad), Err(OpenError::Name(_))),
            "{bad:?}"
        );
        assert!(
            matches!(Reader::open_wait(bad, LONG), Err(OpenError::Name(_))),
            "{bad:?} must fail at once"
        );
        assert!(channels::inspect(bad).is_err(), "{bad:?}");
        assert!(channels::remove(bad).is_err(), "{bad:?}");
    }
    assert!(!std::path::Path::new("/dev/x").exists());
    assert!(!std::path::Path::new("/dev/shm/x").exists());
    let e = Writer::create("../x", WriterOptions::new()).err().unwrap();
    assert!(
        matches!(e, CreateError::Name(NameError::BadChar { ch: '/', .. })),
        "{e:?}"
    );
}
