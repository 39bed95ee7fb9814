//! Containers emulated with Linux namespaces, as Docker builds them, without a container engine.
//!
//! A "container" is a process in its own IPC and mount namespaces (`unshare --ipc --mount
//! --propagation private`) with its own tmpfs on /dev/shm. Docker's `--ipc container:W` (compose
//! `ipc: "service:W"`) is emulated two ways: by entering the writer's namespaces (`nsenter
//! --target PID --ipc --mount`), and, as Docker itself does it, by bind-mounting one tmpfs onto
//! the /dev/shm of two separate containers. Other uids come from `setpriv`.
//!
//! The processes are the `peer` example (`target/debug/examples/peer`), which checks every pixel
//! it receives. Tests that need the library inside a small /dev/shm run this test binary again
//! inside a namespace (the `inner_*` tests, ignored unless started that way).
//!
//! Nothing touches the real /dev/shm: every tmpfs belongs to a namespace that disappears with its
//! last process. Needs root (CAP_SYS_ADMIN), so every test is `#[ignore]`d: a plain `cargo test`
//! reports them as ignored, and `scripts/test.d/50-containers.sh` runs them (`--ignored`) where
//! the kernel grants namespaces. Run where it refuses them, they fail and say why.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Set (to the size of the tmpfs) when this binary runs inside a namespace for an `inner_*` test.
const INNER_ENV: &str = "SHMFRAME_CT_INNER";

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "ct-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Panics, saying why, unless this kernel lets us create IPC and mount namespaces.
fn need_namespaces(test: &str) {
    let probe = Command::new("unshare")
        .args(["--ipc", "--mount", "true"])
        .stderr(Stdio::piped())
        .output();
    let why = match probe {
        Ok(o) if o.status.success() => return,
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("cannot run unshare: {e}"),
    };
    panic!(
        "{test}: this kernel refuses IPC/mount namespaces to us ({why}); run as root (or with \
         CAP_SYS_ADMIN) to test container isolation"
    );
}

/// The test's "image": a copy of the peer binary in a world-readable directory, so processes
/// running under other uids can execute it wherever the build tree lives.
struct Image {
    dir: PathBuf,
    peer: PathBuf,
}

impl Image {
    fn new() -> Image {
        let exe = std::env::current_exe().expect("current_exe");
        // target/debug/deps/containers-xxxx -> target/debug/examples/peer
        let built = exe
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("examples").join("peer"))
            .expect("build directory");
        assert!(
            built.exists(),
            "{} is missing: `cargo test -p shmframe` builds it (cargo build -p shmframe --examples)",
            built.display()
        );
        let dir = std::env::temp_dir().join(unique("img"));
        std::fs::create_dir(&dir).expect("image dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let peer = dir.join("peer");
        std::fs::copy(&built, &peer).expect("copy peer");
        std::fs::set_permissions(&peer, std::fs::Permissions::from_mode(0o755)).unwrap();
        Image { dir, peer }
    }

    fn peer(&self) -> &str {
        self.peer.to_str().expect("utf-8 path")
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a container gets on /dev/shm.
enum Shm<'a> {
    /// Its own tmpfs with these mount options (Docker's default: `size=64m`).
    Private(&'a str),
    /// A tmpfs shared with other containers, bind-mounted from the host (Docker's
    /// `ipc: shareable` + `ipc: "container:…"`).
    Bind(&'a Host),
}

/// `setpriv` arguments that run a command as `uid`, with primary group `gid` and supplementary
/// groups `groups` (none if empty).
fn as_user(uid: u32, gid: u32, groups: &[u32]) -> Vec<String> {
    let mut v = vec![
        "setpriv".to_string(),
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
    ];
    if groups.is_empty() {
        v.push("--clear-groups".into());
    } else {
        let g: Vec<String> = groups.iter().map(u32::to_string).collect();
        v.push(format!("--groups={}", g.join(",")));
    }
    v.push("--".into());
    v
}

/// A process tree in its own namespaces. Killed (SIGKILL) and reaped when dropped; its tmpfs
/// disappears with it.
struct Container {
    child: Child,
    stderr: BufReader<ChildStderr>,
}

impl Container {
    /// Starts `argv` (after `user`'s `setpriv` prefix, if any) in new IPC and mount namespaces
    /// whose /dev/shm is `shm`.
    fn start(shm: Shm<'_>, user: &[String], argv: &[&str]) -> Container {
        let (mount, host) = match shm {
            Shm::Private(opts) => (
                format!("mount -t tmpfs -o {opts},mode=1777 ct-shm /dev/shm"),
                None,
            ),
            Shm::Bind(h) => (
                format!("mount --bind '{}' /dev/shm", h.dir.join("shm").display()),
                Some(h.pid()),
            ),
        };
        let mut cmd = Command::new(if host.is_some() { "nsenter" } else { "unshare" });
        if let Some(pid) = host {
            // The shared tmpfs exists only in the emulated host's mount namespace.
            cmd.args(["--target", &pid.to_string(), "--mount", "--", "unshare"]);
        }
        cmd.args(["--ipc", "--mount", "--propagation", "private", "--"])
            .args(["sh", "-c", &format!("{mount} && exec \"$@\""), "sh"])
            .args(user)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn unshare");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        Container { child, stderr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads the container's stderr until a line containing `what`; panics with what it said if
    /// it exits first.
    fn wait_for_line(&mut self, what: &str) {
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if self.stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let status = self.child.wait().expect("wait");
                panic!("container exited ({status}) before printing {what:?}; it said:\n{seen}");
            }
            if line.contains(what) {
                return;
            }
            seen.push_str(&line);
        }
    }

    /// Kills the container's process now (`kill -9`).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The emulated Docker host of the bind-mount tests: a mount namespace holding one tmpfs (as
/// Docker keeps a shareable container's /dev/shm under /var/lib/docker/containers/ID/mounts/shm).
/// Its process exits when its stdin closes, so even if this test process dies nothing is left.
struct Host {
    dir: PathBuf,
    child: Child,
}

impl Host {
    fn new(size: &str) -> Host {
        let dir = std::env::temp_dir().join(unique("host"));
        std::fs::create_dir_all(dir.join("shm")).expect("host dir");
        let mut child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size={size},mode=1777 ct-shm '{}' && echo mounted && exec cat",
                dir.join("shm").display()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn unshare");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "mounted",
            "the host's tmpfs could not be mounted"
        );
        Host { dir, child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `argv` in the host's mount namespace (to look at the shared tmpfs).
    fn run(&self, argv: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["--target", &self.pid().to_string(), "--mount", "--"])
            .args(argv)
            .output()
            .expect("nsenter")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `argv` (after `user`'s prefix) inside `target`'s IPC and mount namespaces, as
/// `docker run --ipc container:TARGET` would, and returns its output.
fn join(target: &Container, user: &[String], argv: &[&str]) -> Output {
    Command::new("nsenter")
        .args([
            "--target",
            &target.pid().to_string(),
            "--ipc",
            "--mount",
            "--",
        ])
        .args(user)
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .expect("spawn nsenter")
}

/// The reader's JSON summary (one line on stdout).
#[derive(Debug)]
struct Summary {
    line: String,
    stderr: String,
    code: Option<i32>,
}

impl Summary {
    fn from(out: Output) -> Summary {
        let stdout = String::from_utf8_lossy(&out.stdout);
        Summary {
            line: stdout.lines().last().unwrap_or("").to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
        }
    }

    /// The integer field `key`, if present.
    fn num(&self, key: &str) -> Option<i64> {
        let pat = format!("\"{key}\":");
        let at = self.line.find(&pat)? + pat.len();
        let digits: String = self.line[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        digits.parse().ok()
    }

    /// Asserts a clean run that received `frames` pixel-checked frames.
    fn assert_received(&self, frames: i64) {
        assert_eq!(
            (self.code, self.num("frames"), self.num("torn")),
            (Some(0), Some(frames), Some(0)),
            "reader summary {:?}\nstderr:\n{}",
            self.line,
            self.stderr
        );
        assert!(
            self.line.contains("\"errors\":[]"),
            "reader reported errors: {}",
            self.line
        );
    }
}

/// Starts a writer of `name` in a container and waits until it has created the channel.
fn writer(image: &Image, shm: Shm<'_>, user: &[String], name: &str, extra: &[&str]) -> Container {
    // Bounded (60 s at 200 fps) so that a writer orphaned by a crashed test stops by itself.
    let mut argv = vec![
        image.peer(),
        "write",
        name,
        "--fps",
        "200",
        "--frames",
        "12000",
        "--shape",
        "48x64x3",
    ];
    argv.extend_from_slice(extra);
    let mut c = Container::start(shm, user, &argv);
    c.wait_for_line("writer ready");
    c
}

fn ns_link(pid: u32, ns: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).expect("read /proc/PID/ns")
}

#[test]
#[ignore = "needs root for IPC and mount namespaces; run by scripts/test.d/50-containers.sh"]
fn private_ipc_namespace_hides_the_channel() {
    need_namespaces("private_ipc_namespace_hides_the_channel");
    let image = Image::new();
    let name = unique("iso");
    let w = writer(&image, Shm::Private("size=16m"), &[], &name, &[]);
    let me = std::process::id();
    assert_ne!(ns_link(w.pid(), "ipc"), ns_link(me, "ipc"));
    assert_ne!(ns_link(w.pid(), "mnt"), ns_link(me, "mnt"));

    // The writer is publishing in its namespace: a reader there receives frames…
    let inside = Summary::from(join(
        &w,
        &[],
        &[image.peer(), "read", &name, "--frames", "5"],
    ));
    inside.assert_received(5);

    // …but neither this (host) namespace nor another container sees it.
    assert!(
        !Path::new("/dev/shm")
            .join(format!("shmframe.{name}"))
            .exists(),
        "the container's channel leaked into the host's /dev/shm"
    );
    let out = Command::new("unshare")
        .args(["--ipc", "--mount", "--propagation", "private", "--"])
        .args(["sh", "-c"])
        .arg("mount -t tmpfs -o size=16m,mode=1777 ct-shm /dev/shm && exec \"$@\"")
        .args([
            "sh",
            image.peer(),
            "read",
            &name,
            "--frames",
            "1",
            "--wait",
            "1",
        ])
        .output()
        .expect("spawn unshare");
    let outside = Summary::from(out);
    assert_eq!(
        outside.code,
        Some(5),
        "a reader in another IPC namespace must fail to open: {outside:?}"
    );
    assert!(
        outside.line.contains("did not appear") && outside.line.contains("IPC namespace"),
        "the timeout must name the likely cause (another IPC namespace): {}",
        outside.line
    );
    assert!(
        outside.line.contains("--ipc container:"),
        "the timeout must say how to share the namespace: {}",
        outside.line
    );
}

#[test]
#[ignore = "needs root for IPC and mount namespaces; run by scripts/test.d/50-containers.sh"]
fn reader_joining_the_writers_namespaces_receives_frames() {
    need_namespaces("reader_joining_the_writers_namespaces_receives_frames");
    let image = Image::new();
    let name = unique("join");
    let w = writer(&image, Shm::Private("size=16m"), &[], &name, &["--meta"]);
    // Copies and zero-copy views, each pixel and the metadata checked by the reader.
    let copies = Summary::from(join(
        &w,
        &[],
        &[image.peer(), "read", &name, "--frames", "40"],
    ));
    copies.assert_received(40);
    let views = Summary::from(join(
        &w,
        &[],
        &[image.peer(), "read", &name, "--frames", "40", "--view"],
    ));
    views.assert_received(40);
}

#[test]
#[ignore = "needs root for IPC and mount namespaces; run by scripts/test.d/50-containers.sh"]
fn containers_sharing_a_bind_mounted_tmpfs_exchange_frames_and_see_a_writer_die() {
    need_namespaces("containers_sharing_a_bind_mounted_tmpfs_exchange_frames_and_see_a_writer_die");
    let image = Image::new();
    let host = Host::new("64m");
    let name = unique("bind");
    let mut w = writer(&image, Shm::Bind(&host), &[], &name, &[]);

    // A separate container (own IPC and mount namespaces, not the writer's) with the same tmpfs
    // on its /dev/shm: futex wake-ups reach it, since they are keyed by the shared pages.
    let reader = Container::start(
        Shm::Bind(&host),
        &[],
        &[image.peer(), "read", &name, "--frames", "60"],
    );
    assert_ne!(ns_link(reader.pid(), "ipc"), ns_link(w.pid(), "ipc"));
    assert_ne!(ns_link(reader.pid(), "mnt"), ns_link(w.pid(), "mnt"));
    let out = reader.into_output();
    Summary::from(out).assert_received(60);

    // Liveness is the writer's flock on the shared object: it works across containers too.
    let mut watcher = Container::start(
        Shm::Bind(&host),
        &[],
        &[image.peer(), "read", &name, "--until-gone"],
    );
    watcher.wait_for_line("reader ready");
    w.kill();
    let gone = Summary::from(watcher.into_output());
    assert_eq!(
        (gone.code, gone.num("gone"), gone.num("torn")),
        (Some(0), Some(1), Some(0)),
        "the reader must notice the killed writer: {gone:?}"
    );
    // The dead writer's object is still in the shared tmpfs (it disappears with the host).
    let ls = host.run(&["ls", host.dir.join("shm").to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&ls.stdout).contains(&format!("shmframe.{name}")),
        "the shared tmpfs should hold the channel"
    );
}

impl Container {
    /// Waits for the container's process to exit and returns what it printed (a small amount:
    /// it fits the pipes, so waiting first cannot block).
    fn into_output(mut self) -> Output {
        let status = self.child.wait().expect("wait");
        let mut stderr = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stderr, &mut stderr);
        let mut stdout = Vec::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = std::io::Read::read_to_end(&mut s, &mut stdout);
        }
        Output {
            status,
            stdout,
            stderr: stderr.into_bytes(),
        }
    }
}

/// The image's unprivileged user (as in the Dockerfile) and two strangers.
const WRITER_UID: u32 = 1000;
const SHARED_GID: u32 = 4242;
const READER_UID: u32 = 65534;
const OTHER_UID: u32 = 65533;

/// Mode and group of the channel's object, seen from inside the writer's container.
fn object_mode_and_group(w: &Container, name: &str) -> String {
    let out = join(
        w,
        &[],
        &["stat", "-c", "%a %g", &format!("/dev/shm/shmframe.{name}")],
    );
    assert!(out.status.success(), "stat: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
#[ignore = "needs root for IPC and mount namespaces; run by scripts/test.d/50-containers.sh"]
fn another_uid_is_refused_on_a_0600_channel() {
    need_namespaces("another_uid_is_refused_on_a_0600_channel");
    let image = Image::new();
    let name = unique("uid");
    let w = writer(
        &image,
        Shm::Private("size=16m"),
        &as_user(WRITER_UID, WRITER_UID, &[]),
        &name,
        &[],
    );
    assert_eq!(
        object_mode_and_group(&w, &name),
        format!("600 {WRITER_UID}")
    );
    let refused = Summary::from(join(
        &w,
        &as_user(READER_UID, READER_UID, &[]),
        &[image.peer(), "read", &name, "--frames", "1", "--wait", "5"],
    ));
    assert_eq!(refused.code, Some(5), "must be refused: {refused:?}");
    for what in ["no permission", "mode 600", "group mode"] {
        assert!(
            refused.line.contains(what),
            "the refusal must say {what:?}: {}",
            refused.line
        );
    }
    // The same uid as the writer is admitted (the image's user on both sides).
    Summary::from(join(
        &w,
        &as_user(WRITER_UID, WRITER_UID, &[]),
        &[image.peer(), "read", &name, "--frames", "5"],
    ))
    .assert_received(5);
}

#[test]
#[ignore = "needs root for IPC and mount namespaces; run by scripts/test.d/50-containers.sh"]
fn a_group_mode_admits_readers_of_that_group_only() {
    need_namespaces("a_group_mode_admits_readers_of_that_group_only");
    let image = Image::new();
    let name = unique("gid");
    let w = writer(
        &image,
        Shm::Private("size=16m"),
        &as_user(WRITER_UID, SHARED_GID, &[]),
        &name,
        &["--mode", "0o640"],
    );
    assert_eq!(
        object_mode_and_group(&w, &name),
        format!("640 {SHARED_GID}")
    );
    // Another uid whose supplementary groups include the channel's group (compose `group_add`).
    Summary::from(join(
        &w,
        &as_user(READER_UID, READER_UID, &[SHARED_GID]),
        &[image.peer(), "read", &name, "--frames", "20"],
    ))
    .assert_received(20);
    // Another uid whose primary group is the channel's group (compose `user: "65534:4242"`).
    Summary::from(join(
        &w,
        &as_user(READER_UID, SHARED_GID, &[]),
        &[image.peer(), "read", &name, "--frames", "20", "--view"],
    ))
    .assert_received(20);
    // Outside the group: refused.
    let refused = Summary::from(join(
        &w,
        &as_user(OTHER_UID, OTHER_UID, &[]),
        &[image.peer(), "read", &name, "--frames", "1", "--wait", "5"],
    ));
    assert_eq!(refused.code, Some(5), "must be refused: {refused:?}");
    assert!(
        refused.line.contains("no permission") && refused.line.contains("mode 640"),
        "{}",
        refused.line
    );
}

/// Runs the ignored test `inner` of this binary in new IPC and mount namespaces whose /dev/shm is
/// a tmpfs mounted with `opts`, and asserts that it ran and passed.
fn run_inner(inner: &str, opts: &str) {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new("unshare")
        .args(["--ipc", "--mount", "--propagation", "private", "--"])
        .args(["sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o {opts},mode=1777 ct-shm /dev/shm && exec \"$@\""
        ))
        .arg("sh")
        .arg(exe)
        .args([
            inner,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER_ENV, opts)
        .output()
        .expect("spawn unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{inner} in a /dev/shm of {opts} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// `true` if this is the namespaced run of an `inner_*` test (otherwise it returns at once).
fn inside(test: &str) -> bool {
    if std::env::var_os(INNER_ENV).is_none() {
        eprintln!("{test} runs only inside the namespace that its outer test creates");
        return false;
    }
    true
}

#[test]
#[ignore = "needs root for IPC and mount namespaces; run by scripts/test.d/50-containers.sh"]
fn no_space_is_reported_up_front_in_a_small_dev_shm() {
    need_namespaces("no_space_is_reported_up_front_in_a_small_dev_shm");
    run_inner("inner_no_space", "size=4m");
}

#[test]
#[ignore = "needs root for IPC and mount namespaces; run by scripts/test.d/50-containers.sh"]
fn the_default_ring_for_1080p_fits_dockers_default_64m_dev_shm() {
    need_namespaces("the_default_ring_for_1080p_fits_dockers_default_64m_dev_shm");
    run_inner("inner_docker_default_shm", "size=64m");
}

#[test]
#[ignore = "needs root for IPC and mount namespaces; run by scripts/test.d/50-containers.sh"]
fn a_dev_shm_without_a_size_limit_is_not_reported_full() {
    need_namespaces("a_dev_shm_without_a_size_limit_is_not_reported_full");
    // `size=0`: no limit; statvfs then reports 0 blocks in total and 0 free.
    run_inner("inner_unlimited_shm", "size=0");
}

/// Bytes of one ring (layout v2): a 4 KiB ring header page, then `slots` slots of
/// round_up_4096(128 + round_up_64(meta) + frame bytes).
fn ring_size(slots: u64, meta: u64, frame: u64) -> u64 {
    let up = |v: u64, to: u64| v.div_ceil(to) * to;
    4096 + slots * up(128 + up(meta, 64) + frame, 4096)
}

/// Bytes a channel created with its capacity reserved takes in /dev/shm: a 4 KiB header page,
/// then its first ring. (The pin table, 8 KiB, is a second object.)
fn ring_bytes(slots: u64, meta: u64, frame: u64) -> u64 {
    4096 + ring_size(slots, meta, frame)
}

fn shm_entries() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn pattern(index: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| (index as usize).wrapping_mul(31).wrapping_add(k * 7) as u8)
        .collect()
}

const HD: [usize; 3] = [1080, 1920, 3];
const HD_BYTES: usize = 1080 * 1920 * 3;

#[test]
#[ignore = "run inside a namespace by no_space_is_reported_up_front_in_a_small_dev_shm"]
fn inner_no_space() {
    use shmframe::{CreateError, DType, Reader, WriteError, Writer, WriterOptions};
    if !inside("inner_no_space") {
        return;
    }
    assert!(shm_entries().is_empty(), "fresh tmpfs expected");
    let name = unique("nospace");

    // A 1080p ring (3 slots) does not fit in 4 MiB: refused at creation, nothing left behind.
    let err = Writer::create(&name, WriterOptions::new().capacity(HD_BYTES))
        .err()
        .expect("a 1080p ring cannot fit in 4 MiB");
    let msg = err.to_string();
    match err {
        CreateError::NoSpace {
            needed, available, ..
        } => {
            assert_eq!(needed, ring_bytes(3, 0, HD_BYTES as u64));
            assert!(available <= 4 << 20, "available {available}");
        }
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert!(
        msg.contains("--shm-size") && msg.contains("fewer slots"),
        "{msg}"
    );
    assert!(shm_entries().is_empty(), "left behind: {:?}", shm_entries());

    // Too many slots of a small frame: refused; three of them fit.
    let qvga = 240 * 320 * 3;
    match Writer::create(&name, WriterOptions::new().slots(64).capacity(qvga)) {
        Err(CreateError::NoSpace { needed, .. }) => {
            assert_eq!(needed, ring_bytes(64, 0, qvga as u64))
        }
        other => panic!("expected NoSpace for 64 slots, got {:?}", other.err()),
    }
    assert!(shm_entries().is_empty(), "left behind: {:?}", shm_entries());

    // A ring that fits, then a frame too large for it: growing fails with NoSpace, and the
    // writer keeps publishing the frames that fit.
    let mut w = Writer::create(&name, WriterOptions::new()).expect("an empty ring fits");
    w.write(DType::U8, &[240, 320, 3], &pattern(0, qvga))
        .expect("a 320x240 frame fits");
    let mut r = Reader::open(&name).expect("open");
    let f = r
        .next(Some(std::time::Duration::from_secs(5)))
        .expect("frame");
    assert_eq!((f.index, f.data == pattern(0, qvga)), (0, true));
    let err = w
        .write(DType::U8, &HD, &pattern(1, HD_BYTES))
        .expect_err("growing to 1080p cannot fit in 4 MiB");
    let msg = err.to_string();
    match err {
        WriteError::Grow {
            needed,
            source: CreateError::NoSpace { .. },
            ..
        } => assert_eq!(needed, HD_BYTES),
        other => panic!("expected Grow(NoSpace), got {other:?}"),
    }
    assert!(msg.contains("--shm-size"), "{msg}");
    w.write(DType::U8, &[240, 320, 3], &pattern(2, qvga))
        .expect("the writer is still usable");
    let f = r
        .next(Some(std::time::Duration::from_secs(5)))
        .expect("frame");
    assert_eq!((f.index, f.shape.as_slice()), (1, &[240, 320, 3][..]));
    assert_eq!(f.data, pattern(2, qvga));
    drop(r);
    w.close().expect("close");
    assert!(shm_entries().is_empty(), "left behind: {:?}", shm_entries());
}

#[test]
#[ignore = "run inside a namespace by the_default_ring_for_1080p_fits_dockers_default_64m_dev_shm"]
fn inner_docker_default_shm() {
    use shmframe::{CreateError, DType, Reader, Writer, WriterOptions};
    if !inside("inner_docker_default_shm") {
        return;
    }
    let name = unique("hd");
    // Default options, the first frame sizes the ring; a reader checks every byte.
    let mut w = Writer::create(&name, WriterOptions::new()).expect("create");
    let mut r = Reader::open(&name).expect("open");
    for i in 0..5u64 {
        w.write(DType::U8, &HD, &pattern(i, HD_BYTES))
            .expect("1080p frames fit in 64 MiB");
        let f = r
            .next(Some(std::time::Duration::from_secs(5)))
            .expect("frame");
        assert_eq!(f.shape, HD);
        assert!(f.data == pattern(f.index, HD_BYTES), "frame {i} differs");
    }
    let size = std::fs::metadata(format!("/dev/shm/shmframe.{name}"))
        .expect("object")
        .len();
    // The header, the first (empty) ring, and the ring the first frame appended.
    assert_eq!(
        size,
        4096 + ring_size(3, 0, 0) + ring_size(3, 0, HD_BYTES as u64)
    );
    drop(r);
    w.close().expect("close");

    // docs/containers.md: at most 10 slots of 1080p in 64 MiB, and a 4K ring needs more.
    let ten = Writer::create(&name, WriterOptions::new().slots(10).capacity(HD_BYTES))
        .expect("10 slots of 1080p fit in 64 MiB");
    ten.close().expect("close");
    for (slots, frame) in [(11, HD_BYTES), (3, 2160 * 3840 * 3)] {
        match Writer::create(&name, WriterOptions::new().slots(slots).capacity(frame)) {
            Err(CreateError::NoSpace { needed, .. }) => {
                assert_eq!(needed, ring_bytes(slots as u64, 0, frame as u64))
            }
            other => panic!(
                "expected NoSpace for {slots}x{frame}, got {:?}",
                other.err()
            ),
        }
    }
    assert!(shm_entries().is_empty(), "left behind: {:?}", shm_entries());
}

#[test]
#[ignore = "run inside a namespace by a_dev_shm_without_a_size_limit_is_not_reported_full"]
fn inner_unlimited_shm() {
    use shmframe::{DType, Reader, Writer, WriterOptions};
    if !inside("inner_unlimited_shm") {
        return;
    }
    let name = unique("unlimited");
    let mut w = Writer::create(&name, WriterOptions::new().capacity(HD_BYTES))
        .expect("a tmpfs without a size limit must accept a ring");
    let mut r = Reader::open(&name).expect("open");
    w.write(DType::U8, &HD, &pattern(0, HD_BYTES))
        .expect("write");
    let f = r
        .next(Some(std::time::Duration::from_secs(5)))
        .expect("frame");
    assert!(f.data == pattern(0, HD_BYTES));
    drop(r);
    w.close().expect("close");
    assert!(shm_entries().is_empty(), "left behind: {:?}", shm_entries());
}

/// A directory two containers share (a volume): world-writable, removed when dropped.
struct SharedDir(PathBuf);

impl SharedDir {
    fn new() -> SharedDir {
        let d = std::env::temp_dir().join(unique("vol"));
        std::fs::create_dir(&d).expect("shared dir");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        SharedDir(d)
    }
    fn sock(&self) -> String {
        self.0.join("cam.sock").display().to_string()
    }
    fn entries(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect()
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs root for IPC and mount namespaces; run by scripts/test.d/50-containers.sh"]
fn socket_served_4k_frames_reach_another_namespace_whose_dev_shm_is_1mib() {
    need_namespaces("socket_served_4k_frames_reach_another_namespace_whose_dev_shm_is_1mib");
    let image = Image::new();
    let vol = SharedDir::new();
    let name = unique("sock4k");
    let sock = vol.sock();
    let shape = ["--shape", "2160x3840x3", "--fps", "30", "--frames", "1800"];
    // Named in /dev/shm, a 4K ring (3 × 24.9 MB) cannot fit a 1 MiB /dev/shm at all.
    let named = Container::start(
        Shm::Private("size=1m"),
        &[],
        &[&[image.peer(), "write", &name][..], &shape[..]].concat(),
    )
    .into_output();
    let said = String::from_utf8_lossy(&named.stderr);
    assert!(
        !named.status.success() && said.contains("--shm-size"),
        "a named 4K channel must not fit 1 MiB: {said}"
    );
    // Served on a socket in the shared directory, it needs no /dev/shm at all. The writer and
    // the reader each get a PID namespace of their own too, as containers do: each side then
    // sees its peer as pid 0.
    let own_pid_ns = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"];
    let serve = || {
        let argv = [
            &own_pid_ns[..],
            &[image.peer(), "write", &name, "--socket", &sock][..],
            &shape[..],
        ]
        .concat();
        let mut c = Container::start(Shm::Private("size=1m"), &[], &argv);
        c.wait_for_line("writer ready");
        c
    };
    let read = |frames: &str| {
        let argv = [
            &own_pid_ns[..],
            &[image.peer(), "read", "-", "--socket", &sock, "--view"][..],
            &["--frames", frames][..],
        ]
        .concat();
        Container::start(Shm::Private("size=1m"), &[], &argv)
    };
    let mut w = serve();
    let reader = read("10");
    assert_ne!(ns_link(reader.pid(), "ipc"), ns_link(w.pid(), "ipc"));
    assert_ne!(ns_link(reader.pid(), "mnt"), ns_link(w.pid(), "mnt"));
    Summary::from(reader.into_output()).assert_received(10);
    let shm = join(&w, &[], &["ls", "-A", "/dev/shm"]);
    assert_eq!(
        String::from_utf8_lossy(&shm.stdout).trim(),
        "",
        "the writer's /dev/shm is empty"
    );
    // kill -9 leaves only the socket file (no memory); the next writer replaces it. (The writer
    // is its PID namespace's init, killed by the kernel when `unshare` dies: wait for that.)
    w.kill();
    let t = std::time::Instant::now();
    while !matches!(
        shmframe::Reader::connect(&sock),
        Err(shmframe::OpenError::StaleSocket { .. })
    ) {
        assert!(t.elapsed().as_secs() < 10, "the killed writer still serves");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(vol.entries(), vec!["cam.sock".to_string()]);
    let _w2 = serve();
    Summary::from(read("5").into_output()).assert_received(5);
}

#[test]
#[ignore = "needs root for IPC and mount namespaces; run by scripts/test.d/50-containers.sh"]
fn a_socket_admits_by_mode_and_the_writer_logs_refused_peers() {
    need_namespaces("a_socket_admits_by_mode_and_the_writer_logs_refused_peers");
    let image = Image::new();
    let vol = SharedDir::new();
    let name = unique("sockuid");
    let sock = vol.sock();
    let read = |user: &[String], extra: &[&str]| {
        let argv = [
            &[image.peer(), "read", "-", "--socket", &sock, "--wait", "5"][..],
            extra,
        ]
        .concat();
        Summary::from(Container::start(Shm::Private("size=1m"), user, &argv).into_output())
    };
    let mut w = writer(
        &image,
        Shm::Private("size=1m"),
        &as_user(WRITER_UID, WRITER_UID, &[]),
        &name,
        &["--socket", &sock],
    );
    // Another uid: the socket file's mode (0600) stops it at connect.
    let denied = read(&as_user(READER_UID, READER_UID, &[]), &["--frames", "1"]);
    assert_eq!(denied.code, Some(5), "{denied:?}");
    assert!(
        denied.line.contains("no permission to connect") && denied.line.contains("mode 600"),
        "{}",
        denied.line
    );
    // Root gets past the file mode, not past the writer: refused with a reason, and logged.
    let refused = read(&[], &["--frames", "1"]);
    assert_eq!(refused.code, Some(5), "{refused:?}");
    assert!(
        refused.line.contains("refused this process"),
        "{}",
        refused.line
    );
    w.wait_for_line("refused peer");
    // The writer's own uid is admitted.
    read(&as_user(WRITER_UID, WRITER_UID, &[]), &["--frames", "5"]).assert_received(5);
    drop(w);

    // A group mode: members of the group (here a supplementary group) connect, others do not.
    let _g = writer(
        &image,
        Shm::Private("size=1m"),
        &as_user(WRITER_UID, SHARED_GID, &[]),
        &name,
        &["--socket", &sock, "--mode", "0o640"],
    );
    read(
        &as_user(READER_UID, READER_UID, &[SHARED_GID]),
        &["--frames", "5", "--view"],
    )
    .assert_received(5);
    let outside = read(&as_user(OTHER_UID, OTHER_UID, &[]), &["--frames", "1"]);
    assert_eq!(outside.code, Some(5), "{outside:?}");
    assert!(outside.line.contains("mode 660"), "{}", outside.line);
}
