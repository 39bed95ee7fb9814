//! The Rust side of the Python peers in this directory (posix_ipc + numpy programs that speak the
//! article's protocol): finding the interpreter, starting a peer, the pixel pattern they write and
//! check, and their JSON summaries. Shared by `crates/shmframe/tests/seed.rs` and
//! `crates/shmframe-cli/tests/seed_cli.rs` (which includes this file by path).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The interpreter with posix_ipc and numpy named by `SHMFRAME_TEST_PYTHON`. The tests that call
/// this are `#[ignore]`d: `scripts/test.d/30-seed.sh` sets the variable up and runs them; run by
/// hand without it, they fail with this message.
pub fn python() -> PathBuf {
    match std::env::var_os("SHMFRAME_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "SHMFRAME_TEST_PYTHON is not set: this test of the article's protocol needs the \
             Python peers (posix_ipc and numpy); run scripts/test.d/30-seed.sh, which installs \
             them and sets the variable"
        ),
    }
}

/// `python seed_peers/SCRIPT ARGS…` with stdout piped (its JSON summary) and stderr shown.
pub fn peer(py: &Path, script: &str, args: &[&str]) -> Command {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = if dir.ends_with("shmframe") {
        dir.join("tests/seed_peers")
    } else {
        dir.join("../shmframe/tests/seed_peers")
    };
    let mut c = Command::new(py);
    c.arg(dir.join(script)).args(args);
    c.stdout(Stdio::piped()).stderr(Stdio::inherit());
    c
}

/// The pattern of `seed_pattern.py`: frame number `count` of shape HxWxC.
pub fn pattern(shape: [usize; 3], count: i64) -> Vec<u8> {
    let [h, w, c] = shape;
    let k = (7 * count as u64 + h as u64 + 3 * w as u64 + 5 * c as u64) % 256;
    (0..h * w * c)
        .map(|i| ((i as u64 + i as u64 / 1021 + k) % 256) as u8)
        .collect()
}

/// The count (mod 256) of a pattern frame, from its first byte (183 is 7's inverse mod 256).
pub fn count_of(shape: [usize; 3], data: &[u8]) -> i64 {
    let [h, w, c] = shape;
    let base = (h + 3 * w + 5 * c) as i64;
    ((data[0] as i64 - base).rem_euclid(256) * 183) % 256
}

/// The last line of `out` that starts with `{`: a peer's (or the CLI's) JSON summary.
pub fn last_json_line(out: &[u8]) -> String {
    let s = String::from_utf8_lossy(out);
    s.lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON summary in output:\n{s}"))
        .to_string()
}

/// Waits for a peer, asserts it succeeded and returns its JSON summary line.
pub fn finish(child: Child) -> String {
    let out = child.wait_with_output().expect("wait for peer");
    assert!(out.status.success(), "peer failed: {:?}", out.status);
    last_json_line(&out.stdout)
}

/// Whether each of the article's three objects of channel `name` exists: the frame object
/// `NAME`, the metadata object `NAME-meta` and the semaphore `sem.NAME`.
pub fn exists(name: &str) -> [bool; 3] {
    seed_objects(name).map(|p| p.exists())
}

/// The paths of the article's three objects of channel `name` in /dev/shm.
pub fn seed_objects(name: &str) -> [PathBuf; 3] {
    [
        format!("/dev/shm/{name}"),
        format!("/dev/shm/{name}-meta"),
        format!("/dev/shm/sem.{name}"),
    ]
    .map(PathBuf::from)
}

/// `seed_write.py NAME --frames N --shape HxWxC --fps F --wait-stdin EXTRA…`, started: it writes
/// its frames, then keeps its objects until its stdin is closed (`drop(child.stdin.take())`).
pub fn python_writer(
    py: &Path,
    name: &str,
    frames: u32,
    shape: [usize; 3],
    fps: u32,
    extra: &[&str],
) -> Child {
    let [h, w, c] = shape;
    let (frames, shape, fps) = (frames.to_string(), format!("{h}x{w}x{c}"), fps.to_string());
    let mut args = vec![
        name,
        "--frames",
        &frames,
        "--shape",
        &shape,
        "--fps",
        &fps,
        "--wait-stdin",
    ];
    args.extend_from_slice(extra);
    peer(py, "seed_write.py", &args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start seed_write.py")
}

/// Runs `seed_write.py NAME --frames N --shape HxWxC --crash-holding-lock`: it writes its frames
/// and then SIGKILLs itself in the middle of an update, holding the semaphore. Checks it died so.
pub fn python_writer_crashing_with_the_lock(py: &Path, name: &str, frames: u32, shape: [usize; 3]) {
    use std::os::unix::process::ExitStatusExt;
    let [h, w, c] = shape;
    let (frames, shape) = (frames.to_string(), format!("{h}x{w}x{c}"));
    let args = [
        name,
        "--frames",
        &frames,
        "--shape",
        &shape,
        "--crash-holding-lock",
    ];
    let out = peer(py, "seed_write.py", &args).output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "the writer was to die by SIGKILL: {out:?}"
    );
}
