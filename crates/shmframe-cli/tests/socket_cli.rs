//! `shmframe write/read/info/bridge` with socket-served channels (`--socket PATH`, `socket:PATH`),
//! each side a separate `shmframe` process.

use crate::util::{self, fails_with, json, ok, Dir};
use rustix::process::Signal;
use std::time::Duration;

/// `read --socket PATH --headless --frames N --json --timeout 60`.
fn read_socket<'a>(sock: &'a str, frames: &'a str) -> [&'a str; 9] {
    [
        "read",
        "--socket",
        sock,
        "--headless",
        "--frames",
        frames,
        "--json",
        "--timeout",
        "60",
    ]
}

/// Nothing of channel `name` in /dev/shm.
fn absent_from_dev_shm(name: &str) {
    let found: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(name))
        .collect();
    assert_eq!(found, Vec::<String>::new(), "nothing named in /dev/shm");
}

#[test]
fn write_read_and_info_over_a_socket() {
    let mut d = Dir::new("sock");
    let ch = d.channel("cam");
    let sock = d.join("cam.sock").display().to_string();
    let (w, log) = d.spawn_logged(&[
        "write", &ch, "--socket", &sock, "--size", "64x48", "--fps", "100",
    ]);
    d.wait_log(w, &log, "served on");
    let j = json(&d.run(&read_socket(&sock, "20")));
    assert_eq!(
        (j["frames"].as_u64(), j["torn"].as_u64()),
        (Some(20), Some(0)),
        "{j}"
    );
    assert_eq!(j["shape"], serde_json::json!([48, 64, 3]));
    let info = ok(&d.run(&["info", "--socket", &sock]));
    assert!(info.contains(&format!("channel      {ch}")), "{info}");
    assert!(info.contains("memfd") && info.contains(&sock), "{info}");
    let ij = json(&d.run(&["info", "--socket", &sock, "--json"]));
    assert_eq!(ij["socket"], serde_json::json!(sock));
    assert_eq!(ij["writer_alive"], true);
    absent_from_dev_shm(&ch);
    d.signal(w, Signal::INT);
    ok(&d.wait(w));
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("socket removed"), "{said}");
    assert!(!d.join("cam.sock").exists());
}

#[test]
fn socket_errors_name_the_path_and_what_to_do() {
    let mut d = Dir::new("sock-err");
    let sock = d.join("none.sock").display().to_string();
    fails_with(
        &d.run(&["read", "--socket", &sock, "--headless", "--timeout", "0.3"]),
        &["error:", &sock, "--socket"],
    );
    fails_with(
        &d.run(&["info", "--socket", &sock]),
        &["error:", "no such socket"],
    );
    let ch = d.channel("x");
    fails_with(
        &d.run(&["write", &ch, "--socket", &sock, "--keep"]),
        &["--keep", "--socket"],
    );
    std::fs::write(d.join("file"), b"data").unwrap();
    let file = d.join("file").display().to_string();
    fails_with(
        &d.run(&["write", &ch, "--socket", &file, "--frames", "1"]),
        &["error:", "not a socket"],
    );
    let live = d.join("live.sock").display().to_string();
    let (w, log) = d.spawn_logged(&["write", &ch, "--socket", &live, "--fps", "50"]);
    d.wait_log(w, &log, "served on");
    let pid = d.pid(w).to_string();
    let ch2 = d.channel("y");
    fails_with(
        &d.run(&["write", &ch2, "--socket", &live, "--frames", "1"]),
        &["error:", "live writer", &pid],
    );
    d.signal(w, Signal::INT);
    ok(&d.wait(w));
}

#[test]
fn bridge_named_to_socket_to_named() {
    let mut d = Dir::new("sock-bridge");
    let a = d.channel("a");
    let b = d.channel("b");
    let sock = d.join("mid.sock").display().to_string();
    let to_sock = format!("socket:{sock}");
    let w = d.spawn(&["write", &a, "--size", "16x8", "--fps", "100"]);
    d.wait_channel(&a);
    let b1 = d.spawn(&["bridge", "--from", &a, "--to", &to_sock]);
    let b2 = d.spawn(&["bridge", "--from", &to_sock, "--to", &b]);
    let j = json(&d.run(&util::read_json(&b, "5")));
    assert_eq!(
        j["torn"], 0,
        "checksums survive named → socket → named: {j}"
    );
    assert_eq!(j["shape"], serde_json::json!([8, 16, 3]));
    for p in [b2, b1, w] {
        d.signal(p, Signal::INT);
        ok(&d.wait(p));
    }
    assert!(!d.join("mid.sock").exists());
}

#[test]
fn a_reader_waits_for_a_socket_and_follows_a_writer_restarted_after_kill_9() {
    let mut d = Dir::new("sock-follow");
    let ch = d.channel("f");
    let sock = d.join("f.sock").display().to_string();
    let r = d.spawn(&read_socket(&sock, "40"));
    std::thread::sleep(Duration::from_millis(300));
    let (w1, log) = d.spawn_logged(&[
        "write", &ch, "--socket", &sock, "--size", "16x16", "--fps", "50",
    ]);
    d.wait_log(w1, &log, "served on");
    std::thread::sleep(Duration::from_millis(300));
    d.signal(w1, Signal::KILL);
    let _ = d.wait(w1);
    let w2 = d.spawn(&[
        "write", &ch, "--socket", &sock, "--size", "16x16", "--fps", "50",
    ]);
    let j = json(&d.wait(r));
    assert_eq!(
        (j["frames"].as_u64(), j["torn"].as_u64()),
        (Some(40), Some(0)),
        "{j}"
    );
    d.signal(w2, Signal::INT);
    ok(&d.wait(w2));
}
