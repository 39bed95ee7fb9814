//! A live channel whose header, ring header, slot headers and pin table are scribbled on, byte by
//! fuzz-chosen byte, through a second read-write mapping by another thread while a writer
//! publishes and a reader reads (copies, views, latest). The writer and reader must answer (frames or errors), never
//! crash or hang.
#![no_main]

#[path = "../../crates/shmframe/tests/common/fuzz_open.rs"]
mod fuzz_open;

use libfuzzer_sys::fuzz_target;
use shmframe::{Reader, Writer, WriterOptions};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::time::Duration;

static N: AtomicU32 = AtomicU32::new(0);

/// A read-write mapping of a whole file, unmapped on drop.
struct Mapping {
    ptr: usize,
    len: usize,
}

impl Mapping {
    fn new(path: &str) -> Mapping {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open the channel read-write");
        let len = f.metadata().expect("stat").len() as usize;
        // SAFETY: a fresh shared mapping of a valid descriptor at a kernel-chosen address; the
        // object is not shrunk while mapped (its writer lives until after `drop`).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        Mapping {
            ptr: ptr as usize,
            len,
        }
    }

    /// Stores `v` at byte `at` (in bounds) with an atomic store, as another process would.
    fn poke(&self, at: usize, v: u8) {
        assert!(at < self.len);
        // SAFETY: in bounds of a live mapping; an atomic byte store (no data race on our side;
        // the library reads these bytes with atomics or copies it validates).
        unsafe { AtomicU8::from_ptr((self.ptr + at) as *mut u8).store(v, Ordering::Relaxed) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the region returned by mmap, no references into it remain.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

fuzz_target!(|data: &[u8]| {
    let name = format!(
        "fuzz-live-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let path = format!("/dev/shm/shmframe.{name}");
    let opts = WriterOptions::new()
        .slots(2)
        .capacity(256)
        .metadata::<fuzz_open::FuzzMeta>();
    let mut w = Writer::create(&name, opts).expect("create");
    let map = Mapping::new(&path);
    let pins_path = std::fs::read_dir("/dev/shm")
        .expect("/dev/shm")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|f| f.starts_with(&format!("shmframe-pins.{name}.")))
        .map(|f| format!("/dev/shm/{f}"))
        .expect("the pin table");
    let pins = Mapping::new(&pins_path);
    let mut r = Reader::open(&name).expect("open");
    // Patches aim at the header, the ring header, the two slot headers and the pin table's
    // header and first entries (offsets folded into those regions); `None`: the pin table.
    let regions = [
        (Some(0usize), 256usize),
        (Some(4096), 128),
        (Some(8192), 128),
        (Some(12288), 128),
        (None, 256),
    ];
    std::thread::scope(|s| {
        s.spawn(|| {
            for p in data.chunks_exact(3) {
                let (start, len) = regions[p[0] as usize % regions.len()];
                match start {
                    Some(start) => map.poke((start + p[1] as usize % len).min(map.len - 1), p[2]),
                    None => pins.poke(p[1] as usize % len, p[2]),
                }
                std::thread::yield_now();
            }
        });
        for i in 0..24u8 {
            let (dtype, shape, bytes) = fuzz_open::frame(16 + i as usize * 8, i);
            let _ = w.write(dtype, &shape, &bytes);
            match i % 3 {
                0 => {
                    let _ = r.next(Some(Duration::ZERO));
                }
                1 => {
                    if let Ok(v) = r.next_view(Some(Duration::ZERO)) {
                        std::hint::black_box(v.data().iter().map(|&b| b as u64).sum::<u64>());
                    }
                }
                _ => {
                    let _ = r.latest();
                }
            }
        }
    });
    drop(r);
    drop(map);
    drop(pins);
    let _ = w.close();
    let _ = std::fs::remove_file(&path);
});
