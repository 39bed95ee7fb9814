//! The `shmframe` command end to end.

use crate::util::{self, fails_with, json, ok, read_json, stderr, Dir};
use rustix::process::Signal;
use std::time::Duration;

/// BT.601 luma, as `--format gray8` computes it.
fn luma(p: &image::Rgb<u8>) -> u8 {
    let [r, g, b] = p.0.map(u32::from);
    ((77 * r + 150 * g + 29 * b + 128) >> 8) as u8
}

/// Publishes `img` through `write --format FORMAT` and reads 4 frames with `--save --every 1`;
/// returns the reader's JSON and the snapshots.
fn round_trip(format: &str) -> (image::RgbImage, serde_json::Value, Vec<image::DynamicImage>) {
    let mut d = Dir::new(&format!("rt-{format}"));
    let ch = d.channel("rt");
    let img = util::pattern(40, 30);
    let src = util::save_png(&d, "src.png", &img);
    let snaps = d.join("snaps");
    let snaps_s = snaps.display().to_string();
    let reader = d.spawn(
        &[
            &read_json(&ch, "4")[..],
            &["--save", &snaps_s, "--every", "1"],
        ]
        .concat(),
    );
    let writer = d.spawn(&[
        "write", &ch, "--source", &src, "--format", format, "--fps", "50",
    ]);
    let out = d.wait(reader);
    let j = json(&out);
    d.signal(writer, Signal::INT);
    ok(&d.wait(writer));
    let files = util::pngs(&snaps);
    assert_eq!(files.len(), 4, "one snapshot per frame: {files:?}");
    let shots = files.iter().map(|f| image::open(f).unwrap()).collect();
    (img, j, shots)
}

#[test]
fn png_source_arrives_exactly_as_bgr8() {
    let (img, j, shots) = round_trip("bgr8");
    assert_eq!(j["frames"], 4);
    assert_eq!(j["shape"], serde_json::json!([30, 40, 3]));
    assert_eq!(j["dtype"], "uint8");
    assert_eq!(j["torn"], 0);
    assert!(j["fps"].as_f64().unwrap() > 0.0);
    assert!(j["latency_us_p50"].is_u64() || j["latency_us_p50"].is_null());
    for s in shots {
        assert_eq!(
            s.into_rgb8(),
            img,
            "a bgr8 snapshot is the source image, colours intact"
        );
    }
}

#[test]
fn png_source_arrives_exactly_as_rgb8() {
    let (img, j, shots) = round_trip("rgb8");
    assert_eq!(j["shape"], serde_json::json!([30, 40, 3]));
    for s in shots {
        assert_eq!(s.into_rgb8(), img);
    }
}

#[test]
fn png_source_arrives_as_gray8_hxw() {
    let (img, j, shots) = round_trip("gray8");
    assert_eq!(
        j["shape"],
        serde_json::json!([30, 40]),
        "gray8 frames are 2-d"
    );
    let want: Vec<u8> = img.pixels().map(luma).collect();
    for s in shots {
        let s = s.into_luma8();
        assert_eq!(s.as_raw(), &want);
    }
}

#[test]
fn bgr8_bytes_in_the_channel_are_opencv_order() {
    let mut d = Dir::new("order");
    let ch = d.channel("order");
    let img = util::pattern(8, 4);
    let src = util::save_png(&d, "src.png", &img);
    let w = d.spawn(&["write", &ch, "--source", &src, "--fps", "50"]);
    d.wait_channel(&ch);
    let mut r = shmframe::Reader::open(&ch).unwrap();
    let f = r.next(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(f.shape, [4, 8, 3]);
    let want = util::swap_rb(img.as_raw());
    assert_eq!(f.data, want);
    assert_eq!(r.schema().unwrap().type_name, "PixelInfo");
    d.signal(w, Signal::INT);
    ok(&d.wait(w));
}

#[test]
fn testsrc_default_is_640x480_bgr8_and_frames_count_exactly() {
    let mut d = Dir::new("testsrc");
    let ch = d.channel("ts");
    let r = d.spawn(&read_json(&ch, "20"));
    let w = d.spawn(&["write", &ch, "--fps", "100", "--frames", "1000"]);
    let j = json(&d.wait(r));
    assert_eq!(j["frames"], 20);
    assert_eq!(j["shape"], serde_json::json!([480, 640, 3]));
    assert_eq!(j["torn"], 0);
    d.signal(w, Signal::INT);
    let wo = d.wait(w);
    ok(&wo);
    assert!(stderr(&wo).contains("removed"), "{}", stderr(&wo));
}

#[test]
fn writer_with_frames_n_publishes_n_and_removes_its_channel() {
    let mut d = Dir::new("frames");
    let ch = d.channel("fr");
    let r = d.spawn(&["read", &ch, "--headless", "--json", "--timeout", "30"]);
    let w = d.spawn(&[
        "write", &ch, "--size", "64x48", "--fps", "200", "--frames", "25", "--slots", "32",
    ]);
    ok(&d.wait(w));
    let j = json(&d.wait(r));
    // The reader may attach after the first frames; from there on, 32 slots hold the whole
    // run: it sees every frame, in order, up to the last one, then the close.
    assert_eq!(j["last_index"], 24, "{j}");
    assert_eq!(j["missed"], 0, "{j}");
    let first = j["first_index"].as_u64().unwrap();
    assert_eq!(j["frames"].as_u64().unwrap(), 25 - first, "{j}");
    assert_eq!(j["shape"], serde_json::json!([48, 64, 3]));
    assert!(shmframe::channels::inspect(&ch).is_err(), "channel removed");
}

#[test]
fn sigint_and_sigterm_stop_a_writer_cleanly_and_remove_its_channel() {
    for sig in [Signal::INT, Signal::TERM] {
        let mut d = Dir::new("sigint");
        let ch = d.channel("sig");
        let w = d.spawn(&["write", &ch, "--size", "32x32"]);
        d.wait_channel(&ch);
        d.signal(w, sig);
        let o = d.wait(w);
        ok(&o);
        assert!(
            shmframe::channels::inspect(&ch).is_err(),
            "{sig:?}: channel still there"
        );
    }
}

#[test]
fn read_low_latency_gives_the_reader_a_short_time_slice() {
    let mut d = Dir::new("lowlat");
    let ch = d.channel("ll");
    let w = d.spawn(&["write", &ch, "--size", "32x32", "--fps", "50"]);
    d.wait_channel(&ch);
    let r = d.spawn(&[
        "read",
        &ch,
        "--headless",
        "--timeout",
        "30",
        "--low-latency",
    ]);
    // The scheduler's own account of the reader's main thread (the one that waits for frames).
    let sched = format!("/proc/{}/sched", d.pid(r));
    let slice = || -> Option<u64> {
        let text = std::fs::read_to_string(&sched).ok()?;
        let line = text.lines().find(|l| l.starts_with("se.slice"))?;
        line.split(':').nth(1)?.trim().parse().ok()
    };
    let short = kernel() >= (6, 12);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while short && slice() != Some(100_000) && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = slice();
    d.signal(r, Signal::INT);
    let ro = d.wait(r);
    d.signal(w, Signal::INT);
    ok(&d.wait(w));
    ok(&ro);
    if short {
        assert_eq!(
            seen,
            Some(100_000),
            "the reader's slice (ns): {}",
            stderr(&ro)
        );
    } else {
        // A hint: where the kernel has no per-thread slices the reader only says so.
        assert!(stderr(&ro).contains("Linux 6.12"), "{}", stderr(&ro));
    }
}

/// Stale channels are global to the machine, so the tests that make them run in sequence.
#[test]
fn keep_ls_info_rm_and_rm_stale() {
    let _serial = util::stale_lock();
    let mut d = Dir::new("keep");
    let kept = d.channel("kept");

    // --keep: SIGINT leaves the channel, its writer gone.
    let w = d.spawn(&[
        "write", &kept, "--size", "16x8", "--format", "gray8", "--keep",
    ]);
    d.wait_channel(&kept);
    d.signal(w, Signal::INT);
    let o = d.wait(w);
    ok(&o);
    assert!(
        stderr(&o).contains(&format!("shmframe rm {kept}")),
        "{}",
        stderr(&o)
    );
    let st = shmframe::channels::inspect(&kept).expect("kept");
    assert!(!st.writer_alive);

    // ls (text and JSON) and info (text and JSON).
    let table = ok(&d.run(&["ls"]));
    let line = table.lines().find(|l| l.starts_with(&kept)).expect(&table);
    assert!(line.contains("gone") && line.contains("8x16"), "{line}");
    let ls = json(&d.run(&["ls", "--json"]));
    let entry = ls["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == kept.as_str())
        .expect("listed")
        .clone();
    assert_eq!(entry["writer_alive"], false);
    assert_eq!(entry["shape"], serde_json::json!([8, 16]));
    assert_eq!(entry["dtype"], "uint8");
    let info = json(&d.run(&["info", &kept, "--json"]));
    assert_eq!(info["slots"], shmframe::DEFAULT_SLOTS);
    assert_eq!(info["schema"]["type_name"], "PixelInfo");
    assert_eq!(info["schema"]["fields"][1]["name"], "checksum");
    let text = ok(&d.run(&["info", &kept]));
    assert!(text.contains("schema       PixelInfo"), "{text}");
    assert!(text.contains("slot 0"), "{text}");

    // rm NAME, then rm of a missing channel fails and says so.
    ok(&d.run(&["rm", &kept]));
    assert!(shmframe::channels::inspect(&kept).is_err());
    fails_with(&d.run(&["rm", &kept]), &["does not exist"]);
    fails_with(&d.run(&["info", &kept]), &["does not exist"]);

    // A writer killed with SIGKILL leaves a stale channel that rm --stale removes (and a live
    // writer's channel stays).
    let dead = d.channel("dead");
    let live = d.channel("live");
    let w1 = d.spawn(&["write", &dead, "--size", "16x16"]);
    let w2 = d.spawn(&["write", &live, "--size", "16x16"]);
    d.wait_channel(&dead);
    d.wait_channel(&live);
    d.signal(w1, Signal::KILL);
    let _ = d.wait(w1);
    let ls = json(&d.run(&["ls", "--json"]));
    let find = |n: &str| {
        ls["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap_or_else(|| panic!("{n} not listed: {ls}"))
            .clone()
    };
    assert_eq!(find(&dead)["writer_alive"], false);
    assert_eq!(find(&live)["writer_alive"], true);
    let out = ok(&d.run(&["rm", "--stale"]));
    // Another program on the machine may clean stale channels too (then ours is already gone
    // and not in our list); either way it must be gone now.
    assert!(
        shmframe::channels::inspect(&dead).is_err(),
        "stale channel left: {out}"
    );
    assert!(
        shmframe::channels::inspect(&live).is_ok(),
        "a live channel is not stale"
    );
    d.signal(w2, Signal::INT);
    ok(&d.wait(w2));
}

#[test]
fn missing_channel_times_out_with_a_message() {
    let mut d = Dir::new("missing");
    let ch = d.channel("nobody");
    fails_with(
        &d.run(&["read", &ch, "--headless", "--timeout", "0.3"]),
        &["error:", &ch, "did not appear"],
    );
}

#[test]
fn bad_arguments_are_refused_with_what_to_do() {
    let d = Dir::new("badargs");
    fails_with(&d.run(&["write", "x", "--size", "640"]), &["WIDTHxHEIGHT"]);
    fails_with(
        &d.run(&["write", "x", "--size", "0x10"]),
        &["between 1 and"],
    );
    fails_with(
        &d.run(&["write", "x", "--format", "yuv"]),
        &["bgr8", "gray8"],
    );
    fails_with(&d.run(&["write", "x", "--mode", "999"]), &["0o600"]);
    fails_with(
        &d.run(&["write", "x", "--fps", "0"]),
        &["frames per second"],
    );
    fails_with(
        &d.run(&["write", "bad name"]),
        &["error:", "letters, digits"],
    );
    fails_with(&d.run(&["write", "-x"]), &[]);
    fails_with(
        &d.run(&["read", "a/b", "--timeout", "1"]),
        &["error:", "a/b"],
    );
    fails_with(&d.run(&["rm"]), &["--stale"]);
}

#[test]
fn missing_camera_and_missing_files_are_clear_errors() {
    let mut d = Dir::new("nocam");
    let ch = d.channel("cam");
    fails_with(
        &d.run(&["write", &ch, "--source", "camera:/dev/video-sft-none"]),
        &["error:", "camera", "does not exist", "camera:/dev/videoN"],
    );
    fails_with(
        &d.run(&["write", &ch, "--source", "no-such.png"]),
        &["error:", "no-such.png", "testsrc"],
    );
    fails_with(
        &d.run(&["write", &ch, "--source", "nothing-*.png"]),
        &["error:", "no file matches"],
    );
    std::fs::write(d.join("fake.png"), b"not a png").unwrap();
    fails_with(
        &d.run(&["write", &ch, "--source", "fake.png"]),
        &["error:", "fake.png"],
    );
    if !d.has_feature("gstreamer") {
        std::fs::write(d.join("clip.mkv"), b"x").unwrap();
        fails_with(
            &d.run(&["write", &ch, "--source", "clip.mkv"]),
            &["--features gstreamer"],
        );
    }
    assert!(
        shmframe::channels::inspect(&ch).is_err(),
        "nothing was created"
    );
}

#[test]
fn read_without_a_display_runs_headless() {
    for display in [None, Some(":97")] {
        let mut d = Dir::new("nodisplay");
        let ch = d.channel("nd");
        let w = d.spawn(&["write", &ch, "--size", "32x24", "--fps", "100"]);
        d.wait_channel(&ch);
        let mut c = d.cmd(&["read", &ch, "--frames", "3", "--json", "--timeout", "30"]);
        if let Some(disp) = display {
            c.env("DISPLAY", disp);
        }
        let o = c.output().unwrap();
        let j = json(&o);
        assert_eq!(j["frames"], 3);
        assert!(stderr(&o).contains("running headless"), "{}", stderr(&o));
        d.signal(w, Signal::INT);
        ok(&d.wait(w));
    }
}

#[test]
fn glob_source_loops_over_the_images() {
    let mut d = Dir::new("glob");
    let ch = d.channel("glob");
    let a = image::RgbImage::from_pixel(6, 4, image::Rgb([200, 10, 10]));
    let b = image::RgbImage::from_pixel(6, 4, image::Rgb([10, 200, 10]));
    util::save_png(&d, "img-a.png", &a);
    util::save_png(&d, "img-b.png", &b);
    let r = d.spawn(&read_json(&ch, "6"));
    let write = [
        "write",
        &ch,
        "--source",
        "img-*.png",
        "--fps",
        "60",
        "--slots",
        "16",
    ];
    let w = d.spawn(&write);
    d.wait_channel(&ch);
    let j = json(&d.wait(r));
    assert_eq!(j["frames"], 6);
    d.signal(w, Signal::INT);
    ok(&d.wait(w));
    // The library reader sees the alternation directly.
    let w = d.spawn(&write);
    d.wait_channel(&ch);
    let mut rd = shmframe::Reader::open(&ch).unwrap();
    let colours: Vec<u8> = (0..4)
        .map(|_| rd.next(Some(Duration::from_secs(10))).unwrap().data[2])
        .collect();
    assert!(
        colours.windows(2).all(|w| w[0] != w[1]),
        "images alternate: {colours:?}"
    );
    d.signal(w, Signal::INT);
    ok(&d.wait(w));
}

#[test]
fn demo_runs_two_processes_and_saves_a_snapshot() {
    let d = Dir::new("demo");
    let o = d.run(&["demo", "--seconds", "1"]);
    let out = ok(&o);
    assert!(out.contains("torn        0"), "{out}");
    let snap = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("snapshot"))
        .map(|s| s.trim().to_string())
        .expect(&out);
    let img = image::open(&snap).unwrap();
    assert_eq!((img.width(), img.height()), (640, 480));
    std::fs::remove_dir_all(std::path::Path::new(&snap).parent().unwrap()).unwrap();
}

#[test]
fn seed_protocol_write_and_read() {
    let mut d = Dir::new("seed");
    let ch = d.channel("seed");
    let img = util::pattern(20, 10);
    let src = util::save_png(&d, "src.png", &img);
    let snaps = d.join("snaps").display().to_string();
    let w = d.spawn(&[
        "write",
        &ch,
        "--protocol",
        "seed",
        "--source",
        &src,
        "--fps",
        "50",
    ]);
    let o = d.run(&[
        "read",
        &ch,
        "--protocol",
        "seed",
        "--headless",
        "--frames",
        "3",
        "--json",
        "--save",
        &snaps,
        "--every",
        "1",
        "--timeout",
        "30",
    ]);
    let j = json(&o);
    assert_eq!(j["frames"], 3);
    assert_eq!(j["shape"], serde_json::json!([10, 20, 3]));
    assert!(
        j["latency_us_p50"].is_null(),
        "the article's protocol has no timestamps"
    );
    for f in util::pngs(&d.join("snaps")) {
        assert_eq!(image::open(f).unwrap().into_rgb8(), img);
    }
    d.signal(w, Signal::INT);
    ok(&d.wait(w));
    assert!(
        !std::path::Path::new("/dev/shm").join(&ch).exists(),
        "seed objects removed"
    );
}

#[test]
fn bridge_native_to_seed_to_native() {
    let mut d = Dir::new("bridge");
    let a = d.channel("a");
    let s = d.channel("s");
    let b = d.channel("b");
    let img = util::pattern(12, 6);
    let src = util::save_png(&d, "src.png", &img);
    let w = d.spawn(&["write", &a, "--source", &src, "--fps", "50"]);
    d.wait_channel(&a);
    let seed_to = format!("seed:{s}");
    let b1 = d.spawn(&["bridge", "--from", &a, "--to", &seed_to]);
    let b2 = d.spawn(&["bridge", "--from", &seed_to, "--to", &b]);
    let o = d.run(&read_json(&b, "3"));
    let j = json(&o);
    assert_eq!(j["shape"], serde_json::json!([6, 12, 3]));
    let mut r = shmframe::Reader::open(&b).unwrap();
    let f = r.next(Some(Duration::from_secs(10))).unwrap();
    let want = util::swap_rb(img.as_raw());
    assert_eq!(f.data, want, "pixels survive native → seed → native");
    for p in [b2, b1, w] {
        d.signal(p, Signal::INT);
        ok(&d.wait(p));
    }
}

#[test]
fn bridge_native_to_native_keeps_metadata_and_counts_frames() {
    let mut d = Dir::new("bridge-nn");
    let a = d.channel("a");
    let b = d.channel("b");
    let w = d.spawn(&["write", &a, "--size", "16x8", "--fps", "100"]);
    d.wait_channel(&a);
    // The reader waits for `b` before the bridge makes it, and the bridge carries ten times the
    // frames it needs: a reader that starts late on a loaded machine still gets its two frames
    // before the bridge closes `b`.
    let rd = d.spawn(&read_json(&b, "2"));
    let br = d.spawn(&["bridge", "--from", &a, "--to", &b, "--frames", "20"]);
    let o = d.wait(rd);
    let j = json(&o);
    assert_eq!(j["torn"], 0, "checksums in the copied metadata still match");
    ok(&d.wait(br));
    d.signal(w, Signal::INT);
    ok(&d.wait(w));
}

#[test]
fn zenoh_endpoint_without_the_feature_says_how_to_get_it() {
    let d = Dir::new("zenoh");
    if d.has_feature("zenoh") {
        return;
    }
    fails_with(
        &d.run(&["bridge", "--from", "cam", "--to", "zenoh:a/b"]),
        &["error:", "--features zenoh"],
    );
}

#[test]
fn reader_outlives_a_killed_writer_and_resumes_with_the_next_one() {
    let _serial = util::stale_lock();
    let mut d = Dir::new("resume");
    let ch = d.channel("resume");
    let w1 = d.spawn(&["write", &ch, "--size", "16x16", "--fps", "50"]);
    d.wait_channel(&ch);
    let log = d.join("reader.log");
    let reader = d
        .cmd(&read_json(&ch, "10"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    d.signal(w1, Signal::KILL);
    let _ = d.wait(w1);
    // The reader says the writer is gone and keeps waiting …
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap().contains("is gone") {
        assert!(
            std::time::Instant::now() < deadline,
            "no 'gone' message: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // … and takes frames from the writer that takes the name over.
    let w2 = d.spawn(&["write", &ch, "--size", "16x16", "--fps", "50"]);
    let o = reader.wait_with_output().unwrap();
    let j = json(&o);
    assert_eq!(j["frames"], 10);
    d.signal(w2, Signal::INT);
    ok(&d.wait(w2));
}

#[test]
fn reader_gives_up_on_a_dead_writer_after_the_timeout() {
    let _serial = util::stale_lock();
    let mut d = Dir::new("gone");
    let ch = d.channel("gone");
    let w = d.spawn(&["write", &ch, "--size", "16x16"]);
    d.wait_channel(&ch);
    d.signal(w, Signal::KILL);
    let _ = d.wait(w);
    fails_with(
        &d.run(&["read", &ch, "--headless", "--timeout", "0.5"]),
        &["error:", "is gone", "no new writer appeared"],
    );
}

/// The running kernel's version as (major, minor).
fn kernel() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (next(), next())
}
