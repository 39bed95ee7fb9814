//! Shared code for the tests that run the `shmframe` executable (after ripgrep's `tests/util.rs`): a
//! unique temporary directory and channel names per test, processes that are stopped and
//! channels that are removed when the test ends, pass or fail.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One test's sandbox.
pub struct Dir {
    /// The temporary directory.
    pub path: PathBuf,
    id: String,
    names: Vec<String>,
    children: Vec<Child>,
}

impl Dir {
    /// A fresh directory for test `name`.
    pub fn new(name: &str) -> Dir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("sft-cli-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(format!("{id}-{name}"));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Dir {
            path,
            id,
            names: Vec::new(),
            children: Vec::new(),
        }
    }

    /// A channel name unique to this test (removed at the end).
    pub fn channel(&mut self, what: &str) -> String {
        let name = format!("{}-{what}", self.id);
        self.names.push(name.clone());
        name
    }

    /// A path in the directory.
    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    /// The `shmframe` command with `args`, run in the directory, without a display.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_shmframe"));
        c.args(args)
            .current_dir(&self.path)
            .env_remove("DISPLAY")
            .stdin(Stdio::null());
        c
    }

    /// Runs to completion (killed, failing the test, after a minute).
    pub fn run(&self, args: &[&str]) -> Output {
        let mut child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("shmframe {args:?} did not exit within a minute");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait_with_output().unwrap()
    }

    /// `true` if the executable under test was built with cargo feature `feature` (the target
    /// directory is shared by builds with different features, so ask the executable itself).
    pub fn has_feature(&self, feature: &str) -> bool {
        let v = stdout(&self.run(&["--version"]));
        v.contains(&format!(" {feature}")) && v.contains("features:")
    }

    /// Starts in the background with stdout and stderr captured; stopped at the end of the test
    /// if still running. Returns its index for [`Dir::wait`] / [`Dir::signal`].
    pub fn spawn(&mut self, args: &[&str]) -> usize {
        let child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    /// Starts in the background with stderr going to a file in the directory (for
    /// [`Dir::wait_log`]) and stdout captured. Returns its index and the log's path.
    pub fn spawn_logged(&mut self, args: &[&str]) -> (usize, PathBuf) {
        let log = self.join(&format!("stderr-{}.log", self.children.len()));
        let child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        self.children.push(child);
        (self.children.len() - 1, log)
    }

    /// Waits until spawned process `i` has written `needle` to its log (it is ready), and
    /// fails the test if it exits first or takes more than 30 s.
    pub fn wait_log(&mut self, i: usize, log: &Path, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains(needle) {
                return;
            }
            if let Some(st) = self.children[i].try_wait().unwrap() {
                panic!("process {i} exited ({st}) before saying {needle:?}: {text}");
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within 30 s: {text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The exit status of spawned process `i` if it exits within `limit`, else `None` (it is
    /// left running, and killed at the end of the test).
    pub fn exits_within(&mut self, i: usize, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.children[i].try_wait().unwrap() {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs to completion like [`Dir::run`], but fails the test if it takes longer than
    /// `limit` (a command that hangs is the bug being tested for).
    pub fn run_within(&self, args: &[&str], limit: Duration) -> Output {
        let mut child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + limit;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let o = child.wait_with_output().unwrap();
                panic!(
                    "shmframe {args:?} still running after {limit:?}; stderr: {}",
                    stderr(&o)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait_with_output().unwrap()
    }

    /// The pid of a spawned process.
    pub fn pid(&self, i: usize) -> u32 {
        self.children[i].id()
    }

    /// Sends `sig` to a spawned process.
    pub fn signal(&self, i: usize, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid(i) as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
    }

    /// Waits for a spawned process (which must end within a minute) and returns its output.
    pub fn wait(&mut self, i: usize) -> Output {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.children[i].try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "process {i} ({}) did not exit within a minute",
                self.pid(i)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let child = std::mem::replace(&mut self.children[i], Command::new("true").spawn().unwrap());
        child.wait_with_output().unwrap()
    }

    /// Waits until channel `name` exists (its writer is up).
    pub fn wait_channel(&self, name: &str) {
        shmframe::Reader::open_wait(name, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("channel {name} did not appear: {e}"));
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.names {
            let _ = shmframe::channels::remove(n);
            for o in [n.clone(), format!("{n}-meta"), format!("sem.{n}")] {
                let _ = std::fs::remove_file(Path::new("/dev/shm").join(o));
            }
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Asserts failure with a message containing every one of `needles`; returns stderr.
#[track_caller]
pub fn fails_with(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected a failure, got {:?}\nstdout: {}\nstderr: {err}",
        o.status,
        stdout(o)
    );
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
    err
}

/// The single JSON object a command printed on stdout.
#[track_caller]
pub fn json(o: &Output) -> serde_json::Value {
    let out = ok(o);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// An RGB test image where every pixel differs from its neighbours.
pub fn pattern(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 + y * 3) as u8,
            ((x * 13) ^ (y * 5)) as u8,
            255 - (x * 2 + y * 9) as u8,
        ])
    })
}

/// Saves `img` as a PNG in the directory and returns its path.
pub fn save_png(dir: &Dir, name: &str, img: &image::RgbImage) -> String {
    let p = dir.join(name);
    img.save(&p).unwrap();
    p.display().to_string()
}

/// PNG files in `dir`, sorted.
pub fn pngs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    v.sort();
    v
}

/// Held by tests that leave a channel stale (writer killed) or run `rm --stale`, which removes
/// every stale channel on the machine: they must not run at the same time.
pub fn stale_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `read CH --headless --frames N --json --timeout 60`: a reader that prints its JSON summary
/// after `frames` frames (and fails if no writer shows up within a minute).
pub fn read_json<'a>(ch: &'a str, frames: &'a str) -> [&'a str; 8] {
    [
        "read",
        ch,
        "--headless",
        "--frames",
        frames,
        "--json",
        "--timeout",
        "60",
    ]
}

/// The bytes of an RGB image in OpenCV's BGR order: what `write --format bgr8` publishes. Also
/// turns BGR bytes back into RGB (the swap is its own inverse).
pub fn swap_rb(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect()
}
