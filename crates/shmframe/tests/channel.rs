//! Core behaviour across real processes: torn reads under stress, `kill -9` of a writer mid-publish,
//! corrupt and foreign segments, name reuse, permissions, cleanup. (Take-over after `kill -9`, a
//! reader killed holding a view, start-up order and a second writer are in `faults.rs`.)
//!
//! Writers and readers run as separate processes (the `peer` example) where the behaviour under
//! test crosses a process boundary; the test process itself plays the other side with the library.

mod common;

use common::*;
use shmframe::layout::{off, Geometry, HEADER_REGION, RING_HEADER_REGION};
use shmframe::{channels, CreateError, DType, OpenError, ReadError, Reader, Writer, WriterOptions};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// The objects a channel standing under `name` has in /dev/shm: its own object and its pin table
/// (named after the lineage in its header), sorted as [`Guard::leftovers`] may be.
fn channel_objects(name: &str) -> Vec<String> {
    let b = std::fs::read(shm_file(name)).expect("the channel object");
    let lineage = u64::from_ne_bytes(b[16..24].try_into().unwrap());
    let mut v = vec![
        format!("shmframe.{name}"),
        format!("shmframe-pins.{name}.{lineage:016x}"),
    ];
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

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
    // The stale object (and its pin table) stays until a new writer takes the name over or
    // `rm --stale`.
    assert_eq!(sorted(g.leftovers()), channel_objects(n));
}

/// A valid channel's bytes (one frame of 4×4×3 u8 with metadata, in a ring appended when the
/// first frame grew the empty channel), and its pin table's bytes, copied while the writer lives.
fn valid_segment_bytes(name: &str) -> (Vec<u8>, Vec<u8>) {
    shmframe::metadata! {
        struct M { a: u32, b: u32 }
    }
    let mut w = Writer::create(name, WriterOptions::new().slots(2).metadata::<M>()).unwrap();
    w.write_typed::<u8, M>(&[4, 4, 3], &[7; 48], Some(&M { a: 1, b: 2 }))
        .unwrap();
    let bytes = std::fs::read(shm_file(name)).unwrap();
    let pins = std::fs::read(pins_file_of(name, lineage(&bytes))).unwrap();
    w.close().unwrap();
    (bytes, pins)
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}
/// `HeaderFixed::lineage` of a channel's bytes.
fn lineage(b: &[u8]) -> u64 {
    get_u64(b, 16)
}
/// Offset of the current ring in a channel's bytes (`Header::ring`).
fn ring_at(b: &[u8]) -> usize {
    get_u64(b, off::RING) as usize
}
/// Offset of the slot of the current ring that holds frame 0 (stamp 2).
fn frame0_slot(b: &[u8]) -> usize {
    let ring = ring_at(b);
    let slots = u32::from_ne_bytes(b[ring + 8..ring + 12].try_into().unwrap()) as usize;
    let stride = get_u64(b, ring + 16) as usize;
    (0..slots)
        .map(|k| ring + RING_HEADER_REGION as usize + k * stride)
        .find(|&at| get_u64(b, at + off::S_STAMP) == 2)
        .expect("a slot holds frame 0")
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
    let (good, good_pins) = valid_segment_bytes(&src.name);
    let pins_path = pins_file_of(n, lineage(&good));
    // The crafted channels below share the source's lineage, so they share one pin table.
    std::fs::write(&pins_path, &good_pins).unwrap();
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
    // Another layout version (1 and 2 are the previous layouts).
    for v in [1, 2, 99] {
        let e = with(&|b| put_u32(b, off::VERSION, v));
        assert!(
            matches!(
                &e,
                Some(OpenError::VersionMismatch {
                    found,
                    expected: 3,
                    ..
                }) if *found == v
            ),
            "{e:?}"
        );
    }
    assert_eq!(shmframe::layout::LAYOUT_VERSION, 3);
    // Truncated: shorter than its current ring, or than a header.
    is(open_crafted(n, &good[..good.len() / 2]), "Truncated");
    is(open_crafted(n, &good[..good.len() - 4096]), "Truncated");
    is(open_crafted(n, &good[..ring_at(&good) + 64]), "Truncated");
    is(
        open_crafted(n, &good[..HEADER_REGION as usize + 64]),
        "Truncated",
    );
    is(open_crafted(n, &good[..100]), "Truncated");
    // A consistent ring much larger than the file: refused before anything is touched (touching
    // it would be a SIGBUS).
    is(
        with(&|b| {
            let at = ring_at(b);
            let g = Geometry::new(2, 8, 1 << 30, at as u64).unwrap();
            let rf = g.ring_fixed(1);
            b[at..at + 64].copy_from_slice(shmframe::__bytemuck::bytes_of(&rf));
        }),
        "Truncated",
    );
    // The current ring beyond the end of the object.
    is(with(&|b| put_u64(b, off::RING, 1 << 40)), "Truncated");
    // Lying sizes, offsets, counts, schema; a ring header that disagrees with itself.
    let r = ring_at(&good);
    for (what, f) in [
        (
            "header size",
            &(|b: &mut Vec<u8>| put_u32(b, 12, 128)) as &dyn Fn(&mut Vec<u8>),
        ),
        ("pin entries", &|b| put_u32(b, 48, 65)),
        ("no pin entries", &|b| put_u32(b, 48, 0)),
        ("meta size", &|b| put_u32(b, 36, 4)),
        ("huge meta", &|b| put_u32(b, 36, u32::MAX)),
        ("schema offset", &|b| put_u32(b, 40, 300)),
        ("schema length", &|b| put_u32(b, 44, 5000)),
        ("schema short", &|b| put_u32(b, 44, 20)),
        ("schema fields", &|b| put_u32(b, 256 + 40, 1000)),
        ("schema dtype", &|b| put_u32(b, 256 + 48 + 32, 77)),
        ("schema bytes", &|b| b[256..256 + 32].fill(0xFF)),
        ("no schema", &|b| put_u32(b, 44, 0)),
        ("ring offset 0", &|b| put_u64(b, off::RING, 0)),
        ("ring offset in the header", &|b| put_u64(b, off::RING, 256)),
        ("ring offset unaligned", &|b| {
            put_u64(b, off::RING, r as u64 + 8)
        }),
        ("ring offset huge", &|b| {
            put_u64(b, off::RING, u64::MAX - 4095)
        }),
        ("ring offset on a slot", &|b| {
            put_u64(b, off::RING, r as u64 + 4096)
        }),
        ("ring magic", &|b| b[r..r + 8].copy_from_slice(b"SHMFRAME")),
        ("0 slots", &|b| put_u32(b, r + 8, 0)),
        ("65 slots", &|b| put_u32(b, r + 8, 65)),
        ("1 slot", &|b| put_u32(b, r + 8, 1)),
        ("u32::MAX slots", &|b| put_u32(b, r + 8, u32::MAX)),
        ("ring meta size", &|b| put_u32(b, r + 12, 4)),
        ("ring huge meta", &|b| put_u32(b, r + 12, u32::MAX)),
        ("stride", &|b| put_u64(b, r + 16, 4097)),
        ("capacity", &|b| put_u64(b, r + 24, u64::MAX)),
        ("payload offset", &|b| put_u32(b, r + 32, 0)),
        ("meta offset", &|b| put_u32(b, r + 36, 7)),
        ("ring size", &|b| {
            let size = get_u64(b, r + 40);
            put_u64(b, r + 40, size - 4096)
        }),
    ] {
        let e = with(f);
        assert!(
            matches!(e, Some(OpenError::Corrupt { .. })),
            "{what}: expected Corrupt, got {e:?}"
        );
    }
    // The pin table: missing (the channel is going), not ours, of another lineage, too short.
    let pins = |p: Option<&[u8]>, want: &str| {
        match p {
            Some(bytes) => std::fs::write(&pins_path, bytes).unwrap(),
            None => std::fs::remove_file(&pins_path).unwrap(),
        }
        is(open_crafted(n, &good), want);
    };
    pins(None, "NotFound");
    let mut p = good_pins.clone();
    p[0..8].copy_from_slice(b"NOTPINS!");
    pins(Some(&p), "Corrupt");
    let mut p = good_pins.clone();
    put_u64(&mut p, 16, lineage(&good) ^ 1);
    pins(Some(&p), "Corrupt");
    let mut p = good_pins.clone();
    put_u32(&mut p, 8, 1);
    pins(Some(&p), "Corrupt");
    let mut p = good_pins.clone();
    put_u32(&mut p, 12, 65);
    pins(Some(&p), "Corrupt");
    pins(Some(&good_pins[..4096]), "Corrupt");
    pins(Some(&[]), "Corrupt");
    std::fs::write(&pins_path, &good_pins).unwrap();
    assert!(
        open_crafted(n, &good).is_none(),
        "the pristine copy opens again"
    );
    // A valid header with an impossible frame: opening works, reading says the frame is corrupt.
    let slot0 = frame0_slot(&good);
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
    // A valid header whose current ring links to a bad successor: opening works, reading says
    // so (the ring a reader would follow is refused like a bad current ring).
    for (what, next, want) in [
        (
            "a ring linking back to an older one",
            HEADER_REGION,
            "Corrupt",
        ),
        ("a ring linking to itself", r as u64, "Corrupt"),
        ("a ring linking to garbage", r as u64 + 4096, "Corrupt"),
        ("a ring linking beyond the object", 1 << 40, "Truncated"),
    ] {
        let mut b = good.clone();
        put_u64(&mut b, r + off::R_NEXT, next);
        std::fs::write(shm_file(n), &b).unwrap();
        let mut rd = Reader::open(n).unwrap();
        let t = Instant::now();
        let e = rd.next(Some(Duration::from_millis(100))).map(|f| f.index);
        let dbg = format!("{e:?}");
        assert!(
            dbg.starts_with(&format!("Err(Reopen({want}")),
            "{what}: {dbg}"
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{what}");
        std::fs::remove_file(shm_file(n)).unwrap();
    }
    std::fs::remove_file(&pins_path).unwrap();
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
}

/// Objects too short to hold even a magic number are still named `shmframe.*` by someone: v1
/// reported them truncated (what `shmframe rm` and a restart fix), not foreign.
#[test]
fn objects_shorter_than_a_magic_number_are_truncated() {
    let g = Guard::new("tiny");
    let n = g.name.as_str();
    let src = Guard::new("tiny-src");
    let (good, _) = valid_segment_bytes(&src.name);
    for b in [&good[..4], &[][..]] {
        let e = open_crafted(n, b);
        assert!(
            matches!(e, Some(OpenError::Truncated { .. })),
            "{} bytes: {e:?}",
            b.len()
        );
    }
}

/// v1 refused a header whose state word was none of open, closed, superseded. In v2 the state is
/// a live field, checked as it is read: a reader of such a channel must still answer promptly.
#[test]
fn unknown_state_word_does_not_hang_a_reader() {
    let g = Guard::new("state");
    let n = g.name.as_str();
    let src = Guard::new("state-src");
    let (mut good, pins) = valid_segment_bytes(&src.name);
    std::fs::write(pins_file_of(n, lineage(&good)), &pins).unwrap();
    put_u32(&mut good, off::STATE, 9);
    std::fs::write(shm_file(n), &good).unwrap();
    let t = Instant::now();
    match Reader::open(n) {
        Ok(mut r) => {
            // The frame it holds, then an answer (the object has no live writer).
            for _ in 0..3 {
                let _ = r.next(Some(Duration::from_millis(100)));
            }
        }
        Err(e) => assert!(matches!(e, OpenError::Corrupt { .. }), "{e:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
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
    let w2_objects = channel_objects(n);
    channels::remove(n).unwrap();
    assert!(!shm_file(n).exists(), "{:?}", g.leftovers());
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
    let left = g.leftovers();
    assert!(
        channel_objects(n).iter().all(|o| left.contains(o)),
        "w2 removed w3's channel: {left:?}"
    );
    let f = r.next(Some(LONG)).unwrap();
    assert_eq!(f.data, [9, 9]);
    w3.close().unwrap();
    // Nothing of either channel remains: not w3's, and not the pin table of w2, whose channel
    // was removed while it lived.
    assert!(
        g.leftovers().is_empty(),
        "{:?} (w2's objects were {w2_objects:?})",
        g.leftovers()
    );
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
    assert_eq!(sorted(g.leftovers()), channel_objects(&n));
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

/// The writer reuses the slots every reader is done with, the most recently written first (one
/// slot, or two that alternate, warm in the caches), and keeps the frames a lagging reader has
/// yet to take.
#[test]
fn slots_readers_are_done_with_are_reused_first_and_wanted_frames_kept() {
    let g = Guard::new("reuse");
    let n = g.name.to_string();
    let mut w = Writer::create(&n, WriterOptions::new().slots(4)).unwrap();
    let mut index = 0u64;
    let mut write = |w: &mut Writer| write_pattern(w, &mut index, 64);
    write(&mut w);
    // A reader in another process takes frame 0, then dawdles 300 ms over each frame.
    let mut r = peer(&["read", &n, "--frames", "4", "--hold-ms", "300"]);
    r.wait_stderr("reader ready");
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..3 {
        write(&mut w);
    }
    let (st, s) = r.summary();
    assert!(st.success() && s.no_errors(), "{s:?}");
    assert_eq!(
        (s.num("frames"), s.num("missed"), s.num("last_index")),
        (4, 0, 3),
        "the lagging reader got every frame: {s:?}"
    );
    // Nobody reads now. The reader exited without clearing its entry: the writer tests it once
    // it is a whole ring behind and its cursor has not moved for 100 ms, finds it dead, and from
    // then on two slots take turns while the other two keep what they held.
    for _ in 0..8 {
        write(&mut w);
    }
    std::thread::sleep(Duration::from_millis(150));
    for _ in 0..20 {
        write(&mut w);
    }
    let s = channels::inspect(&n).unwrap();
    let recent = s
        .slot_frames
        .iter()
        .filter(|f| f.is_some_and(|i| i + 2 >= s.frames))
        .count();
    assert_eq!(recent, 2, "{:?} (head {})", s.slot_frames, s.frames);
    assert!(
        s.slot_frames
            .iter()
            .all(|f| f.is_none_or(|i| i + 2 >= s.frames || i + 10 < s.frames)),
        "{:?}",
        s.slot_frames
    );
    // A reader that takes every frame before the next is written: once it has taken the newest
    // frame, that slot is written again, and again — one slot changes, the other three keep what
    // they held.
    let mut r = Reader::open(&n).unwrap();
    while r.try_next().unwrap().is_some() {}
    let before = channels::inspect(&n).unwrap().slot_frames;
    for _ in 0..20 {
        write(&mut w);
        assert!(r.try_next().unwrap().is_some());
    }
    let s = channels::inspect(&n).unwrap();
    let changed = s.slot_frames.iter().zip(&before).filter(|(a, b)| a != b);
    assert_eq!(changed.count(), 1, "{before:?} -> {:?}", s.slot_frames);
    assert!(
        s.slot_frames.contains(&Some(s.frames - 1)),
        "{:?}",
        s.slot_frames
    );
    drop(r);
    w.close().unwrap();
    assert!(g.leftovers().is_empty());
}

/// Every stderr line a finished peer printed.
fn stderr_of(p: &Proc) -> Vec<String> {
    p.stderr.try_iter().map(|(_, l)| l).collect()
}

/// How a peer under the seccomp filter ended, and what it printed (SIGKILL: it made a system
/// call the filter does not allow).
fn killed(p: &Proc, st: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    let why = if st.signal() == Some(libc::SIGKILL) {
        " (SIGKILL: a system call)"
    } else {
        ""
    };
    format!("{st}{why}; stderr {:?}", stderr_of(p))
}

/// The writer process wakes whoever sleeps the way docs/protocol.md §4 says (the pin table's
/// `bell` read, counted in its `sleepers`, then `FUTEX_WAIT` on `bell`): here this test
/// itself, mapping the objects as a reader of another implementation would. A writer that skipped
/// its `FUTEX_WAKE` would leave each wait to its 10 s timeout and fail the test (this library's
/// readers would not notice: they still get every frame, at their 200 ms liveness checks). How
/// soon the wake-up comes is not judged.
#[test]
#[allow(unsafe_code)]
fn a_sleeper_counted_in_the_pin_table_is_woken_by_the_writer() {
    use std::sync::atomic::Ordering;
    let g = Guard::new("sleeper");
    let n = g.name.to_string();
    let mut w = peer(&[
        "write", &n, "--frames", "3000", "--fps", "50", "--shape", "8x8x1",
    ]);
    w.wait_stderr("writer ready");
    let pins = PinTablePage::map(&n);
    let (bell, sleepers) = (pins.word(off::P_BELL), pins.word(off::P_SLEEPERS));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut outcome = None;
    while outcome.is_none() && Instant::now() < deadline {
        let rung = bell.load(Ordering::Relaxed);
        sleepers.fetch_add(1, Ordering::AcqRel);
        let timeout = libc::timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        // SAFETY: FUTEX_WAIT (shared, not private) on a live mapped word with a valid timeout.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                bell.as_ptr(),
                libc::FUTEX_WAIT,
                rung,
                &timeout as *const libc::timespec,
            )
        };
        let errno = std::io::Error::last_os_error().raw_os_error();
        sleepers.fetch_sub(1, Ordering::AcqRel);
        // EAGAIN: a publish rang the bell before the wait began; wait again.
        match (r, errno) {
            (0, _) => outcome = Some(Ok(())),
            (_, Some(libc::EAGAIN | libc::EINTR)) => {}
            (_, e) => outcome = Some(Err(e)),
        }
    }
    drop(pins);
    w.kill9();
    channels::remove(&n).unwrap();
    assert_eq!(
        outcome,
        Some(Ok(())),
        "a FUTEX_WAIT on `bell`, counted in `sleepers`, must be ended by the writer's wake-up \
         (Some(Err(errno)): the wait failed or timed out; None: every wait found the word moved)"
    );
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
}

/// No system call on the hot path, proven by the kernel: the peers run their loops under a
/// seccomp filter that kills the process on any system call but `write` and `exit`: here a
/// writer publishing 100,000 frames with no reader.
/// (The hot path reads the clock; on a clocksource without a vDSO path every read is a system
/// call, and this test then fails, as it should.)
#[test]
fn hot_path_makes_no_system_call_writer_alone() {
    let g = Guard::new("nosys");
    let n = g.name.to_string();
    let mut w = peer(&[
        "write",
        &n,
        "--frames",
        "100000",
        "--shape",
        "8x8x1",
        "--strict-after",
        "1000",
    ]);
    let st = w.wait();
    assert!(st.success(), "writer alone: {}", killed(&w, st));
    assert!(stderr_of(&w)
        .iter()
        .any(|l| l == "writer strict ok frames=100000"));
    channels::remove(&n).unwrap();
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
}

/// As above with a spinning zero-copy reader attached: writer and reader each under the filter.
/// Timing-sensitive (the reader must attach within the writer's first half second and finish
/// within its 60 ms in strict mode), so it is left out of the parallel suite: run it with
/// `cargo test -p shmframe --test channel -- --ignored hot_path`.
#[test]
#[ignore = "timing-sensitive under a loaded parallel suite; run with --ignored"]
fn hot_path_makes_no_system_call_with_a_spinning_reader() {
    let g = Guard::new("nosysr");
    let n = g.name.to_string();
    // A writer publishes 1,000 frames/s for 0.5 s (time for the reader to attach), then enters
    // strict mode and publishes at full rate for 60 ms. The reader, spinning (never sleeping),
    // takes 10 frames, then 600 more in strict mode: those it can take only once the writer is in
    // strict mode too. It exits without clearing its entry (strict mode allows no clean-up), which
    // the writer would test only after 100 ms without progress: never within its 60 ms.
    let mut w = peer(&[
        "write",
        &n,
        "--shape",
        "8x8x1",
        "--fps",
        "1000",
        "--strict-after",
        "500",
        "--strict-ms",
        "60",
    ]);
    let mut r = peer(&[
        "read",
        &n,
        "--view",
        "--frames",
        "1110",
        "--spin",
        "60",
        "--strict-after",
        "10",
    ]);
    let (st, s) = r.summary();
    assert!(st.success(), "spinning reader: {}", killed(&r, st));
    assert!(
        stderr_of(&r).iter().any(|l| l == "reader strict ok"),
        "{s:?}"
    );
    assert!(
        s.no_errors() && s.num("frames") == 1110 && s.num("torn") == 0,
        "{s:?}"
    );
    let st = w.wait();
    assert!(
        st.success(),
        "writer with a spinning reader: {}",
        killed(&w, st)
    );
    channels::remove(&n).unwrap();
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
}

/// The rules of loans: one open loan per writer; an owned loan dropped unfinished, or a borrowed
/// one forgotten, is discarded at the next write; a loan is published only by the writer that
/// made it, even when another writer's open loan has the same slot.
#[test]
fn loans_one_at_a_time_and_only_by_their_writer() {
    let (ga, gb) = (Guard::new("loana"), Guard::new("loanb"));
    let opts = || WriterOptions::new().slots(3);
    let mut a = Writer::create(&ga.name, opts()).unwrap();
    let mut b = Writer::create(&gb.name, opts()).unwrap();
    let mut r = Reader::open(&gb.name).unwrap();

    let mut held = a.loan_raw(DType::U8, &[4]).unwrap();
    held.as_mut_slice().copy_from_slice(&[1, 2, 3, 4]);
    let e = a.write(DType::U8, &[1], &[0]).unwrap_err();
    assert!(matches!(e, shmframe::WriteError::LoanOpen { .. }), "{e}");
    drop(held);
    assert_eq!(
        a.write(DType::U8, &[1], &[9]).unwrap(),
        0,
        "the dropped loan was discarded"
    );

    std::mem::forget(b.loan(DType::U8, &[2]).unwrap());
    assert_eq!(
        b.write(DType::U8, &[1], &[7]).unwrap(),
        0,
        "the forgotten loan was discarded"
    );
    assert_eq!(r.next(Some(Duration::from_secs(5))).unwrap().data, vec![7]);

    // Both writers' next loans take the same slot (the ring is in the same state on both).
    let mut own = b.loan_raw(DType::U8, &[2]).unwrap();
    own.as_mut_slice().copy_from_slice(&[5, 6]);
    let foreign = a.loan_raw(DType::U8, &[3]).unwrap();
    let e = b.publish_raw(foreign, &[]).unwrap_err();
    assert!(e.to_string().contains("does not belong"), "{e}");
    assert_eq!(b.publish_raw(own, &[]).unwrap(), 1);
    let f = r.next(Some(Duration::from_secs(5))).unwrap();
    assert_eq!((f.index, f.shape, f.data), (1, vec![2], vec![5, 6]));
    drop((r, a, b));
    assert!(ga.leftovers().is_empty() && gb.leftovers().is_empty());
}

/// A loan is described when it is made and described again if metadata is set before the publish:
/// readers get each frame's own shape and metadata, whichever the slot held before.
#[test]
fn loans_with_and_without_metadata_describe_their_own_frame() {
    shmframe::metadata! {
        struct M { a: u32, b: u32 }
    }
    let g = Guard::new("loanmeta");
    let mut w = Writer::create(&g.name, WriterOptions::new().slots(3).metadata::<M>()).unwrap();
    let mut r = Reader::open(&g.name).unwrap();
    let wait = Some(Duration::from_secs(5));
    // Frames with and without metadata alternate, so slots are reused across both kinds.
    for i in 0..6u32 {
        let mut loan = w.loan(DType::U8, &[1 + i as usize % 2, 2]).unwrap();
        loan.data_mut().fill(i as u8);
        if i % 2 == 0 {
            loan.set_meta_typed(&M { a: i, b: 7 }).unwrap();
        }
        loan.publish();
        let f = r.next(wait).unwrap();
        assert_eq!(f.shape, vec![1 + i as usize % 2, 2], "frame {i}");
        assert_eq!(f.data, vec![i as u8; 2 * (1 + i as usize % 2)], "frame {i}");
        if i % 2 == 0 {
            let m: M = r.meta_of(&f).unwrap();
            assert_eq!((m.a, m.b), (i, 7), "frame {i}");
        } else {
            assert!(f.meta.is_empty(), "frame {i} has no metadata: {:?}", f.meta);
        }
    }
    // A discarded loan leaves its slot empty, whatever it described.
    drop(w.loan(DType::U16, &[9]).unwrap());
    w.write(DType::U8, &[2], &[3, 4]).unwrap();
    let f = r.next(wait).unwrap();
    assert_eq!((f.index, f.shape, f.data), (6, vec![2], vec![3, 4]));
    drop((r, w));
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
}
