//! The article's protocol (`shmframe::seed`) against independent peers: Python programs written
//! from the protocol's description (`tests/seed_peers/`, posix_ipc + numpy), and this test
//! binary re-run as a child process. Every pixel of every frame received is checked.
//!
//! The Python tests need an interpreter with `posix_ipc` and `numpy`, named by the environment
//! variable `SHMFRAME_TEST_PYTHON`. They are `#[ignore]`d, so a plain `cargo test` reports them as
//! ignored; `scripts/test.d/30-seed.sh` sets the interpreter up and runs them with
//! `--include-ignored`.

mod seed_peers;

use seed_peers::{
    exists, finish, last_json_line, pattern, peer, python, python_writer,
    python_writer_crashing_with_the_lock, seed_objects,
};
use shmframe::seed::{SeedError, SeedFrame, SeedReader, SeedWriter, SEM_STUCK_AFTER};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "sft-seed-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes a channel's three objects, whatever happened.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for f in seed_objects(&self.0) {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn check(f: &SeedFrame, shape: [usize; 3]) {
    assert_eq!(f.shape, shape, "frame {}", f.count);
    let want = pattern(shape, f.count);
    if f.data != want {
        let at = f.data.iter().zip(&want).position(|(a, b)| a != b);
        panic!(
            "frame {} ({:?}): pixels differ from the pattern, first at byte {at:?}",
            f.count, f.shape
        );
    }
}

/// Value of `key` in a flat JSON object, as its raw text (`null`, `12`, `"…"`, `[…]`).
fn field(json: &str, key: &str) -> String {
    let at = json
        .find(&format!("\"{key}\": "))
        .unwrap_or_else(|| panic!("no {key} in {json}"));
    let rest = &json[at + key.len() + 4..];
    let end = if let Some(quoted) = rest.strip_prefix('"') {
        quoted.find('"').map(|i| i + 2)
    } else if rest.starts_with('[') {
        let mut depth = 0;
        rest.char_indices()
            .find(|&(_, ch)| {
                depth += (ch == '[') as i32 - (ch == ']') as i32;
                depth == 0
            })
            .map(|(i, _)| i + 1)
    } else {
        rest.find([',', '}'])
    };
    rest[..end.unwrap_or(rest.len())].to_string()
}

// ---------------------------------------------------------------------------------------------
// The child process: this test binary re-run with SFT_SEED_CHILD set plays a Rust peer.

/// Not a test: the entry point of child processes (does nothing unless `SFT_SEED_CHILD` is set).
#[test]
fn seed_child_process() {
    let Ok(role) = std::env::var("SFT_SEED_CHILD") else {
        return;
    };
    let name = std::env::var("SFT_SEED_NAME").unwrap();
    match role.as_str() {
        // Writes one frame per line read from stdin, with the shapes of SFT_SEED_SHAPES; keeps
        // the channel until stdin closes.
        "step-writer" => {
            let shapes: Vec<[usize; 3]> = std::env::var("SFT_SEED_SHAPES")
                .unwrap()
                .split(',')
                .map(|s| {
                    let d: Vec<usize> = s.split('x').map(|x| x.parse().unwrap()).collect();
                    [d[0], d[1], d[2]]
                })
                .collect();
            let mut w = SeedWriter::create(&name).unwrap();
            println!("created");
            let mut lines = std::io::stdin().lock().lines();
            for (k, &shape) in shapes.iter().enumerate() {
                if k > 0 {
                    lines.next().unwrap().unwrap();
                }
                let count = w.write(shape, &pattern(shape, k as i64 + 1)).unwrap();
                assert_eq!(count, k as i64 + 1);
            }
            for _ in lines {}
            w.close().unwrap();
        }
        // Holds the writer until stdin closes.
        "idle-writer" => {
            let mut w = SeedWriter::create(&name).unwrap();
            w.write([1, 1, 3], &pattern([1, 1, 3], 1)).unwrap();
            println!("created");
            for _ in std::io::stdin().lock().lines() {}
            w.close().unwrap();
        }
        // Takes the channel's semaphore as a reader copying a frame would, and dies by SIGKILL.
        "die-holding-semaphore" => {
            let sem = std::ffi::CString::new(format!("/{name}")).unwrap();
            // SAFETY: valid NUL-terminated name; without O_CREAT no variadic argument is read.
            let s = unsafe { libc::sem_open(sem.as_ptr(), 0) };
            assert!(
                !s.is_null(),
                "sem_open: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: `s` is a semaphore returned by sem_open.
            assert_eq!(unsafe { libc::sem_wait(s) }, 0);
            // SAFETY: plain syscall on our own pid.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        other => panic!("unknown child role {other}"),
    }
}

struct RustChild {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl RustChild {
    fn spawn(role: &str, name: &str, shapes: &str) -> RustChild {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "seed_child_process", "--nocapture", "--quiet"])
            .env("SFT_SEED_CHILD", role)
            .env("SFT_SEED_NAME", name)
            .env("SFT_SEED_SHAPES", shapes)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        RustChild { child, stdin }
    }

    /// Waits for the child's "created" line.
    fn wait_created(&mut self) {
        let out = self.child.stdout.as_mut().unwrap();
        let mut r = BufReader::new(out);
        let mut line = String::new();
        loop {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "child exited early");
            if line.trim() == "created" {
                return;
            }
        }
    }

    fn step(&mut self) {
        self.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    }

    fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        self.child.wait().unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Rust ↔ Python, both directions, two frame sizes.

fn rust_writer_to_python_reader(shape: [usize; 3], frames: i64) {
    let py = python();
    let name = unique("r2p");
    let _c = Cleanup(name.clone());
    let [h, w, c] = shape;
    let until = frames.to_string();
    // The reader starts first and waits for the objects, as the article's reader does.
    let reader = peer(&py, "seed_read.py", &[&name, "--until-count", &until])
        .spawn()
        .unwrap();
    let mut wr = SeedWriter::create(&name).unwrap();
    for k in 1..=frames {
        assert_eq!(wr.write(shape, &pattern(shape, k)).unwrap(), k);
        std::thread::sleep(Duration::from_millis(2));
    }
    let json = finish(reader);
    wr.close().unwrap();
    eprintln!("python reader: {json}");
    assert_eq!(field(&json, "error"), "null", "{json}");
    assert_eq!(field(&json, "bad"), "0", "{json}");
    assert_eq!(field(&json, "last_count"), until, "{json}");
    assert_eq!(field(&json, "shapes"), format!("[[{h}, {w}, {c}]]"));
    assert!(field(&json, "frames").parse::<u32>().unwrap() >= 1);
    assert_eq!(exists(&name), [false; 3], "close removes all three objects");
}

#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn rust_writer_to_python_reader_480p() {
    rust_writer_to_python_reader([480, 640, 3], 60);
}

#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn rust_writer_to_python_reader_1080p() {
    rust_writer_to_python_reader([1080, 1920, 3], 30);
}

fn python_writer_to_rust_reader(shape: [usize; 3], frames: i64) {
    let py = python();
    let name = unique("p2r");
    let _c = Cleanup(name.clone());
    let mut writer = python_writer(&py, &name, frames as u32, shape, 200, &[]);
    let mut r = SeedReader::open_wait(&name, LONG).unwrap();
    let mut got = 0;
    let mut last = 0;
    while last < frames {
        let f = r.next(Some(LONG)).unwrap();
        assert!(f.count > last, "count went from {last} to {}", f.count);
        check(&f, shape);
        last = f.count;
        got += 1;
    }
    drop(writer.stdin.take());
    let json = finish(writer);
    eprintln!("python writer: {json}; rust reader checked {got} frames");
    assert_eq!(field(&json, "last_count"), frames.to_string());
    assert!(matches!(r.next(Some(LONG)), Err(SeedError::Closed { .. })));
    assert_eq!(exists(&name), [false; 3], "the writer removed its objects");
}

#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn python_writer_to_rust_reader_480p() {
    python_writer_to_rust_reader([480, 640, 3], 60);
}

#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn python_writer_to_rust_reader_1080p() {
    python_writer_to_rust_reader([1080, 1920, 3], 30);
}

// ---------------------------------------------------------------------------------------------
// Failure modes of the article's protocol.

/// The article's reader hangs forever on a semaphore its dead writer left at 0; ours reports it.
/// A new writer replaces the semaphore and the same reader follows it.
#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn crashed_python_writer_holding_the_semaphore_gives_semaphore_stuck() {
    let py = python();
    let name = unique("stuck");
    let _c = Cleanup(name.clone());
    python_writer_crashing_with_the_lock(&py, &name, 3, [48, 64, 3]);
    assert_eq!(exists(&name), [true; 3], "a dead writer leaves its objects");

    let mut r = SeedReader::open(&name).unwrap();
    match r.next(Some(LONG)) {
        Err(e @ SeedError::SemaphoreStuck { .. }) => {
            let SeedError::SemaphoreStuck { held_for, .. } = &e else {
                unreachable!()
            };
            assert!(*held_for >= SEM_STUCK_AFTER, "{held_for:?}");
            assert!(e.to_string().contains("died holding it"), "{e}");
        }
        other => panic!("expected SemaphoreStuck, got {other:?}"),
    }
    // A short timeout does not reset the clock: repeated short waits also end in SemaphoreStuck.
    let mut short = 0;
    let e = loop {
        match r.next(Some(Duration::from_millis(300))) {
            Err(SeedError::Timeout { .. }) => short += 1,
            other => break other,
        }
    };
    assert!(
        matches!(e, Err(SeedError::SemaphoreStuck { .. })),
        "after {short} short waits: {e:?}"
    );

    // A new writer on the name replaces the semaphore; the reader follows without reopening.
    let mut w = SeedWriter::create(&name).unwrap();
    w.write([48, 64, 3], &pattern([48, 64, 3], 1)).unwrap();
    let f = r.next(Some(LONG)).unwrap();
    assert_eq!(f.count, 1);
    check(&f, [48, 64, 3]);
    w.close().unwrap();
}

/// The reader waits for the writer (inotify on /dev/shm), then receives every frame.
#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn reader_started_before_python_writer() {
    let py = python();
    let name = unique("early");
    let _c = Cleanup(name.clone());
    assert!(matches!(
        SeedReader::open(&name),
        Err(SeedError::NotFound { .. })
    ));
    let n2 = name.clone();
    let waiting = std::thread::spawn(move || SeedReader::open_wait(&n2, LONG));
    let mut writer = python_writer(&py, &name, 20, [120, 160, 3], 100, &[]);
    let mut r = waiting.join().unwrap().unwrap();
    let mut last = 0;
    while last < 20 {
        let f = r.next(Some(LONG)).unwrap();
        check(&f, [120, 160, 3]);
        assert!(f.count > last);
        last = f.count;
    }
    drop(writer.stdin.take());
    finish(writer);
}

/// An attach timeout names what is missing.
#[test]
fn open_wait_times_out_naming_the_missing_object() {
    let name = unique("never");
    let e = SeedReader::open_wait(&name, Duration::from_millis(200))
        .err()
        .unwrap();
    assert!(
        matches!(&e, SeedError::OpenTimeout { missing, .. } if missing.ends_with(&format!("{name}-meta"))),
        "{e:?}"
    );
}

/// A Python writer that changes the frame size (larger, then smaller): the Rust reader follows
/// every change, pixel-exact.
#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn python_writer_size_change_followed_by_rust_reader() {
    let py = python();
    for (first, b) in [
        ([480, 640, 3], [1080, 1920, 3]),
        ([1080, 1920, 3], [240, 320, 3]),
    ] {
        let name = unique("pgrow");
        let _c = Cleanup(name.clone());
        let s2 = format!("{}x{}x{}", b[0], b[1], b[2]);
        let extra = ["--shape2", &s2, "--switch-at", "8"];
        let mut writer = python_writer(&py, &name, 16, first, 100, &extra);
        let mut r = SeedReader::open_wait(&name, LONG).unwrap();
        let mut last = 0;
        let mut shapes = vec![];
        while last < 16 {
            let f = r.next(Some(LONG)).unwrap();
            let shape = if f.count > 8 { b } else { first };
            check(&f, shape);
            if shapes.last() != Some(&shape) {
                shapes.push(shape);
            }
            last = f.count;
        }
        drop(writer.stdin.take());
        finish(writer);
        assert_eq!(shapes.last(), Some(&b));
    }
}

/// Rust writer → Rust reader in two processes, one frame per step so every frame is seen:
/// growth to 1080p, then a smaller frame (the object is never shrunk).
#[test]
fn rust_writer_to_rust_reader_across_processes_follows_size_changes() {
    let name = unique("r2r");
    let _c = Cleanup(name.clone());
    let shapes = [
        [480, 640, 3],
        [480, 640, 3],
        [1080, 1920, 3],
        [1080, 1920, 3],
        [240, 320, 1],
        [2, 3, 4],
    ];
    let spec = shapes
        .iter()
        .map(|s| format!("{}x{}x{}", s[0], s[1], s[2]))
        .collect::<Vec<_>>()
        .join(",");
    let mut child = RustChild::spawn("step-writer", &name, &spec);
    child.wait_created();
    let mut r = SeedReader::open_wait(&name, LONG).unwrap();
    for (k, &shape) in shapes.iter().enumerate() {
        let f = r.next(Some(LONG)).unwrap();
        assert_eq!(f.count, k as i64 + 1);
        check(&f, shape);
        if k + 1 < shapes.len() {
            child.step();
        }
    }
    let largest = 1080 * 1920 * 3;
    assert_eq!(
        std::fs::metadata(format!("/dev/shm/{name}")).unwrap().len(),
        largest,
        "the frame object keeps its largest size"
    );
    assert!(child.finish().success());
    assert!(matches!(r.next(Some(LONG)), Err(SeedError::Closed { .. })));
    assert_eq!(exists(&name), [false; 3]);
}

/// The article's reader maps the frame object once, with the size of the frame current when it
/// attached: after growth it cannot show the larger frame (it stops with an error, not SIGBUS,
/// because the object never shrinks). Ours follows.
#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn growth_python_reader_mapping_once_reports_it_rust_reader_follows() {
    let py = python();
    let name = unique("grow");
    let _c = Cleanup(name.clone());
    let small = [120, 160, 3];
    let big = [480, 640, 3];
    let mut w = SeedWriter::create(&name).unwrap();
    w.write(small, &pattern(small, 1)).unwrap();
    let mut rr = SeedReader::open(&name).unwrap();
    check(&rr.next(Some(LONG)).unwrap(), small);
    let mut reader = peer(
        &py,
        "seed_read.py",
        &[&name, "--until-count", "2", "--progress"],
    )
    .spawn()
    .unwrap();
    // Publish the larger frame once the Python reader has mapped the object for frame 1.
    let mut out = BufReader::new(reader.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "frame 1" {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "python reader exited"
        );
    }
    w.write(big, &pattern(big, 2)).unwrap();
    let f = rr.next(Some(LONG)).unwrap();
    assert_eq!(f.count, 2);
    check(&f, big);
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut out, &mut rest).unwrap();
    assert!(reader.wait().unwrap().success());
    let json = last_json_line(&rest);
    eprintln!("python reader after growth: {json}");
    assert_eq!(
        field(&json, "mapped"),
        (120 * 160 * 3).to_string(),
        "{json}"
    );
    assert_eq!(field(&json, "bad"), "0");
    assert!(
        field(&json, "error").contains("does not fit the 57600 bytes mapped at attach time"),
        "{json}"
    );
    w.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Validation: corrupt or hostile segments give typed errors, never a panic or SIGBUS.

fn poke_meta(name: &str, md: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm/{name}-meta"))
        .unwrap();
    f.write_all_at(md, 0).unwrap();
}

fn md(shape: [i32; 3], size: i64, count: i64) -> Vec<u8> {
    let mut v = Vec::new();
    for d in shape {
        v.extend(d.to_ne_bytes());
    }
    v.extend([0; 4]);
    v.extend(size.to_ne_bytes());
    v.extend(count.to_ne_bytes());
    v
}

#[test]
fn corrupt_metadata_gives_typed_errors() {
    let name = unique("corrupt");
    let _c = Cleanup(name.clone());
    let mut w = SeedWriter::create(&name).unwrap();
    w.write([2, 2, 3], &[1; 12]).unwrap();
    let mut r = SeedReader::open(&name).unwrap();
    assert_eq!(r.next(Some(LONG)).unwrap().count, 1);
    let cases: [(Vec<u8>, &str); 5] = [
        (md([-2, 2, 3], 12, 10), "negative shape"),
        (md([2, 2, 3], -12, 11), "negative size"),
        (md([2, 2, 3], 13, 12), "not the product"),
        (md([i32::MAX, i32::MAX, 3], i64::MAX, 13), "not the product"),
        (md([65536, 65536, 2], 1 << 33, 14), "exceeds"),
    ];
    for (bytes, what) in cases {
        poke_meta(&name, &bytes);
        match r.next(Some(LONG)) {
            Err(SeedError::Corrupt { what: w, .. }) => assert!(w.contains(what), "{w}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // Consistent metadata announcing more bytes than the frame object holds.
    poke_meta(&name, &md([100, 100, 3], 30_000, 15));
    assert!(matches!(
        r.next(Some(LONG)),
        Err(SeedError::DataTooSmall {
            size: 12,
            needed: 30_000,
            ..
        })
    ));
    // The frame object removed while the metadata announces a frame.
    poke_meta(&name, &md([2, 2, 3], 12, 16));
    std::fs::remove_file(format!("/dev/shm/{name}")).unwrap();
    assert!(matches!(r.next(Some(LONG)), Err(SeedError::Corrupt { .. })));
    // A metadata object shorter than the struct.
    std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm/{name}-meta"))
        .unwrap()
        .set_len(16)
        .unwrap();
    assert!(matches!(
        r.next(Some(LONG)),
        Err(SeedError::MetaTooSmall { size: 16, .. })
    ));
    assert!(matches!(
        SeedReader::open(&name),
        Err(SeedError::MetaTooSmall { size: 16, .. })
    ));
    // The writer repairs what it can on its next frame.
    w.write([2, 2, 3], &[5; 12]).unwrap();
    let f = r.next(Some(LONG)).unwrap();
    assert_eq!((f.count, f.data[11]), (2, 5));
    w.close().unwrap();
}

#[test]
fn bad_frames_and_names_are_rejected() {
    let name = unique("bad");
    let _c = Cleanup(name.clone());
    assert!(matches!(
        SeedWriter::create("../etc"),
        Err(SeedError::Name(_))
    ));
    let mut w = SeedWriter::create(&name).unwrap();
    for (shape, len) in [([0, 2, 3], 0), ([2, 2, 3], 11), ([1 << 31, 1, 1], 1)] {
        assert!(
            matches!(
                w.write(shape, &vec![0; len]),
                Err(SeedError::BadFrame { .. })
            ),
            "{shape:?}"
        );
    }
    assert_eq!(w.count(), 0);
    w.close().unwrap();
}

/// A second shmframe writer on a live name is refused instead of truncating the first one's
/// objects (the article's writer would ftruncate them: SIGBUS for the first).
#[test]
fn second_seed_writer_gets_busy() {
    let name = unique("busy");
    let _c = Cleanup(name.clone());
    let mut child = RustChild::spawn("idle-writer", &name, "");
    child.wait_created();
    let e = SeedWriter::create(&name).err().unwrap();
    assert!(matches!(e, SeedError::Busy { .. }), "{e:?}");
    assert!(e.to_string().contains("already has a live shmframe writer"));
    let mut r = SeedReader::open(&name).unwrap();
    assert_eq!(
        r.next(Some(LONG)).unwrap().count,
        1,
        "the first writer is intact"
    );
    assert!(child.finish().success());
}

/// A reader killed while holding the semaphore would block the article's writer forever; ours
/// replaces the stuck semaphore after SEM_STUCK_AFTER and goes on. Readers follow.
#[test]
fn writer_replaces_a_semaphore_left_stuck_by_a_killed_reader() {
    let name = unique("rdead");
    let _c = Cleanup(name.clone());
    let mut w = SeedWriter::create(&name).unwrap();
    w.write([4, 4, 3], &pattern([4, 4, 3], 1)).unwrap();
    let mut r = SeedReader::open(&name).unwrap();
    check(&r.next(Some(LONG)).unwrap(), [4, 4, 3]);
    let child = RustChild::spawn("die-holding-semaphore", &name, "");
    let status = child.finish();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(w.write([4, 4, 3], &pattern([4, 4, 3], 2)).unwrap(), 2);
    assert_eq!(w.stuck_recoveries(), 1);
    let f = r.next(Some(LONG)).unwrap();
    assert_eq!(f.count, 2);
    check(&f, [4, 4, 3]);
    w.close().unwrap();
}

/// Python's `multiprocessing.shared_memory` (3.8 to 3.12, and 3.13+ unless `track=False`)
/// registers even a segment it only attached to with its resource tracker, which unlinks it
/// when the process exits. posix_ipc (the article's choice, and the peers here) does not. The
/// seed writer re-creates objects removed under it, and readers follow.
#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn multiprocessing_shared_memory_deletes_on_exit_and_seed_writer_recreates() {
    let py = python();
    let name = unique("mpsm");
    let _c = Cleanup(name.clone());
    let mut w = SeedWriter::create(&name).unwrap();
    w.write([4, 4, 3], &pattern([4, 4, 3], 1)).unwrap();
    let mut r = SeedReader::open(&name).unwrap();
    check(&r.next(Some(LONG)).unwrap(), [4, 4, 3]);

    // posix_ipc: attach, read, exit; nothing is removed.
    let json = finish(
        peer(&py, "seed_read.py", &[&name, "--frames", "1"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(field(&json, "bad"), "0");
    assert_eq!(exists(&name), [true; 3], "posix_ipc leaves the objects");

    // multiprocessing.shared_memory: attach to the frame object, read, exit.
    let code = format!(
        "from multiprocessing import shared_memory as s\n\
         m = s.SharedMemory(name={name:?})\n\
         print(bytes(m.buf[:3]))\n\
         m.close()\n"
    );
    let out = Command::new(&py).args(["-c", &code]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !exists(&name)[0],
        "the resource tracker unlinked /dev/shm/{name} (if this fails, the interpreter no longer does so)"
    );
    // The writer notices and re-creates it; the reader follows to the new object.
    w.write([4, 4, 3], &pattern([4, 4, 3], 2)).unwrap();
    assert_eq!(exists(&name), [true; 3]);
    let f = r.next(Some(LONG)).unwrap();
    assert_eq!(f.count, 2);
    check(&f, [4, 4, 3]);
    w.close().unwrap();
}

/// A writer closes and another starts under the same name before the reader looks again: the
/// reader attaches to the new objects and receives their first frame.
#[test]
fn reader_follows_a_writer_restarted_between_two_reads() {
    let name = unique("restart");
    let _c = Cleanup(name.clone());
    let mut w = SeedWriter::create(&name).unwrap();
    w.write([2, 2, 3], &pattern([2, 2, 3], 1)).unwrap();
    let mut r = SeedReader::open(&name).unwrap();
    assert_eq!(r.next(Some(LONG)).unwrap().count, 1);
    w.close().unwrap();
    let mut w2 = SeedWriter::create(&name).unwrap();
    w2.write([4, 4, 3], &pattern([4, 4, 3], 1)).unwrap();
    let f = r.next(Some(LONG)).unwrap();
    assert_eq!(f.count, 1);
    check(&f, [4, 4, 3]);
    w2.close().unwrap();
}

/// Dropping the writer removes the three objects (the article's writer leaves the semaphore).
#[test]
fn drop_removes_everything() {
    let name = unique("drop");
    let _c = Cleanup(name.clone());
    {
        let mut w = SeedWriter::create(&name).unwrap();
        w.write([1, 1, 1], &[0]).unwrap();
        assert_eq!(exists(&name), [true; 3]);
    }
    assert_eq!(exists(&name), [false; 3]);
}
