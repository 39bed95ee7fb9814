//! The article's protocol through the real `shmframe` binary (`write`/`read --protocol seed`,
//! `bridge` with `seed:NAME` endpoints), against the Python peers of the library's tests
//! (`crates/shmframe/tests/seed_peers`, posix_ipc + numpy). Pixels are checked end to end.
//!
//! These need an interpreter with `posix_ipc` and `numpy`, named by `SHMFRAME_TEST_PYTHON`. They
//! are `#[ignore]`d, so a plain `cargo test` reports them as ignored; `scripts/test.d/30-seed.sh`
//! sets the interpreter up and runs them with `--include-ignored`.

#[path = "../../shmframe/tests/seed_peers/mod.rs"]
mod seed_peers;
mod util;

use seed_peers::{
    count_of, exists, finish, last_json_line, pattern, peer, python, python_writer,
    python_writer_crashing_with_the_lock,
};
use std::time::Duration;
use util::{fails_with, ok, swap_rb, Dir};

const LONG: Duration = Duration::from_secs(60);

/// The JSON summary a peer or the CLI printed last.
fn json_of(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// `shmframe write --protocol seed --source X.png`: the Python reader (attaching like the
/// article's, before the writer exists) receives the image's pixels exactly, in OpenCV's BGR
/// order (`--format bgr8`, the default).
#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn cli_write_seed_png_to_python_reader() {
    let py = python();
    let mut d = Dir::new("seed-w");
    let name = d.channel("w");
    let (w, h) = (64u32, 48u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x * 7 + y * 3) % 256) as u8])
    });
    let png = d.join("src.png");
    img.save(&png).unwrap();
    let expect = d.join("expect.bgr");
    std::fs::write(&expect, swap_rb(img.as_raw())).unwrap();

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
    ok(&d.run(&[
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
    ]));
    let j = json_of(&finish(reader));
    eprintln!("python reader: {j}");
    assert_eq!(j["error"], serde_json::Value::Null, "{j}");
    assert_eq!(j["bad"], 0, "{j}");
    assert_eq!(j["last_count"], 20, "{j}");
    assert_eq!(j["shapes"], serde_json::json!([[48, 64, 3]]));
    assert!(j["frames"].as_u64().unwrap() >= 1);
    // --keep left the objects (the seed writer does not remove them then).
    assert_eq!(exists(&name), [true; 3]);
}

/// `shmframe read --protocol seed --headless --json --save`: frames from the Python writer are
/// counted in the JSON summary, and each saved snapshot (RGB PNG of the BGR frame) holds the
/// writer's pixels.
#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn python_writer_to_cli_read_seed() {
    let py = python();
    let mut d = Dir::new("seed-r");
    let name = d.channel("r");
    let shape = [48, 64, 3];
    let mut writer = python_writer(&py, &name, 100, shape, 100, &[]);
    let snaps = d.join("snaps");
    let out = d.run(&[
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
    ]);
    drop(writer.stdin.take());
    finish(writer);
    let j = json_of(&last_json_line(ok(&out).as_bytes()));
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
            swap_rb(img.as_raw()),
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
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn cli_bridge_seed_to_native() {
    let py = python();
    let mut d = Dir::new("seed-bridge-in");
    let src = d.channel("bs");
    let dst = d.channel("bn");
    let shape = [480, 640, 3];
    let mut writer = python_writer(&py, &src, 1000, shape, 100, &[]);
    let from = format!("seed:{src}");
    let bridge = d.spawn(&["bridge", "--from", &from, "--to", &dst, "--frames", "10"]);
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
    ok(&d.wait(bridge));
    drop(writer.stdin.take());
    finish(writer);
    assert!(got >= 1, "no frame crossed the bridge");
    eprintln!("native reader checked {got} bridged frames");
}

/// `shmframe bridge --from B --to seed:A`: a native writer feeds an article-protocol channel;
/// the Python reader (attaching like the article's) gets the pixels.
#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn cli_bridge_native_to_seed() {
    let py = python();
    let mut d = Dir::new("seed-bridge-out");
    let src = d.channel("bn");
    let dst = d.channel("bs");
    let shape = [480, 640, 3];
    let mut w = shmframe::Writer::create(&src, shmframe::WriterOptions::new()).unwrap();
    let to = format!("seed:{dst}");
    let bridge = d.spawn(&["bridge", "--from", &src, "--to", &to]);
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
    let j = json_of(&last_json_line(&out));
    eprintln!("python reader through the bridge: {j}");
    assert_eq!(j["error"], serde_json::Value::Null, "{j}");
    assert_eq!(j["frames"], 5, "{j}");
    assert_eq!(j["bad"], 0, "{j}");
    assert_eq!(j["shapes"], serde_json::json!([[480, 640, 3]]));
    // Closing the native channel ends the bridge, which removes the seed objects.
    w.close().unwrap();
    ok(&d.wait(bridge));
    assert_eq!(exists(&dst), [false; 3], "objects of {dst} left behind");
}

/// A Python writer killed while holding the semaphore: `shmframe read --protocol seed` exits
/// with an error saying so, instead of hanging like the article's reader.
#[test]
#[ignore = "needs Python with posix_ipc and numpy; run by scripts/test.d/30-seed.sh"]
fn cli_read_seed_reports_a_stuck_semaphore() {
    let py = python();
    let mut d = Dir::new("seed-stuck");
    let name = d.channel("stuck");
    python_writer_crashing_with_the_lock(&py, &name, 2, [4, 4, 3]);
    let out = d.run(&[
        "read",
        &name,
        "--protocol",
        "seed",
        "--headless",
        "--frames",
        "1",
        "--timeout",
        "60",
    ]);
    fails_with(&out, &["died holding it"]);
}
