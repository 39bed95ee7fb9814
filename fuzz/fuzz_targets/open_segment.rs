//! Arbitrary bytes (or a valid channel with fuzz-chosen patches) as `/dev/shm/shmframe.fuzz-PID`,
//! opened and read every way a reader can: `Reader::open`, `next`, `latest`, `next_view`,
//! `channels::inspect`. Must never crash or hang.
#![no_main]

#[path = "../../crates/shmframe/tests/common/fuzz_open.rs"]
mod fuzz_open;

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static TEMPLATE: OnceLock<Vec<u8>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let template = TEMPLATE.get_or_init(fuzz_open::template);
    let seg = fuzz_open::segment_from_input(template, data);
    fuzz_open::open_bytes(&format!("fuzz-{}", std::process::id()), &seg);
});
