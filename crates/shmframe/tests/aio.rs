//! Async reading with tokio (feature `tokio`): one runtime thread reads many channels written by
//! other processes, through the readiness descriptor (an io_uring futex wait, or the process's
//! waker thread where the kernel has none).
#![cfg(feature = "tokio")]

mod common;

use common::*;
use futures_core::Stream;
use shmframe::layout::off;
use shmframe::{ReadError, Reader};
use std::pin::Pin;
use std::time::{Duration, Instant};

/// The tests of this file run one at a time: the idle test measures the process's CPU time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The next item of a stream.
async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// 64 writer processes, one current-thread runtime: every frame of every channel from the one the
/// reader attached at, in order, and each stream ends with the close.
#[test]
fn one_thread_reads_64_channels_in_order() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    const N: usize = 64;
    const FRAMES: u64 = 60;
    let guards: Vec<Guard> = (0..N).map(|i| Guard::new(&format!("aio{i}"))).collect();
    let mut readers: Vec<Reader> = Vec::new();
    let mut writers = Vec::new();
    for g in &guards {
        let frames = FRAMES.to_string();
        let w = peer(&[
            "write", &g.name, "--frames", &frames, "--fps", "20", "--shape", "8x8x1",
        ]);
        w.wait_stderr("writer ready");
        readers.push(Reader::open_wait(&g.name, LONG).unwrap());
        writers.push(w);
    }
    let rt = runtime();
    let got = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for mut r in readers {
            tasks.spawn(async move {
                let mut got = Vec::new();
                let mut s = r.frames();
                while let Some(f) = next(&mut s).await {
                    let f = f.expect("a frame");
                    assert!(is_pattern(f.index, &f.data), "frame {} torn", f.index);
                    got.push(f.index);
                }
                got
            });
        }
        let mut all = Vec::new();
        while let Some(got) = tasks.join_next().await {
            all.push(got.unwrap());
        }
        all
    });
    assert_eq!(got.len(), N);
    for g in got {
        let first = *g.first().expect("frames");
        assert_eq!(
            g,
            (first..FRAMES).collect::<Vec<_>>(),
            "every frame, in order"
        );
    }
    for mut w in writers {
        assert!(w.wait().success());
    }
    for g in &guards {
        assert!(g.leftovers().is_empty());
    }
}

/// A `kill -9`ed writer ends the reader's await with `WriterGone` within a second.
#[test]
fn killed_writer_ends_the_await() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let g = Guard::new("aiokill");
    let n = g.name.clone();
    let mut w = peer(&["write", &n, "--fps", "20", "--shape", "4x4x1"]);
    w.wait_stderr("writer ready");
    let mut r = Reader::open_wait(&n, LONG).unwrap();
    let rt = runtime();
    rt.block_on(async {
        for _ in 0..3 {
            let f = r.next_async().await.unwrap();
            assert!(is_pattern(f.index, &f.data));
        }
        let killed = {
            w.kill9();
            Instant::now()
        };
        let e = tokio::time::timeout(Duration::from_secs(5), r.next_async())
            .await
            .expect("the await ends");
        assert!(matches!(e, Err(ReadError::WriterGone { .. })), "{e:?}");
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "{:?}",
            killed.elapsed()
        );
    });
}

/// A cancelled await (a timeout) leaves nothing pinned: with a one-slot channel the writer can
/// still publish every frame afterwards.
#[test]
fn cancelled_await_leaves_no_pin() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let g = Guard::new("aiocancel");
    let n = g.name.as_str();
    let mut w = shmframe::Writer::create(n, shmframe::WriterOptions::new().slots(1)).unwrap();
    let mut r = Reader::open(n).unwrap();
    let rt = runtime();
    rt.block_on(async {
        for _ in 0..20 {
            let t = tokio::time::timeout(Duration::from_millis(5), r.next_view_async()).await;
            assert!(t.is_err(), "nothing was published yet");
        }
    });
    for i in 0..10u64 {
        assert_eq!(
            w.write(shmframe::DType::U8, &[4], &pattern_frame(i, 4))
                .unwrap(),
            i
        );
    }
    rt.block_on(async {
        let v = r.next_view_async().await.unwrap();
        assert!(is_pattern(v.index, v.data()));
    });
    w.close().unwrap();
}

/// Awaits frame `i` with `r` in `rt` on a new thread: the await finds nothing and sleeps, then
/// `w` publishes the frame. Panics unless the frame woke the await within 5 s.
fn woken_on_a_new_thread(
    rt: &std::sync::Arc<tokio::runtime::Runtime>,
    r: Reader,
    w: &mut shmframe::Writer,
    i: u64,
) -> Reader {
    let rt = rt.clone();
    let mut r = r;
    let waiting = std::thread::spawn(move || {
        // The deadline is looked at first: `tokio::time::timeout` would poll the read once more
        // when it expires and find the frame that never woke it.
        let got = rt.block_on(async {
            tokio::select! {
                biased;
                _ = tokio::time::sleep(Duration::from_secs(5)) => None,
                f = r.next_async() => Some(f),
            }
        });
        (r, got)
    });
    std::thread::sleep(Duration::from_millis(30));
    w.write(shmframe::DType::U8, &[4], &pattern_frame(i, 4))
        .unwrap();
    let (r, got) = waiting.join().unwrap();
    let f = got.expect("woken within 5 s").unwrap();
    assert_eq!(f.index, i);
    assert!(is_pattern(f.index, &f.data));
    r
}

/// Six frames, each awaited by the same reader on a new thread, in `runtimes` in turn (the
/// first half in the first, …): every frame must wake its await.
fn six_awaits_each_on_a_new_thread(
    tag: &str,
    runtimes: &[std::sync::Arc<tokio::runtime::Runtime>],
) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let g = Guard::new(tag);
    let mut w = shmframe::Writer::create(&g.name, shmframe::WriterOptions::new()).unwrap();
    let mut r = Reader::open(&g.name).unwrap();
    for i in 0..6u64 {
        let rt = &runtimes[i as usize * runtimes.len() / 6];
        r = woken_on_a_new_thread(rt, r, &mut w, i);
    }
    w.close().unwrap();
}

/// A reader awaited on one thread and then on others (as a multi-thread runtime moves a task)
/// is still woken by every frame: the io_uring wait belongs to the thread that queued it, so a
/// reader that moves makes its wait again where it is now.
#[test]
fn a_reader_moved_between_threads_is_still_woken() {
    six_awaits_each_on_a_new_thread("aiomove", &[std::sync::Arc::new(runtime())]);
}

/// A reader awaited in one runtime and then in another (the first still running) is woken in
/// the second: its descriptor is registered again with the runtime that awaits it.
#[test]
fn a_reader_awaited_in_another_runtime_is_woken_there() {
    let runtimes = [
        std::sync::Arc::new(runtime()),
        std::sync::Arc::new(runtime()),
    ];
    six_awaits_each_on_a_new_thread("aiort", &runtimes);
}

/// Rings the bell of `name`'s pin table and wakes whoever sleeps on it, as any process that may
/// read the channel can (the table is writable to readers), though no frame was published.
#[allow(unsafe_code)]
fn ring_bell_as_a_stranger(name: &str) {
    let pins = PinTablePage::map(name);
    let bell = pins.word(off::P_BELL);
    bell.fetch_add(1, std::sync::atomic::Ordering::Release);
    // SAFETY: FUTEX_WAKE (shared) on a word of a live mapping.
    unsafe { libc::syscall(libc::SYS_futex, bell.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}

/// Waiting on 64 silent channels costs (next to) no CPU: the waker thread sleeps in the kernel,
/// also after a stranger rang each channel's bell (a waiter that kept waiting for the bell's old
/// value would spin).
#[test]
fn waiting_on_silent_channels_is_idle() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let guards: Vec<Guard> = (0..64)
        .map(|i| Guard::new(&format!("aioidle{i}")))
        .collect();
    let writers: Vec<_> = guards
        .iter()
        .map(|g| shmframe::Writer::create(&g.name, shmframe::WriterOptions::new()).unwrap())
        .collect();
    let readers: Vec<Reader> = guards
        .iter()
        .map(|g| Reader::open(&g.name).unwrap())
        .collect();
    let rt = runtime();
    let cpu = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    };
    let (used, wall) = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for mut r in readers {
            tasks.spawn(async move { r.next_async().await.map(|f| f.index) });
        }
        // Let every task arm its reader, ring every bell, then measure two quiet seconds.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for g in &guards {
            ring_bell_as_a_stranger(&g.name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (c0, t0) = (cpu(), Instant::now());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let used = (cpu() - c0, t0.elapsed());
        assert!(tasks.try_join_next().is_none(), "no frame was published");
        tasks.abort_all();
        used
    });
    assert!(
        used.as_secs_f64() < 0.01 * wall.as_secs_f64(),
        "{used:?} of CPU in {wall:?} waiting on silent channels"
    );
    drop(writers);
}

/// Where the kernel offers io_uring futex waits the tests above use them (no waker-thread hop);
/// this runs them all again in a child process with the waker thread instead
/// (`SHMFRAME_NO_IO_URING`), the path of older kernels and of sandboxes that disable io_uring.
#[test]
fn the_tests_pass_with_the_waker_thread_too() {
    if std::env::var_os("SHMFRAME_NO_IO_URING").is_some() {
        return; // the child's run of this very test
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--test-threads=1",
            "--skip",
            "the_tests_pass_with_the_waker_thread_too",
        ])
        .env("SHMFRAME_NO_IO_URING", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("6 passed"),
        "with the waker thread: {said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
