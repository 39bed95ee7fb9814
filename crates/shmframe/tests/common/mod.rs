//! Utilities shared by the multi-process test suites: unique channel names, a guard that removes a
//! channel's objects even when a test fails, and child processes (the `peer` example, or this test
//! binary re-executed in a role).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Environment variable that makes a re-executed test binary play a role instead of testing.
pub const ROLE_VAR: &str = "SHMFRAME_TEST_ROLE";

/// The generous upper bound for anything a test waits for (a hang fails the test, it does not
/// block the suite).
pub const LONG: Duration = Duration::from_secs(60);

/// A channel name unique to this process and test: `ch-<pid>-<n>`.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "ch-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Every object in /dev/shm that belongs to channel `name` (the channel and its temporaries).
pub fn objects(name: &str) -> Vec<String> {
    let base = format!("shmframe.{name}");
    let pins = format!("shmframe-pins.{name}.");
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| {
                    *n == base || n.starts_with(&format!("{base}.")) || n.starts_with(&pins)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The file of channel `name`.
pub fn shm_file(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/shmframe.{name}"))
}

/// The pin table file of channel `name`, lineage `lineage`.
pub fn pins_file_of(name: &str, lineage: u64) -> PathBuf {
    PathBuf::from(format!("/dev/shm/shmframe-pins.{name}.{lineage:016x}"))
}

/// The pin table file of the channel standing under `name` right now (its header's `lineage`).
pub fn pins_file(name: &str) -> PathBuf {
    let b = std::fs::read(shm_file(name)).expect("channel object");
    pins_file_of(name, u64::from_ne_bytes(b[16..24].try_into().unwrap()))
}

/// The first page of channel `name`'s pin table, mapped read-write as a reader of another
/// implementation would map it; its words are reached through [`PinTablePage::word`].
pub struct PinTablePage {
    ptr: *mut libc::c_void,
}

impl PinTablePage {
    const LEN: usize = 4096;

    #[allow(unsafe_code)]
    pub fn map(name: &str) -> PinTablePage {
        use std::os::fd::AsRawFd;
        let path = pins_file(name);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // SAFETY: a fresh shared mapping, at an address the kernel picks, of the first page of
        // an object larger than a page; it outlives the descriptor and is unmapped in `drop`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap {}", path.display());
        PinTablePage { ptr }
    }

    /// The 32-bit word at byte `at` (a layout offset of `PinsHeader`).
    #[allow(unsafe_code)]
    pub fn word(&self, at: usize) -> &std::sync::atomic::AtomicU32 {
        assert!(at % 4 == 0 && at + 4 <= Self::LEN);
        // SAFETY: an aligned word inside the mapped page, which stays mapped while `self` lives;
        // other processes access it atomically too.
        unsafe { &*self.ptr.cast::<u8>().add(at).cast() }
    }
}

impl Drop for PinTablePage {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, with this length; no word borrowed from it outlives
        // `self`.
        unsafe { libc::munmap(self.ptr, Self::LEN) };
    }
}

/// Removes a channel's objects and kills its processes when dropped, so that a failing test
/// leaves nothing behind.
pub struct Guard {
    pub name: String,
    children: Vec<Child>,
}

impl Guard {
    pub fn new(tag: &str) -> Guard {
        Guard {
            name: unique(tag),
            children: Vec::new(),
        }
    }
    /// Keeps `child` to be killed when the guard drops (if it has not exited).
    pub fn adopt(&mut self, child: Child) -> usize {
        self.children.push(child);
        self.children.len() - 1
    }
    pub fn child(&mut self, i: usize) -> &mut Child {
        &mut self.children[i]
    }
    /// Objects of the channel left in /dev/shm right now.
    pub fn leftovers(&self) -> Vec<String> {
        objects(&self.name)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for o in objects(&self.name) {
            let _ = std::fs::remove_file(format!("/dev/shm/{o}"));
        }
    }
}

/// `target/<profile>/examples/peer`, next to this test binary's `deps` directory.
pub fn peer_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = dir.join("examples").join("peer");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build -p shmframe --examples`",
        p.display()
    );
    p
}

/// A child process whose stdout and stderr lines arrive on channels, each with its arrival time.
pub struct Proc {
    pub child: Child,
    pub stdout: mpsc::Receiver<(Instant, String)>,
    pub stderr: mpsc::Receiver<(Instant, String)>,
}

fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), l)).is_err() {
                break;
            }
        }
    });
    rx
}

fn spawn_cmd(mut cmd: Command, stdin: Stdio) -> Proc {
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child process");
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    Proc {
        child,
        stdout,
        stderr,
    }
}

/// Starts `peer ARGS…`.
pub fn peer(args: &[&str]) -> Proc {
    let mut cmd = Command::new(peer_path());
    cmd.args(args);
    spawn_cmd(cmd, Stdio::null())
}

/// As [`role`], with the child's stdin a pipe the test writes to (`proc.child.stdin`).
pub fn role_with_stdin(entry: &str, role: &str, args: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", entry, "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role);
    for (k, v) in args {
        cmd.env(k, v);
    }
    spawn_cmd(cmd, Stdio::piped())
}

/// Re-executes this test binary so that its test `entry` plays `role` (see [`ROLE_VAR`]).
pub fn role(entry: &str, role: &str, args: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", entry, "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role);
    for (k, v) in args {
        cmd.env(k, v);
    }
    spawn_cmd(cmd, Stdio::null())
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stderr line containing `needle`; returns it and when it arrived. Panics after
    /// [`LONG`] or if the process closes stderr first.
    pub fn wait_stderr(&self, needle: &str) -> (Instant, String) {
        let deadline = Instant::now() + LONG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok((t, l)) if l.contains(needle) => return (t, l),
                Ok(_) => {}
                Err(e) => panic!(
                    "no stderr line with {needle:?} from pid {}: {e}",
                    self.pid()
                ),
            }
        }
    }

    /// Waits for a stdout line containing `needle`.
    pub fn wait_stdout(&self, needle: &str) -> (Instant, String) {
        let deadline = Instant::now() + LONG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok((t, l)) if l.contains(needle) => return (t, l),
                Ok(_) => {}
                Err(e) => panic!(
                    "no stdout line with {needle:?} from pid {}: {e}",
                    self.pid()
                ),
            }
        }
    }

    /// Waits (at most [`LONG`]) for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        wait_child(&mut self.child)
    }

    /// Waits for exit and returns the exit status and the peer reader's JSON summary line.
    pub fn summary(&mut self) -> (ExitStatus, Summary) {
        let st = self.wait();
        // The process has exited; its stdout reaches end of file once the pipe is drained.
        let deadline = Instant::now() + LONG;
        let line = std::iter::from_fn(|| {
            self.stdout
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()
        })
        .map(|(_, l)| l)
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            let err: Vec<String> = self.stderr.try_iter().map(|(_, l)| l).collect();
            panic!(
                "pid {} printed no summary ({st}); stderr: {err:?}",
                self.pid()
            )
        });
        (st, Summary(line))
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }

    /// Sends signal `sig`.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety requirements.
        let r = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(r, 0, "kill({}, {sig})", self.child.id());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` at most [`LONG`]; kills it and panics if it does not exit.
pub fn wait_child(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} did not exit within {LONG:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `cond` every few milliseconds until it holds; panics with `what` after [`LONG`].
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The JSON line a `peer read` prints at exit.
#[derive(Debug)]
pub struct Summary(pub String);

impl Summary {
    /// The integer field `key`.
    pub fn num(&self, key: &str) -> i64 {
        let pat = format!("\"{key}\":");
        let at = self
            .0
            .find(&pat)
            .unwrap_or_else(|| panic!("no {key} in {}", self.0))
            + pat.len();
        let rest = &self.0[at..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(rest.len());
        rest[..end]
            .parse()
            .unwrap_or_else(|_| panic!("{key} in {}", self.0))
    }
    /// `true` if the `errors` array is empty.
    pub fn no_errors(&self) -> bool {
        self.0.contains("\"errors\":[]")
    }
}

/// The `peer` example's self-checking pattern: byte `k` of frame `index`.
pub fn pattern(index: u64, k: usize) -> u8 {
    let x =
        (index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k as u64).wrapping_mul(0xC2B2_AE3D)) >> 29;
    x as u8
}

/// Frame `index` of `len` bytes in the `peer` pattern.
pub fn pattern_frame(index: u64, len: usize) -> Vec<u8> {
    (0..len).map(|k| pattern(index, k)).collect()
}

/// Publishes frame `*index` (`len` bytes of `u8` in the `peer` pattern) and counts it.
pub fn write_pattern(w: &mut shmframe::Writer, index: &mut u64, len: usize) {
    let published = w.write(shmframe::DType::U8, &[len], &pattern_frame(*index, len));
    assert_eq!(published.unwrap(), *index);
    *index += 1;
}

/// `true` if `data` is frame `index` in the `peer` pattern.
pub fn is_pattern(index: u64, data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .all(|(k, &b)| b == pattern(index, k))
}
