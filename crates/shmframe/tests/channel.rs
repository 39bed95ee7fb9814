//! Core behaviour across real processes: torn reads under stress, `kill -9` of a writer mid-publish,
//! corrupt and foreign segments, name reuse, permissions, cleanup. (Take-over after `kill -9`, a
//! reader killed holding a view, start-up order and a second writer are in `faults.rs`.)
//!
//! Writers and readers run as separate processes (the `peer` example) where the behaviour under
//! test crosses a process boundary; the test process itself plays the other side with the library.

mod common;

use common::*;
use shmframe::layout::{off, Geometry, HEADER_REGION};
use shmframe::{channels, CreateError, DType, OpenError, ReadError, Reader, Writer, WriterOptions};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn frames_published(name: &str) -> u64 {
    channels::inspect(name).map_or(0, |s| s.frames)
}

/// ≥ 100,000 frames at full speed, shapes changing every 7 frames (the channel grows), two copying
/// readers and two zero-copy readers checking every byte of every frame they get.
#[test]
fn torn_read_stress_copy_and_view_readers_while_shapes_change() {
    let g = Guard::new("stress");
    let n = g.name.as_str();
    let base = ["read", n, "--until-gone", "--wait", "60", "--timeout", "60"];
    let mut readers: Vec<Proc> = [
        &[][..],
        &["--latest"][..],
        &["--view"][..],
        &["--view", "--latest"][..],
    ]
    .iter()
    .map(|extra| peer(&[&base[..], extra].concat()))
    .collect();
    let mut w = peer(&["write", n, "--frames", "100000", "--vary", "--slots", "4"]);
    let st = w.wait();
    assert!(st.success(), "writer failed: {st}");
    let mut checked = 0;
    for (k, r) in readers.iter_mut().enumerate() {
        let (st, s) = r.summary();
        assert!(st.success(), "reader {k}: {st} {s:?}");
        assert_eq!(s.num("torn"), 0, "reader {k}: {s:?}");
        assert!(s.no_errors(), "reader {k}: {s:?}");
        assert_eq!(s.num("gone"), 1, "reader {k} must end on Closed: {s:?}");
        assert!(s.num("frames") > 0, "reader {k} got nothing: {s:?}");
        assert!(
            s.num("shapes") >= 2,
            "reader {k} saw no shape change: {s:?}"
        );
        checked += s.num("frames");
    }
    eprintln!("stress: 100000 frames published, {checked} frames checked byte by byte, 0 torn");
    assert_eq!(g.leftovers(), Vec::<String>::new());
}

/// The writer dies (SIGKILL) while it holds a loan, frame half written: readers only ever see
/// complete frames, then report `WriterGone`.
#[test]
fn writer_kill9_mid_publish_partial_frame_never_seen() {
    let g = Guard::new("killw");
    let n = g.name.as_str();
    let mut w = peer(&["write", n, "--hold-ms", "150", "--shape", "32x32x3"]);
    w.wait_stderr("writer ready");
    let mut inproc = Reader::open(n).unwrap();
    let mut r = peer(&["read", n, "--until-gone", "--timeout", "60", "--wait", "10"]);
    r.wait_stderr("reader ready");
    eventually("three frames published", || frames_published(n) >= 3);
    // The writer now spends almost all its time asleep inside the loan of the next frame.
    w.kill9();
    let killed = Instant::now();
    let status = channels::inspect(n).unwrap();
    assert!(!status.writer_alive);
    let published = status.frames;
    let mut seen = Vec::new();
    let err = loop {
        match inproc.next(Some(LONG)) {
            Ok(f) => {
                assert!(f.index < published, "frame {} was never published", f.index);
                assert!(is_pattern(f.index, &f.data), "frame {} torn", f.index);
                seen.push(f.index);
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(err, ReadError::WriterGone { .. }), "{err}");
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "{:?}",
        killed.elapsed()
    );
    // The error says who died and what to do.
    let msg = err.to_string();
    assert!(
        msg.contains(&w.pid().to_string()) && msg.contains("restart"),
        "{msg}"
    );
    // And stays reported (no new writer), without hanging.
    assert!(matches!(
        inproc.next(Some(Duration::from_millis(50))),
        Err(ReadError::WriterGone { .. })
    ));
    let (t_gone, _) = r.wait_stderr("is gone");
    assert!(t_gone.duration_since(killed) < Duration::from_secs(5));
    let (st, s) = r.summary();
    assert!(st.success(), "{st} {s:?}");
    assert_eq!(s.num("torn"), 0);
    assert!(s.num("last_index") < published as i64, "{s:?}");
    // The stale object stays until a new writer takes the name over or `rm --stale`.
    assert_eq!(g.leftovers().len(), 1);
}

/// A valid channel's bytes (one frame of 4×4×3 u8 with metadata), to corrupt.
fn valid_segment_bytes(name: &str) -> Vec<u8> {
    shmframe::metadata! {
        struct M { a: u32, b: u32 }
    }
    let mut w = Writer::create(name, WriterOptions::new().slots(2).metadata::<M>()).unwrap();
    w.write_typed::<u8, M>(&[4, 4, 3], &[7; 48], Some(&M { a: 1, b: 2 }))
        .unwrap();
    let bytes = std::fs::read(shm_file(name)).unwrap();
    w.close().unwrap();
    bytes
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// Writes `bytes` as channel `name` directly in /dev/shm and opens it every way a reader can.
/// Returns the error of `Reader::open` (or `None` if it opened).
fn open_crafted(name: &str, bytes: &[u8]) -> Option<OpenError> {
    std::fs::write(shm_file(name), bytes).unwrap();
    let inspected = channels::inspect(name);
    let _ = channels::list();
    let res = match Reader::open(name) {
        Ok(mut r) => {
            // Whatever the slots hold, reading must answer (frame, error or nothing), not crash.
            let _ = r.next(Some(Duration::ZERO));
            let _ = r.latest();
            let _ = r.next_view(Some(Duration::ZERO)).map(|v| v.data().len());
            assert!(inspected.is_ok());
            None
        }
        Err(e) => {
            assert_eq!(
                std::mem::discriminant(&e),
                std::mem::discriminant(&inspected.unwrap_err()),
                "inspect and open disagree"
            );
            Some(e)
        }
    };
    std::fs::remove_file(shm_file(name)).unwrap();
    res
}

#[test]
fn corrupt_foreign_truncated_and_lying_segments_are_refused() {
    let g = Guard::new("corrupt");
    let src = Guard::new("corrupt-src");
    let n = g.name.as_str();
    let good = valid_segment_bytes(&src.name);
    assert!(open_crafted(n, &good).is_none(), "the pristine copy opens");
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        open_crafted(n, &b)
    };
    let is = |e: Option<OpenError>, want: &str| {
        let e = e.unwrap_or_else(|| panic!("expected {want}, it opened"));
        let dbg = format!("{e:?}");
        assert!(dbg.starts_with(want), "expected {want}, got {dbg}");
        // Every refusal names the channel or file and says what to do.
        let msg = e.to_string();
        assert!(msg.contains(n), "{msg}");
    };
    // Not ours at all.
    is(open_crafted(n, &[0xAB; 10000]), "NotOurs");
    is(with(&|b| b[0..8].copy_from_slice(b"NOTOURS!")), "NotOurs");
    is(open_crafted(n, b"hello, world"), "NotOurs");
    // Half initialised: version still 0. Waiting for it ends in a timeout, not a hang.
    is(with(&|b| put_u32(b, off::VERSION, 0)), "Initialising");
    let mut b = good.clone();
    put_u32(&mut b, off::VERSION, 0);
    std::fs::write(shm_file(n), &b).unwrap();
    let t = Instant::now();
    assert!(matches!(
        Reader::open_wait(n, Duration::from_millis(300)),
        Err(OpenError::Timeout { .. })
    ));
    assert!(t.elapsed() < LONG);
    std::fs::remove_file(shm_file(n)).unwrap();
    // Another layout version.
    let e = with(&|b| put_u32(b, off::VERSION, 99));
    assert!(
        matches!(
            &e,
            Some(OpenError::VersionMismatch {
                found: 99,
                expected: 1,
                ..
            })
        ),
        "{e:?}"
    );
    // Truncated: shorter than its header says, or than a header.
    is(open_crafted(n, &good[..good.len() / 2]), "Truncated");
    is(
        open_crafted(n, &good[..HEADER_REGION as usize + 64]),
        "Truncated",
    );
    is(open_crafted(n, &good[..100]), "Truncated");
    is(open_crafted(n, &good[..4]), "Truncated");
    is(open_crafted(n, &[]), "Truncated");
    // A consistent geometry much larger than the file: refused before anything is touched
    // (touching it would be a SIGBUS).
    is(
        with(&|b| {
            let g = Geometry::new(2, 8, 1 << 30).unwrap();
            put_u64(b, 40, g.slot_capacity);
            put_u64(b, 32, g.slot_stride);
            put_u64(b, 16, g.segment_size);
        }),
        "Truncated",
    );
    // Lying sizes, offsets, counts, state, schema.
    for (what, f) in [
        (
            "header size",
            &(|b: &mut Vec<u8>| put_u32(b, 12, 128)) as &dyn Fn(&mut Vec<u8>),
        ),
        ("segment size", &|b| {
            put_u64(b, 16, good.len() as u64 - 4096)
        }),
        ("0 slots", &|b| put_u32(b, 24, 0)),
        ("65 slots", &|b| put_u32(b, 24, 65)),
        ("1 slot", &|b| put_u32(b, 24, 1)),
        ("u32::MAX slots", &|b| put_u32(b, 24, u32::MAX)),
        ("meta size", &|b| put_u32(b, 28, 4)),
        ("huge meta", &|b| put_u32(b, 28, u32::MAX)),
        ("stride", &|b| put_u64(b, 32, 4097)),
        ("capacity", &|b| put_u64(b, 40, u64::MAX)),
        ("state", &|b| put_u32(b, off::STATE, 9)),
        ("schema offset", &|b| put_u32(b, 64, 300)),
        ("schema length", &|b| put_u32(b, 68, 5000)),
        ("schema short", &|b| put_u32(b, 68, 20)),
        ("schema fields", &|b| put_u32(b, 256 + 40, 1000)),
        ("schema dtype", &|b| put_u32(b, 256 + 48 + 32, 77)),
        ("schema bytes", &|b| b[256..256 + 32].fill(0xFF)),
        ("no schema", &|b| put_u32(b, 68, 0)),
        ("payload offset", &|b| put_u32(b, 84, 0)),
        ("meta offset", &|b| put_u32(b, 88, 7)),
    ] {
        let e = with(f);
        assert!(
            matches!(e, Some(OpenError::Corrupt { .. })),
            "{what}: expected Corrupt, got {e:?}"
        );
    }
    // A valid header with an impossible frame: opening works, reading says the frame is corrupt.
    let slot0 = HEADER_REGION as usize;
    for (what, f) in [
        (
            "dtype",
            &(|b: &mut Vec<u8>| put_u32(b, slot0 + off::S_DTYPE, 77)) as &dyn Fn(&mut Vec<u8>),
        ),
        ("ndim", &|b| put_u32(b, slot0 + off::S_NDIM, 9)),
        ("shape overflow", &|b| {
            put_u64(b, slot0 + off::S_SHAPE, u64::MAX)
        }),
        ("payload length", &|b| {
            put_u64(b, slot0 + off::S_PAYLOAD_LEN, 47)
        }),
        ("meta length", &|b| put_u32(b, slot0 + off::S_META_LEN, 5)),
        ("frame larger than the slot", &|b| {
            put_u64(b, slot0 + off::S_SHAPE, 4096);
            put_u64(b, slot0 + off::S_PAYLOAD_LEN, 4096 * 4 * 3);
        }),
    ] {
        let mut b = good.clone();
        f(&mut b);
        std::fs::write(shm_file(n), &b).unwrap();
        let mut r = Reader::open(n).unwrap();
        let e = r.next(Some(Duration::ZERO));
        assert!(
            matches!(e, Err(ReadError::CorruptFrame { .. })),
            "{what}: {e:?}"
        );
        let e = r.next_view(Some(Duration::ZERO)).map(|v| v.index);
        assert!(
            matches!(e, Err(ReadError::CorruptFrame { .. })),
            "{what}: {e:?}"
        );
        assert!(r.latest().is_err(), "{what}");
        std::fs::remove_file(shm_file(n)).unwrap();
    }
}

/// A name can be used again after its channel is removed; a writer whose name was taken by a new
/// channel does not remove the newcomer when it closes.
#[test]
fn name_reuse_after_close_and_after_removal() {
    let g = Guard::new("reuse");
    let n = g.name.as_str();
    let w1 = Writer::create(n, WriterOptions::new()).unwrap();
    w1.close().unwrap();
    assert!(g.leftovers().is_empty());
    let mut w2 = Writer::create(n, WriterOptions::new()).unwrap();
    w2.write(DType::U8, &[3], &[1, 2, 3]).unwrap();
    channels::remove(n).unwrap();
    assert!(g.leftovers().is_empty());
    assert!(matches!(Reader::open(n), Err(OpenError::NotFound { .. })));
    let mut w3 = Writer::create(n, WriterOptions::new()).unwrap();
    let mut r = Reader::open(n).unwrap();
    w2.write(DType::U8, &[3], &[4, 5, 6]).unwrap(); // still publishing, to nobody new
    w3.write(DType::U8, &[2], &[9, 9]).unwrap();
    let w3_capacity = channels::inspect(n).unwrap().slot_capacity;
    // The writer whose channel was removed grows for a larger frame: it must not take the name
    // back from the channel now standing under it.
    w2.write(DType::U8, &[1 << 16], &vec![1; 1 << 16]).unwrap();
    assert_eq!(
        channels::inspect(n).unwrap().slot_capacity,
        w3_capacity,
        "the old writer replaced the new writer's channel"
    );
    drop(w2);
    assert_eq!(g.leftovers().len(), 1, "w2 removed w3's channel");
    let f = r.next(Some(LONG)).unwrap();
    assert_eq!(f.data, [9, 9]);
    w3.close().unwrap();
    assert!(g.leftovers().is_empty());
}

/// Readers that exit, are killed, or drop their `Reader` never remove the channel.
#[test]
fn readers_closing_or_dying_never_remove_the_channel() {
    let g = Guard::new("rclose");
    let n = g.name.to_string();
    let w = Writer::create(&n, WriterOptions::new()).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let pump = std::thread::spawn(move || {
        let mut w = w;
        let mut i = 0;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            w.write(DType::U8, &[16], &pattern_frame(i, 16)).unwrap();
            i += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        w
    });
    let mut ok = peer(&["read", &n, "--frames", "3"]);
    let mut view = peer(&["read", &n, "--frames", "3", "--view"]);
    let mut killed = peer(&["read", &n, "--view", "--hold-ms", "600000"]);
    killed.wait_stderr("reader ready");
    for r in [&mut ok, &mut view] {
        let (st, s) = r.summary();
        assert!(st.success() && s.num("frames") == 3, "{s:?}");
    }
    killed.kill9();
    drop(Reader::open(&n).unwrap());
    assert_eq!(g.leftovers(), vec![format!("shmframe.{n}")]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut w = pump.join().unwrap();
    w.write(DType::U8, &[1], &[1]).unwrap();
    let mut r = Reader::open(&n).unwrap();
    w.write(DType::U8, &[1], &[2]).unwrap();
    // A new reader starts with the newest frame published before it opened.
    assert_eq!(r.next(Some(LONG)).unwrap().data, [1]);
    assert_eq!(r.next(Some(LONG)).unwrap().data, [2]);
    w.close().unwrap();
    assert!(g.leftovers().is_empty());
}

/// Channels are private to their owner unless the writer asks otherwise.
#[test]
fn default_mode_is_0600_and_mode_is_exact() {
    let g = Guard::new("mode");
    let n = g.name.as_str();
    let w = Writer::create(n, WriterOptions::new()).unwrap();
    let mode = std::fs::metadata(shm_file(n)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(channels::inspect(n).unwrap().mode, 0o600);
    drop(w);
    let g2 = Guard::new("mode640");
    let p = peer(&["write", &g2.name, "--mode", "0o640", "--fps", "10"]);
    p.wait_stderr("writer ready");
    let mode = std::fs::metadata(shm_file(&g2.name))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    assert!(matches!(
        Writer::create(n, WriterOptions::new().mode(0o400)),
        Err(CreateError::BadOptions { .. })
    ));
    assert!(g.leftovers().is_empty());
}
