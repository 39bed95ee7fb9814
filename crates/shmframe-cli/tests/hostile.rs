//! Hostile conditions for the command: signals while it waits, extreme numbers on the command
//! line, and entries in /dev/shm under our prefix that are not shmframe channels.

use crate::util::{self, fails_with, json, ok, stderr, stdout, Dir};
use rustix::process::Signal;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How soon a command must exit after SIGINT or SIGTERM. It checks for them at least every
/// 200 ms; the bound leaves room for a loaded machine and is no speed measurement.
const PROMPT: Duration = Duration::from_secs(3);

/// Starts `args`, waits until it says `ready` on stderr (it is waiting), sends `sig`, and
/// returns its exit status, stdout and stderr, failing if it does not exit within [`PROMPT`].
fn stop_while_waiting(
    d: &mut Dir,
    args: &[&str],
    ready: &str,
    sig: Signal,
) -> (std::process::ExitStatus, String, String) {
    let (i, log) = d.spawn_logged(args);
    d.wait_log(i, &log, ready);
    d.signal(i, sig);
    let Some(st) = d.exits_within(i, PROMPT) else {
        panic!(
            "shmframe {args:?} still running {PROMPT:?} after {sig:?}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    };
    let out = stdout(&d.wait(i));
    (st, out, std::fs::read_to_string(&log).unwrap())
}

#[test]
fn sigint_and_sigterm_end_every_wait_promptly_and_cleanly() {
    let mut d = Dir::new("sigwait");
    let ch = d.channel("nobody");
    let copy = d.channel("copy");
    for sig in [Signal::INT, Signal::TERM] {
        // A reader waiting (up to 10 minutes) for its channel to appear, either protocol.
        for protocol in ["native", "seed"] {
            let args = [
                "read",
                &ch,
                "--headless",
                "--json",
                "--timeout",
                "600",
                "--protocol",
                protocol,
            ];
            let (st, out, err) = stop_while_waiting(&mut d, &args, "waiting up to", sig);
            assert!(st.success(), "{protocol} read, {sig:?}: {st}\n{err}");
            assert!(
                err.contains("stopped before") && err.contains(&format!("channel `{ch}`")),
                "{err}"
            );
            let j: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
            assert_eq!(j["frames"], 0, "{j}");
        }
        // A bridge waiting for its source: stops without creating its destination.
        let args = ["bridge", "--from", &ch, "--to", &copy];
        let (st, _, err) = stop_while_waiting(&mut d, &args, "waiting up to", sig);
        assert!(st.success(), "bridge, {sig:?}: {st}\n{err}");
        assert!(err.contains("0 frames copied"), "{err}");
        assert!(
            shmframe::channels::inspect(&copy).is_err(),
            "{copy} created"
        );
        // A writer waiting for its next frame (one every 11.6 days): closes its channel.
        let w = d.channel("slow");
        let args = ["write", &w, "--size", "8x8", "--fps", "1e-6"];
        let (st, _, err) = stop_while_waiting(&mut d, &args, "Ctrl-C stops", sig);
        assert!(st.success(), "write, {sig:?}: {st}\n{err}");
        assert!(shmframe::channels::inspect(&w).is_err(), "{w} left behind");
    }
}

/// `demo` waits for its reader; SIGTERM sent to it alone must stop both of its processes.
#[test]
fn sigterm_stops_demo_and_both_of_its_processes() {
    let mut d = Dir::new("demoterm");
    let (i, log) = d.spawn_logged(&["demo", "--seconds", "600"]);
    d.wait_log(i, &log, "share channel");
    let text = std::fs::read_to_string(&log).unwrap();
    let pids: Vec<u32> = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "pid")
        .map(|w| w[1].parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{text}");
    let demo_pid = d.pid(i);
    d.signal(i, Signal::TERM);
    let st = d.exits_within(i, PROMPT);
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("shmframe-demo-{demo_pid}")));
    let st = st.unwrap_or_else(|| panic!("demo still running {PROMPT:?} after SIGTERM: {text}"));
    assert_eq!(st.code(), Some(1), "{text}");
    assert!(text.contains("interrupted"), "{text}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "demo's child {pid} still running"
        );
    }
    let name = format!("demo-{demo_pid}");
    assert!(shmframe::channels::inspect(&name).is_err(), "{name} left");
}

/// Numbers at and beyond the edges of `f64` and `u64`: each is refused with a message (exit 2
/// for the argument parser, 1 for the library), or works; never a panic (exit 101).
#[test]
fn extreme_numbers_are_refused_or_work_never_a_panic() {
    let mut d = Dir::new("extreme");
    let ch = d.channel("x");
    let src = d.channel("src");
    let dst = d.channel("dst");
    const FLOATS: &[&str] = &[
        "0",
        "-0",
        "-0.0",
        "NaN",
        "-nan",
        "inf",
        "-inf",
        "1e-300",
        "4.9e-324",
        "1e-19",
        "1e-7",
        "1e-6",
        "1e19",
        "1e9",
        "1e308",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "-1e-300",
        "",
        "1e",
    ];
    const INTEGERS: &[&str] = &[
        "0",
        "1",
        "-0",
        "-1",
        "65",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "1e3",
        "NaN",
        "",
    ];
    let check = |what: &str, o: &std::process::Output, clear: &[&str]| {
        let err = stderr(o);
        assert!(
            !err.contains("panicked") && o.status.code() != Some(101),
            "{what}: {err}"
        );
        if !o.status.success() {
            assert!(
                matches!(o.status.code(), Some(1 | 2)),
                "{what}: {:?} {err}",
                o.status
            );
            assert!(
                err.contains("error:") && clear.iter().any(|c| err.contains(c)),
                "{what}: no clear message: {err}"
            );
        }
    };
    let limit = Duration::from_secs(30);
    // `--option=VALUE`, so that clap takes `-1` as a value, not an option.
    let opt = |o: &str, v: &str| format!("--{o}={v}");
    for v in FLOATS {
        let args = [
            "write",
            &ch,
            "--size",
            "8x8",
            "--frames",
            "1",
            &opt("fps", v),
        ];
        let o = d.run_within(&args, limit);
        check(
            &format!("write --fps {v:?}"),
            &o,
            &["frames per second between"],
        );
        if ["1e-300", "1e-19", "4.9e-324", "1e-7"].contains(v) {
            assert_eq!(o.status.code(), Some(2), "--fps {v} must be refused");
        }
        let args = [
            "read",
            &ch,
            "--headless",
            "--timeout",
            "0.2",
            &opt("seconds", v),
        ];
        check(
            &format!("read --seconds {v:?}"),
            &d.run_within(&args, limit),
            &["number of seconds", "did not appear"],
        );
        let args = ["demo", &opt("seconds", v)];
        if v.parse::<f64>().is_ok_and(|f| (0.0..=1e9).contains(&f)) {
            continue; // a valid demo runs; its signals are tested above
        }
        check(
            &format!("demo --seconds {v:?}"),
            &d.run_within(&args, limit),
            &["number of seconds"],
        );
    }
    // `read --timeout` with every value: refused, timed out, or waiting until SIGINT.
    for v in FLOATS {
        let args = ["read", &ch, "--headless", &opt("timeout", v)];
        let (i, log) = d.spawn_logged(&args);
        let st = loop {
            if let Some(st) = d.exits_within(i, Duration::from_millis(20)) {
                break st;
            }
            if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("waiting up to")) {
                d.signal(i, Signal::INT);
                break d
                    .exits_within(i, PROMPT)
                    .unwrap_or_else(|| panic!("read --timeout {v}: no exit after SIGINT"));
            }
        };
        let err = std::fs::read_to_string(&log).unwrap();
        assert!(
            !err.contains("panicked") && st.code() != Some(101),
            "{v}: {err}"
        );
        assert!(
            st.success() || err.contains("number of seconds") || err.contains("did not appear"),
            "read --timeout {v:?}: {st} {err}"
        );
        let _ = d.wait(i);
    }
    for v in INTEGERS {
        let args = [
            "write",
            &ch,
            "--size",
            "8x8",
            "--frames",
            "1",
            &opt("slots", v),
        ];
        let o = d.run_within(&args, limit);
        check(&format!("--slots {v:?}"), &o, &["slots", "invalid value"]);
        // (A valid huge frame count would write for ever.)
        if !v.parse::<u64>().is_ok_and(|n| n > 100) {
            let args = [
                "write",
                &ch,
                "--size",
                "8x8",
                "--fps",
                "1000",
                &opt("frames", v),
            ];
            let o = d.run_within(&args, limit);
            check(&format!("--frames {v:?}"), &o, &["invalid value"]);
        }
        let args = [
            "read",
            &ch,
            "--headless",
            "--timeout",
            "0.1",
            &opt("frames", v),
            &opt("every", v),
        ];
        let o = d.run_within(&args, limit);
        check(
            &format!("read {v:?}"),
            &o,
            &["invalid value", "did not appear"],
        );
        if v.parse::<u64>().is_err() {
            let args = ["bridge", "--from", &src, "--to", &dst, &opt("frames", v)];
            let o = d.run_within(&args, limit);
            check(&format!("bridge --frames {v:?}"), &o, &["invalid value"]);
        }
        let size = format!("{v}x{v}");
        if v.parse::<u64>().is_ok_and(|n| n > 100 && n <= 16384) {
            continue; // a valid size, but a large frame: not what this test is about
        }
        let args = ["write", &ch, "--frames", "1", &opt("size", &size)];
        let o = d.run_within(&args, limit);
        check(
            &format!("--size {size}"),
            &o,
            &["WIDTHxHEIGHT", "between 1 and"],
        );
    }
    for mode in [
        "-1",
        "0o7777",
        "4294967296",
        "0o1000000000000",
        "0o400",
        "",
        "0x1ff",
    ] {
        let args = [
            "write",
            &ch,
            "--size",
            "8x8",
            "--frames",
            "1",
            &opt("mode", mode),
        ];
        let o = d.run_within(&args, limit);
        check(
            &format!("--mode {mode:?}"),
            &o,
            &["permission", "owner read/write"],
        );
    }
    assert!(
        shmframe::channels::inspect(&ch).is_err(),
        "{ch} left behind"
    );
}

/// Entries of /dev/shm created by the test, removed at the end whatever they are.
struct Entries(Vec<PathBuf>);

impl Entries {
    fn path(&mut self, file_name: &[u8]) -> PathBuf {
        let mut name = b"shmframe.".to_vec();
        name.extend_from_slice(file_name);
        let p = Path::new("/dev/shm").join(OsStr::from_bytes(&name));
        self.0.push(p.clone());
        p
    }
}

impl Drop for Entries {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir_all(p));
        }
    }
}

/// Bytes that look random (and start nowhere near the channel magic).
fn junk(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// `rm --stale` removes only what it can prove is a dead shmframe channel; `ls`, `info`, `read`
/// and `rm` name FIFOs, directories, links and sockets as such and never open them (a FIFO would
/// block them); names that are not UTF-8 are listed escaped and removable in that form.
#[test]
fn foreign_entries_are_named_never_opened_and_never_removed_as_stale() {
    let _serial = util::stale_lock();
    let mut d = Dir::new("foreign");
    let base = d.channel("f");
    let mut e = Entries(Vec::new());
    let limit = Duration::from_secs(20);

    // Regular files under our prefix that are not channels.
    let junk_file = e.path(format!("{base}-junk").as_bytes());
    std::fs::write(&junk_file, junk(8192, 7)).unwrap();
    let zeros = e.path(format!("{base}-zeros").as_bytes());
    std::fs::write(&zeros, vec![0u8; 8192]).unwrap();
    let mut future = vec![0u8; 8192];
    future[..8].copy_from_slice(&shmframe::layout::MAGIC);
    future[8..12].copy_from_slice(&99u32.to_ne_bytes());
    let future_file = e.path(format!("{base}-future").as_bytes());
    std::fs::write(&future_file, &future).unwrap();
    let mut raw = format!("{base}-").into_bytes();
    raw.extend_from_slice(b"\xff\xfe");
    let not_utf8 = e.path(&raw);
    std::fs::write(&not_utf8, junk(100, 3)).unwrap();
    let control = e.path(format!("{base}-a\nb").as_bytes());
    std::fs::write(&control, junk(100, 5)).unwrap();
    // Entries that are not files at all.
    let fifo = e.path(format!("{base}-fifo").as_bytes());
    let mk = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(mk.success());
    let dir = e.path(format!("{base}-dir").as_bytes());
    std::fs::create_dir(&dir).unwrap();
    let target = d.join("target");
    std::fs::write(&target, junk(64, 11)).unwrap();
    let link = e.path(format!("{base}-link").as_bytes());
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let sock = e.path(format!("{base}-sock").as_bytes());
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // What --stale must remove: a channel whose writer is gone, and the all-zero temporary
    // object of a writer that died creating a channel.
    let dead = d.channel("dead");
    let w = d.spawn(&["write", &dead, "--size", "8x8", "--keep"]);
    d.wait_channel(&dead);
    d.signal(w, Signal::INT);
    ok(&d.wait(w));
    let temp = e.path(format!("{base}-t.tmp-999999999-0").as_bytes());
    std::fs::write(&temp, [0u8; 64]).unwrap();
    // And a live channel.
    let live = d.channel("live");
    let w = d.spawn(&["write", &live, "--size", "8x8"]);
    d.wait_channel(&live);

    let shown = |p: &Path| -> String {
        let n = p.file_name().unwrap().as_bytes();
        n.utf8_chunks()
            .map(|c| {
                let mut s = String::new();
                for ch in c.valid().chars() {
                    if ch.is_control() {
                        s += &format!("\\x{:02x}", ch as u32);
                    } else {
                        s.push(ch);
                    }
                }
                for b in c.invalid() {
                    s += &format!("\\x{b:02x}");
                }
                s
            })
            .collect()
    };
    let ls = json(&d.run_within(&["ls", "--json"], limit));
    let broken = |p: &Path| -> String {
        let object = shown(p);
        ls["broken"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["object"] == object.as_str())
            .unwrap_or_else(|| panic!("{object} not listed as broken: {ls}"))["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(broken(&junk_file).contains("not a shmframe channel"));
    assert!(broken(&zeros).contains("not a shmframe channel"));
    assert!(broken(&future_file).contains("version 99"));
    assert!(broken(&not_utf8).contains("not UTF-8"));
    assert!(shown(&not_utf8).ends_with("-\\xff\\xfe"));
    assert!(shown(&control).ends_with("-a\\x0ab"));
    assert!(broken(&control).contains("not a valid channel name"));
    assert!(broken(&fifo).contains("FIFO"));
    assert!(broken(&dir).contains("directory"));
    assert!(broken(&link).contains("symbolic link"));
    assert!(broken(&sock).contains("socket"));
    assert!(broken(&temp).contains("temporary object"));
    let table = ok(&d.run_within(&["ls"], limit));
    assert!(
        table.contains(&format!("/dev/shm/{}: a FIFO", shown(&fifo))),
        "{table}"
    );

    // info and read name the kind and do not hang on a FIFO.
    for (what, kind) in [
        ("fifo", "FIFO"),
        ("dir", "directory"),
        ("link", "symbolic link"),
    ] {
        let name = format!("{base}-{what}");
        fails_with(
            &d.run_within(&["info", &name], limit),
            &[kind, "not a shmframe channel"],
        );
        let args = ["read", &name, "--headless", "--timeout", "600"];
        fails_with(
            &d.run_within(&args, limit),
            &[kind, "not a shmframe channel"],
        );
    }

    // --stale: only the dead channel and the temporary object.
    let out = ok(&d.run_within(&["rm", "--stale"], limit));
    assert!(!exists(&temp), "stale temporary object left: {out}");
    assert!(
        shmframe::channels::inspect(&dead).is_err(),
        "stale channel left: {out}"
    );
    assert!(
        shmframe::channels::inspect(&live).is_ok(),
        "live channel removed: {out}"
    );
    for p in [
        &junk_file,
        &zeros,
        &future_file,
        &not_utf8,
        &control,
        &fifo,
        &dir,
        &link,
        &sock,
    ] {
        assert!(exists(p), "rm --stale removed {}: {out}", p.display());
    }
    assert!(exists(&target));

    // rm NAME, or the entry as ls shows it.
    for p in [&not_utf8, &control] {
        let arg = format!("/dev/shm/{}", shown(p));
        ok(&d.run_within(&["rm", &arg], limit));
        assert!(!exists(p), "{arg} not removed");
    }
    for what in ["fifo", "sock", "link", "junk"] {
        ok(&d.run_within(&["rm", &format!("{base}-{what}")], limit));
    }
    assert!(!exists(&fifo) && !exists(&sock) && !exists(&link) && !exists(&junk_file));
    assert!(exists(&target), "rm followed the link");
    fails_with(
        &d.run_within(&["rm", &format!("{base}-dir")], limit),
        &["directory"],
    );
    assert!(exists(&dir));
    d.signal(w, Signal::INT);
    ok(&d.wait(w));
}

/// Readers that pin every slot cost the writer frames, never its life: `shmframe write --slots 1`
/// under a reader holding a view of the only slot warns (at a bounded rate), goes on, and
/// publishes the rest once the view is gone. (It used to exit 1 after one frame.)
#[test]
fn write_keeps_running_while_readers_pin_every_slot() {
    let mut d = Dir::new("pinall");
    let ch = d.channel("pinall");
    let (i, log) = d.spawn_logged(&[
        "write", &ch, "--slots", "1", "--fps", "100", "--frames", "60",
    ]);
    d.wait_channel(&ch);
    let mut r = shmframe::Reader::open_wait(&ch, Duration::from_secs(10)).unwrap();
    let v = r.next_view(Some(Duration::from_secs(10))).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let first = v.index;
    drop(v);
    let out = d.wait(i);
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("pinned") && err.contains("dropped"), "{err}");
    // The warning is rate-limited: about one a second, not one per dropped frame.
    assert!(err.matches("dropped so far").count() <= 4, "{err}");
    assert!(first < 60);
}

/// Someone truncates the channel's object to one page while `shmframe write` and a headless
/// `shmframe read` run (issue: both died of SIGBUS, the reader within 73 ms). Now neither dies of
/// a signal: the writer warns, re-creates its channel and finishes its frames (exit 0); the reader
/// either stops with an error naming the truncation or follows the re-created channel to the
/// writer's clean end.
#[test]
fn truncating_the_object_under_write_and_read_kills_neither() {
    use std::os::unix::process::ExitStatusExt;
    let mut d = Dir::new("trunc");
    let ch = d.channel("trunc");
    let (w, wlog) = d.spawn_logged(&[
        "write", &ch, "--fps", "100", "--frames", "400", "--size", "320x240",
    ]);
    d.wait_channel(&ch);
    let (r, rlog) = d.spawn_logged(&["read", &ch, "--headless", "--timeout", "20"]);
    std::thread::sleep(Duration::from_millis(1500));
    let object = PathBuf::from(shmframe::SHM_DIR).join(format!("{}{ch}", shmframe::OBJECT_PREFIX));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&object)
        .unwrap()
        .set_len(4096)
        .unwrap();

    let wout = d.wait(w);
    let werr = std::fs::read_to_string(&wlog).unwrap_or_default();
    assert_eq!(
        wout.status.signal(),
        None,
        "writer killed by a signal: {werr}"
    );
    assert!(wout.status.success(), "{werr}");
    assert!(
        werr.contains("truncated"),
        "the writer did not say so: {werr}"
    );

    let rout = d.wait(r);
    let rerr = std::fs::read_to_string(&rlog).unwrap_or_default();
    assert_eq!(
        rout.status.signal(),
        None,
        "reader killed by a signal: {rerr}"
    );
    if rout.status.success() {
        assert!(rerr.contains("closed"), "{rerr}");
    } else {
        assert_eq!(rout.status.code(), Some(1), "{rerr}");
        assert!(rerr.contains("truncated"), "{rerr}");
    }
}
