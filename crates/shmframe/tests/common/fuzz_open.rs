//! The open/read path that the fuzz target `open_segment` drives, shared with the regression test
//! that replays its findings (`tests/fuzz_regressions.rs`). Included by path from `fuzz/`.
#![allow(dead_code)]

use shmframe::{channels, DType, Reader, Writer, WriterOptions};
use std::time::Duration;

shmframe::metadata! {
    /// Metadata of the template segment, so that schema parsing is reached.
    pub struct FuzzMeta { pub index: u64, pub gain: f32, pub flags: [u8; 4] }
}

/// Writes `bytes` as channel `name` in /dev/shm, opens and reads it every way a reader can, then
/// removes it. Any answer is acceptable except a crash (panic, SIGBUS, SIGSEGV) or a hang.
pub fn open_bytes(name: &str, bytes: &[u8]) {
    let path = format!("/dev/shm/shmframe.{name}");
    std::fs::write(&path, bytes).expect("write the object in /dev/shm");
    // The pin table of whatever lineage the bytes claim, so that readers get past opening.
    let lineage = bytes
        .get(16..24)
        .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")));
    let pins_path = format!("/dev/shm/shmframe-pins.{name}.{lineage:016x}");
    std::fs::write(&pins_path, pin_table(lineage)).expect("write the pin table in /dev/shm");
    let _ = channels::inspect(name);
    if let Ok(mut r) = Reader::open(name) {
        let _ = r.next(Some(Duration::ZERO)).map(|f| f.data.len());
        let _ = r.latest();
        if let Ok(v) = r.next_view(Some(Duration::ZERO)) {
            // Touch every byte of the view: a size the reader failed to check would fault here.
            let sum: u64 = v.data().iter().map(|&b| b as u64).sum();
            std::hint::black_box(sum);
            let _ = v.meta_as::<FuzzMeta>();
        }
        let _ = (r.writer_alive(), r.frames_published(), r.schema().cloned());
    }
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&pins_path);
}

/// An empty pin table of `lineage` (`docs/protocol.md` §2.4).
pub fn pin_table(lineage: u64) -> Vec<u8> {
    use shmframe::layout::{LAYOUT_VERSION, PINS_MAGIC, PINS_SIZE, PIN_ENTRIES};
    let mut b = vec![0u8; PINS_SIZE as usize];
    b[..8].copy_from_slice(&PINS_MAGIC);
    b[8..12].copy_from_slice(&LAYOUT_VERSION.to_ne_bytes());
    b[12..16].copy_from_slice(&PIN_ENTRIES.to_ne_bytes());
    b[16..24].copy_from_slice(&lineage.to_ne_bytes());
    b
}

/// The bytes of a valid channel: 2 slots, a metadata schema, two frames of 4×4×3 u8.
pub fn template() -> Vec<u8> {
    let name = format!("fuzz-tpl-{}", std::process::id());
    let mut w = Writer::create(&name, WriterOptions::new().slots(2).metadata::<FuzzMeta>())
        .expect("create the template channel");
    for i in 0..2u8 {
        let m = FuzzMeta {
            index: i as u64,
            gain: 1.5,
            flags: [i; 4],
        };
        w.write_typed::<u8, FuzzMeta>(&[4, 4, 3], &[i; 48], Some(&m))
            .expect("write");
    }
    let bytes = std::fs::read(format!("/dev/shm/shmframe.{name}")).expect("read template");
    w.close().expect("close");
    bytes
}

/// Turns a fuzz input into segment bytes. `data[0] % 4` picks how:
/// 0: the rest of the input is the segment; 1: the template with 3-byte patches
/// (u16 offset, byte); 2: the template with 10-byte patches (u16 offset, u64 value); 3: the
/// template cut at a u16 length, then 3-byte patches.
pub fn segment_from_input(template: &[u8], data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else {
        return Vec::new();
    };
    let mut seg = template.to_vec();
    let mut rest = rest;
    match mode % 4 {
        0 => return rest.to_vec(),
        3 if rest.len() >= 2 => {
            let cut = u16::from_le_bytes([rest[0], rest[1]]) as usize;
            seg.truncate(cut % (template.len() + 1));
            rest = &rest[2..];
        }
        _ => {}
    }
    if seg.is_empty() {
        return seg;
    }
    let wide = mode % 4 == 2;
    let step = if wide { 10 } else { 3 };
    for p in rest.chunks_exact(step) {
        let at = u16::from_le_bytes([p[0], p[1]]) as usize % seg.len();
        if wide {
            let end = (at + 8).min(seg.len());
            seg[at..end].copy_from_slice(&p[2..2 + end - at]);
        } else {
            seg[at] = p[2];
        }
    }
    seg
}

/// A frame for the live target: `DType::U8` of `len` bytes.
pub fn frame(len: usize, fill: u8) -> (DType, Vec<usize>, Vec<u8>) {
    (DType::U8, vec![len], vec![fill; len])
}
