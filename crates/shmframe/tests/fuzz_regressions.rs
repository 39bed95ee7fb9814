//! Replays fuzz inputs kept in `tests/fuzz_regressions/` through the same open/read path as the
//! `open_segment` fuzz target (`fuzz/`): hand-written inputs for each refusal path, inputs the
//! fuzzer found interesting, and any input that ever crashed it. Each must be answered without a
//! panic, hang or fault, and leave nothing in /dev/shm.

#[path = "common/fuzz_open.rs"]
mod fuzz_open;

#[test]
fn fuzz_regressions_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let template = fuzz_open::template();
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fuzz_regressions")
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 10, "inputs missing from {}", dir.display());
    let name = format!("fuzzreg-{}", std::process::id());
    for path in &inputs {
        eprintln!("replaying {}", path.display());
        let data = std::fs::read(path).unwrap();
        let seg = fuzz_open::segment_from_input(&template, &data);
        fuzz_open::open_bytes(&name, &seg);
    }
    assert!(!std::path::Path::new(&format!("/dev/shm/shmframe.{name}")).exists());
    assert!(!std::path::Path::new(&format!(
        "/dev/shm/shmframe.fuzz-tpl-{}",
        std::process::id()
    ))
    .exists());
}
