//! The article's protocol through the real `shmframe` binary (`write`/`read --protocol seed`,
//! `bridge` with `seed:NAME` endpoints), against the Python peers of the library's tests
//! (`crates/shmframe/tests/seed_peers`, posix_ipc + numpy). Pixels are checked end to end.
//!
//! These need an interpreter with `posix_ipc` and `numpy`, named by `SHMFRAME_TEST_PYTHON`
//! (`scripts/test.d/30-seed.sh` sets it up and runs this file); without it they are skipped,
//! loudly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "sft-seedcli-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes a seed channel's three objects, a native channel of the same name, and a temporary
/// directory, whatever happened.
struct Cleanup {
    name: String,
    dir: Option<PathBuf>,
}

impl Cleanup {
    fn new(name: &str) -> Cleanup {
        Cleanup {
            name: name.to_string(),
            dir: None,
        }
    }

    fn with_dir(name: &str) -> (Cleanup, PathBuf) {
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let c = Cleanup {
            name: name.to_string(),
            dir: Some(dir.clone()),
        };
        (c, dir)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let n = &self.name;
        for f in [
            format!("/dev/shm/{n}"),
            format!("/dev/shm/{n}-meta"),
            format!("/dev/shm/sem.{n}"),
            format!("/dev/shm/shmframe.{n}"),
        ] {
            let _ = std::fs::remove_file(f);
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn python() -> Option<PathBuf> {
    match std::env::var_os("SHMFRAME_TEST_PYTHON") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            // Straight to stderr: the harness swallows eprintln! of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPED: SHMFRAME_TEST_PYTHON is not set, so this end-to-end test of \
                 `shmframe … --protocol seed` against the Python peers does not run. Run \
                 scripts/test.d/30-seed.sh (it installs posix_ipc and numpy and sets the variable).\n"
            );
            None
        }
    }
}

fn peer(py: &Path, script: &str, args: &[&str]) -> Command {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shmframe/tests/seed_peers");
    let mut c = Command::new(py);
    c.arg(dir.join(script)).args(args);
    c.stdout(Stdio::piped()).stderr(Stdio::inherit());
    c
}

fn shmframe(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shmframe"));
    c.args(args);
    c
}

/// The JSON object on the last `{` line of `out`.
fn json_of(out: &[u8]) -> serde_json::Value {
    let s = String::from_utf8_lossy(out);
    let line = s
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in output:\n{s}"));
    serde_json::from_str(line).unwrap()
}

fn finish(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    json_of(&out.stdout)
}

/// The pattern of `seed_peers/seed_pattern.py`.
fn pattern(shape: [usize; 3], count: i64) -> Vec<u8> {
    let [h, w, c] = shape;
    let k = (7 * count as u64 + h as u64 + 3 * w as u64 + 5 * c as u64) % 256;
    (0..h * w * c)
        .map(|i| ((i as u64 + i as u64 / 1021 + k) % 256) as u8)
        .collect()
}

/// The count (mod 256) of a pattern frame, from its first byte (183 is 7's inverse mod 256).
fn count_of(shape: [usize; 3], data: &[u8]) -> i64 {
    let [h, w, c] = shape;
    let base = (h + 3 * w + 5 * c) as i64;
    ((data[0] as i64 - base).rem_euclid(256) * 183) % 256
}

fn bgr_to_rgb(data: &[u8]) -> Vec<u8> {
    data.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect()
}

/// `shmframe write --protocol seed --source X.png`: the Python reader (attaching like the
/// article's, before the writer exists) receives the image's pixels exactly, in OpenCV's BGR
/// order (`--format bgr8`, the default).
#[test]
fn cli_write_seed_png_to_python_reader() {
    let Some(py) = python() else { return };
    let name = unique("w");
    let (_c, dir) = Cleanup::with_dir(&name);
    let (w, h) = (64u32, 48u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x * 7 + y * 3) % 256) as u8])
    });
    let png = dir.join("src.png");
    img.save(&png).unwrap();
    let expect = dir.join("expect.bgr");
    std::fs::write(&expect, bgr_to_rgb(img.as_raw())).unwrap();

    let reader = peer(
        &py,
        "seed_read.py",
        &[
            &name,
            "--until-count",
            "20",
            "--expect",
            expect.to_str().unwrap(),
        ],
    )
    .spawn()
    .unwrap();
    let out = shmframe(&[
        "write",
        &name,
        "--protocol",
        "seed",
        "--source",
        png.to_str().unwrap(),
        "--frames",
        "20",
        "--fps",
        "200",
        "--keep",
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let j = finish(reader);
    eprintln!("python reader: {j}");
    assert_eq!(j["error"], serde_json::Value::Null, "{j}");
    assert_eq!(j["bad"], 0, "{j}");
    assert_eq!(j["last_count"], 20, "{j}");
    assert_eq!(j["shapes"], serde_json::json!([[48, 64, 3]]));
    assert!(j["frames"].as_u64().unwrap() >= 1);
    // --keep left the objects (the seed writer does not remove them then).
    assert!(Path::new(&format!("/dev/shm/{name}-meta")).exists());
}

/// `shmframe read --protocol seed --headless --json --save`: frames from the Python writer are
/// counted in the JSON summary, and each saved snapshot (RGB PNG of the BGR frame) holds the
/// writer's pixels.
#[test]
fn python_writer_to_cli_read_seed() {
    let Some(py) = python() else { return };
    let name = unique("r");
    let (_c, dir) = Cleanup::with_dir(&name);
    let shape = [48, 64, 3];
    let mut writer = peer(
        &py,
        "seed_write.py",
        &[
            &name,
            "--frames",
            "100",
            "--shape",
            "48x64x3",
            "--fps",
            "100",
            "--wait-stdin",
        ],
    )
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    let snaps = dir.join("snaps");
    let out = shmframe(&[
        "read",
        &name,
        "--protocol",
        "seed",
        "--headless",
        "--frames",
        "5",
        "--json",
        "--save",
        snaps.to_str().unwrap(),
        "--every",
        "1",
        "--timeout",
        "60",
    ])
    .output()
    .unwrap();
    drop(writer.stdin.take());
    finish(writer);
    assert!(out.status.success(), "{out:?}");
    let j = json_of(&out.stdout);
    eprintln!("shmframe read: {j}");
    assert_eq!(j["frames"], 5, "{j}");
    assert_eq!(j["shape"], serde_json::json!([48, 64, 3]));
    assert_eq!(j["dtype"], "uint8");
    let mut checked = 0;
    for e in std::fs::read_dir(&snaps).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_str().unwrap();
        let count: i64 = stem.rsplit('-').next().unwrap().parse().unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (64, 48));
        assert_eq!(
            bgr_to_rgb(img.as_raw()),
            pattern(shape, count),
            "snapshot {}",
            p.display()
        );
        checked += 1;
    }
    assert_eq!(checked, 5);
}

/// `shmframe bridge --from seed:A --to B`: a Python writer of the article's protocol feeds a
/// native channel; a native reader gets the writer's pixels.
#[test]
fn cli_bridge_seed_to_native() {
    let Some(py) = python() else { return };
    let src = unique("bs");
    let dst = unique("bn");
    let _c1 = Cleanup::new(&src);
    let _c2 = Cleanup::new(&dst);
    let shape = [480, 640, 3];
    let mut writer = peer(
        &py,
        "seed_write.py",
        &[
            &src,
            "--frames",
            "1000",
            "--shape",
            "480x640x3",
            "--fps",
            "100",
            "--wait-stdin",
        ],
    )
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    let from = format!("seed:{src}");
    let bridge = shmframe(&["bridge", "--from", &from, "--to", &dst, "--frames", "10"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut r = shmframe::Reader::open_wait(&dst, LONG).unwrap();
    let mut got = 0;
    loop {
        match r.next(Some(LONG)) {
            Ok(f) => {
                assert_eq!(f.shape, shape);
                assert_eq!(f.dtype, shmframe::DType::U8);
                let c = count_of(shape, &f.data);
                assert!(f.data == pattern(shape, c), "frame {} differs", f.index);
                got += 1;
            }
            Err(shmframe::ReadError::Closed { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let status = bridge.wait_with_output().unwrap().status;
    assert!(status.success(), "{status:?}");
    drop(writer.stdin.take());
    finish(writer);
    assert!(got >= 1, "no frame crossed the bridge");
    eprintln!("native reader checked {got} bridged frames");
}

/// `shmframe bridge --from B --to seed:A`: a native writer feeds an article-protocol channel;
/// the Python reader (attaching like the article's) gets the pixels.
#[test]
fn cli_bridge_native_to_seed() {
    let Some(py) = python() else { return };
    let src = unique("bn");
    let dst = unique("bs");
    let _c1 = Cleanup::new(&src);
    let _c2 = Cleanup::new(&dst);
    let shape = [480, 640, 3];
    let mut w = shmframe::Writer::create(&src, shmframe::WriterOptions::new()).unwrap();
    let to = format!("seed:{dst}");
    let bridge = shmframe(&["bridge", "--from", &src, "--to", &to])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = peer(&py, "seed_read.py", &[&dst, "--frames", "5", "--any-count"])
        .spawn()
        .unwrap();
    let mut k = 0;
    let done = loop {
        k += 1;
        w.write(shmframe::DType::U8, &shape, &pattern(shape, k))
            .unwrap();
        std::thread::sleep(Duration::from_millis(10));
        if let Some(status) = reader.try_wait().unwrap() {
            break status;
        }
        assert!(k < 6000, "the Python reader got no 5 frames in 6000");
    };
    assert!(done.success(), "{done:?}");
    let mut out = Vec::new();
    std::io::Read::read_to_end(reader.stdout.as_mut().unwrap(), &mut out).unwrap();
    let j = json_of(&out);
    eprintln!("python reader through the bridge: {j}");
    assert_eq!(j["error"], serde_json::Value::Null, "{j}");
    assert_eq!(j["frames"], 5, "{j}");
    assert_eq!(j["bad"], 0, "{j}");
    assert_eq!(j["shapes"], serde_json::json!([[480, 640, 3]]));
    // Closing the native channel ends the bridge, which removes the seed objects.
    w.close().unwrap();
    let status = bridge.wait_with_output().unwrap().status;
    assert!(status.success(), "{status:?}");
    for f in [
        format!("/dev/shm/{dst}"),
        format!("/dev/shm/{dst}-meta"),
        format!("/dev/shm/sem.{dst}"),
    ] {
        assert!(!Path::new(&f).exists(), "{f} left behind");
    }
}

/// A Python writer killed while holding the semaphore: `shmframe read --protocol seed` exits
/// with an error saying so, instead of hanging like the article's reader.
#[test]
fn cli_read_seed_reports_a_stuck_semaphore() {
    let Some(py) = python() else { return };
    let name = unique("stuck");
    let _c = Cleanup::new(&name);
    let out = peer(
        &py,
        "seed_write.py",
        &[
            &name,
            "--frames",
            "2",
            "--shape",
            "4x4x3",
            "--crash-holding-lock",
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success(), "the writer was to die: {out:?}");
    let out = shmframe(&[
        "read",
        &name,
        "--protocol",
        "seed",
        "--headless",
        "--frames",
        "1",
        "--timeout",
        "60",
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(err.contains("died holding it"), "{err}");
}
