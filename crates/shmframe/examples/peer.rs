//! A writer or reader process for multi-process tests and experiments, using only the library.
//!
//! ```text
//! peer write NAME [--frames N] [--shape 480x640x3] [--dtype uint8] [--fps F] [--slots K]
//!                 [--mode 0o600] [--keep] [--vary] [--meta] [--hold-ms MS] [--socket PATH]
//! peer read  NAME [--frames N] [--timeout S] [--wait S] [--view] [--latest] [--hold-ms MS]
//!                 [--until-gone] [--resume N] [--socket PATH]
//! ```
//! Frames carry a self-checking pattern: byte `k` of frame `i` is `pattern(i, k)`, so a reader
//! can verify every byte and count torn frames. `--vary` cycles through shapes of different sizes
//! (up and down). The reader prints one JSON line on stdout at exit:
//! `{"frames":N,"torn":N,"missed":N,"errors":[…],"last_index":N,"shapes":N,"gone":N,"resumed":N}`
//! and exits 0 only if no frame was torn. Status lines go to stderr. With `--socket PATH` the
//! writer serves its channel on that socket and the reader connects to it (NAME is then the
//! writer's channel name; the reader ignores it).

use shmframe::{DType, Reader, Writer, WriterOptions};
use std::time::{Duration, Instant};

shmframe::metadata! {
    /// Test metadata: the frame index and a checksum of the pattern parameters.
    struct PeerMeta { index: u64, seed: u32, shape: [u32; 3] }
}

fn pattern(index: u64, k: usize) -> u8 {
    let x =
        (index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k as u64).wrapping_mul(0xC2B2_AE3D)) >> 29;
    x as u8
}

fn fill(index: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern(index, k);
    }
}

fn check(index: u64, buf: &[u8]) -> bool {
    buf.iter().enumerate().all(|(k, &b)| b == pattern(index, k))
}

const SHAPES: [[usize; 3]; 4] = [[48, 64, 3], [120, 160, 3], [24, 32, 1], [240, 320, 3]];

fn arg<T: std::str::FromStr>(args: &[String], flag: &str) -> Option<T> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn parse_shape(s: &str) -> Vec<usize> {
    s.split('x')
        .map(|d| d.parse().expect("shape like 480x640x3"))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (role, name) = match (args.first(), args.get(1)) {
        (Some(r), Some(n)) => (r.clone(), n.clone()),
        _ => {
            eprintln!("usage: peer write|read NAME [options] (see the source)");
            std::process::exit(2);
        }
    };
    let has = |f: &str| args.iter().any(|a| a == f);
    match role.as_str() {
        "write" => write(&name, &args, has("--keep"), has("--vary"), has("--meta")),
        "read" => read(
            &name,
            &args,
            has("--view"),
            has("--latest"),
            has("--until-gone"),
        ),
        _ => {
            eprintln!("unknown role {role}");
            std::process::exit(2);
        }
    }
}

fn write(name: &str, args: &[String], keep: bool, vary: bool, meta: bool) {
    let frames: u64 = arg(args, "--frames").unwrap_or(u64::MAX);
    let shape = arg::<String>(args, "--shape").map_or(vec![48, 64, 3], |s| parse_shape(&s));
    let fps: f64 = arg(args, "--fps").unwrap_or(0.0);
    let slots: u32 = arg(args, "--slots").unwrap_or(shmframe::DEFAULT_SLOTS);
    let hold_ms: u64 = arg(args, "--hold-ms").unwrap_or(0);
    let mode = arg::<String>(args, "--mode").map_or(0o600, |m| {
        u32::from_str_radix(m.trim_start_matches("0o"), 8).expect("octal mode")
    });
    let dtype =
        arg::<String>(args, "--dtype").map_or(DType::U8, |d| DType::parse(&d).expect("dtype"));
    let mut opts = WriterOptions::new().slots(slots).mode(mode).keep(keep);
    if meta {
        opts = opts.metadata::<PeerMeta>();
    }
    if let Some(path) = arg::<String>(args, "--socket") {
        opts = opts.socket(path);
    }
    let mut w = match Writer::create(name, opts) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(3);
        }
    };
    eprintln!("writer ready pid={}", std::process::id());
    let period = (fps > 0.0).then(|| Duration::from_secs_f64(1.0 / fps));
    let strict_after: Option<u64> = arg(args, "--strict-after");
    let strict_for = Duration::from_millis(arg(args, "--strict-ms").unwrap_or(u64::MAX));
    let mut strict_since = None;
    let start = Instant::now();
    let mut i = 0u64;
    while i < frames {
        if strict_after == Some(i) {
            enter_strict();
            strict_since = Some(Instant::now());
        }
        let shape: Vec<usize> = if vary {
            SHAPES[(i / 7) as usize % SHAPES.len()].to_vec()
        } else {
            shape.clone()
        };
        let mut loan = match w.loan(dtype, &shape) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(4);
            }
        };
        let index = i;
        fill(index, loan.data_mut());
        if meta {
            let m = PeerMeta {
                index,
                seed: 7,
                shape: [shape[0] as u32, shape[1] as u32, shape[2] as u32],
            };
            loan.set_meta_typed(&m).expect("meta");
        }
        if hold_ms > 0 {
            // Simulates a slow producer (and gives tests a window to kill us mid-write).
            std::thread::sleep(Duration::from_millis(hold_ms));
        }
        loan.publish();
        i += 1;
        for p in w.refused_peers() {
            eprintln!(
                "refused peer pid={} uid={} gid={}: {}",
                p.pid, p.uid, p.gid, p.reason
            );
        }
        if let Some(t0) = strict_since {
            // In strict mode: full rate (sleeping is a system call), for `--strict-ms` at most.
            if t0.elapsed() >= strict_for {
                break;
            }
        } else if let Some(p) = period {
            let due = start + p * i as u32;
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
    }
    if strict_since.is_some() {
        strict_exit(&format!("writer strict ok frames={i}\n"));
    }
    eprintln!("writer done frames={i}");
    w.close().expect("close");
}

fn read(name: &str, args: &[String], view: bool, latest: bool, until_gone: bool) {
    let frames: u64 = arg(args, "--frames").unwrap_or(u64::MAX);
    let timeout = Duration::from_secs_f64(arg(args, "--timeout").unwrap_or(10.0));
    let wait = Duration::from_secs_f64(arg(args, "--wait").unwrap_or(10.0));
    let hold_ms: u64 = arg(args, "--hold-ms").unwrap_or(0);
    let resume: u64 = arg(args, "--resume").unwrap_or(0);
    let mut errors: Vec<String> = Vec::new();
    let (mut got, mut torn, mut missed, mut gone, mut resumed, mut last_index) =
        (0u64, 0u64, 0u64, 0u64, 0u64, None);
    let mut shapes = std::collections::BTreeSet::new();
    let opened = match arg::<String>(args, "--socket") {
        Some(path) => Reader::connect_wait(path, wait),
        None => Reader::open_wait(name, wait),
    };
    let mut r = match opened {
        Ok(r) => r,
        Err(e) => {
            println!(
                "{{\"frames\":0,\"torn\":0,\"missed\":0,\"errors\":[{:?}],\"open_error\":true}}",
                e.to_string()
            );
            std::process::exit(5);
        }
    };
    r.set_latest_only(latest);
    if let Some(spin) = arg::<f64>(args, "--spin") {
        r.set_spin(Duration::from_secs_f64(spin));
    }
    let strict_after: Option<u64> = arg(args, "--strict-after");
    eprintln!("reader ready");
    while got < frames {
        if strict_after == Some(got) {
            enter_strict();
        }
        let res = if view {
            r.next_view(Some(timeout)).map(|v| {
                let ok = check(v.index, v.data());
                if hold_ms > 0 {
                    eprintln!("reader holding {}", v.index);
                    std::thread::sleep(Duration::from_millis(hold_ms));
                }
                // Re-check after holding: a pinned view must not change under us.
                let still = check(v.index, v.data());
                (
                    v.index,
                    v.missed,
                    v.shape().to_vec(),
                    ok && still,
                    v.meta.clone(),
                )
            })
        } else {
            r.next(Some(timeout)).map(|f| {
                if hold_ms > 0 {
                    std::thread::sleep(Duration::from_millis(hold_ms));
                }
                (
                    f.index,
                    f.missed,
                    f.shape.clone(),
                    check(f.index, &f.data),
                    f.meta,
                )
            })
        };
        match res {
            Ok((index, m, shape, ok, meta)) => {
                got += 1;
                missed += m;
                if !ok {
                    torn += 1;
                }
                if !meta.is_empty() {
                    let pm: PeerMeta = bytemuck_read(&meta);
                    if pm.index != index {
                        torn += 1;
                        errors.push(format!("meta index {} on frame {index}", pm.index));
                    }
                }
                shapes.insert(shape);
                last_index = Some(index);
            }
            Err(e @ shmframe::ReadError::WriterGone { .. })
            | Err(e @ shmframe::ReadError::Closed { .. }) => {
                gone += 1;
                eprintln!("reader: {e}");
                if until_gone && resumed >= resume {
                    break;
                }
                if resumed < resume {
                    resumed += 1;
                    continue;
                }
                errors.push(e.to_string());
                break;
            }
            Err(e) => {
                errors.push(e.to_string());
                break;
            }
        }
    }
    println!(
        "{{\"frames\":{got},\"torn\":{torn},\"missed\":{missed},\"errors\":{:?},\"last_index\":{},\"shapes\":{},\"gone\":{gone},\"resumed\":{resumed}}}",
        errors,
        last_index.map_or(-1, |i| i as i64),
        shapes.len()
    );
    if strict_after.is_some_and(|k| k < got) {
        strict_exit("reader strict ok\n");
    }
    std::process::exit(if torn == 0 { 0 } else { 1 });
}

fn bytemuck_read(b: &[u8]) -> PeerMeta {
    shmframe::__bytemuck::pod_read_unaligned(b)
}

/// Enters a strict seccomp filter: from here on any system call but `write`, `exit`,
/// `exit_group` and `rt_sigreturn` kills the process with SIGKILL. (Not seccomp's own strict
/// mode: on x86 that also disables `rdtsc`, which the vDSO clock needs.)
fn enter_strict() {
    const LD_NR: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS: the syscall number (offset 0)
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    const KILL_PROCESS: u32 = 0x8000_0000;
    const ALLOW: u32 = 0x7fff_0000;
    let allowed = [
        libc::SYS_write,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_rt_sigreturn,
    ];
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut prog = vec![op(LD_NR, 0, 0, 0)];
    for (i, nr) in allowed.iter().enumerate() {
        // Equal: jump to the ALLOW at the end; else try the next number.
        prog.push(op(JEQ, (allowed.len() - i) as u8, 0, *nr as u32));
    }
    prog.push(op(RET, 0, 0, KILL_PROCESS));
    prog.push(op(RET, 0, 0, ALLOW));
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: prctl with constant arguments; then seccomp(2) with a filter program that lives
    // until the call returns (the kernel copies it). Neither touches Rust-managed memory.
    let r = unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            -1
        } else {
            libc::syscall(
                libc::SYS_seccomp,
                1, /* SECCOMP_SET_MODE_FILTER */
                0,
                &fprog,
            )
        }
    };
    if r != 0 {
        eprintln!("error: seccomp: {}", std::io::Error::last_os_error());
        std::process::exit(6);
    }
    eprintln!("strict mode");
}

/// Leaves strict mode the only ways it allows: `write` the line to stderr (`eprint!` is
/// unbuffered), then `exit` of this, the only, thread, skipping every destructor and `atexit`
/// handler (which would make system calls). The test removes the channel's objects.
fn strict_exit(line: &str) -> ! {
    eprint!("{line}");
    // SAFETY: `exit` of the only thread ends the process; no Rust state is used after it.
    unsafe { libc::syscall(libc::SYS_exit, 0) };
    unreachable!("exit returned");
}
