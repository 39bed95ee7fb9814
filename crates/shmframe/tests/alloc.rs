//! The reading hot path allocates nothing: a zero-copy view of a frame without metadata costs no
//! heap allocation (a real-time loop may take one per frame). Counted by a global allocator that
//! counts the allocations of the calling thread.

mod common;

use common::*;
use shmframe::{DType, Reader, Writer, WriterOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// thread-local `Cell`, which needs no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `alloc`, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn a_zero_copy_view_allocates_nothing() {
    let g = Guard::new("alloc");
    let mut w = Writer::create(&g.name, WriterOptions::new()).unwrap();
    let mut r = Reader::open(&g.name).unwrap();
    let frame = [7u8; 4 * 5 * 3];
    let wait = Some(Duration::from_secs(5));
    w.write(DType::U8, &[4, 5, 3], &frame).unwrap();
    drop(r.next_view(wait).unwrap());
    let mut taken = 0;
    for i in 1..=200u64 {
        w.write(DType::U8, &[4, 5, 3], &frame).unwrap();
        let before = allocations();
        let v = r.next_view(wait).unwrap();
        assert_eq!(
            (v.index, v.shape(), v.data()),
            (i, &[4, 5, 3][..], &frame[..])
        );
        drop(v);
        taken += allocations() - before;
    }
    assert_eq!(taken, 0, "allocations in 200 views");
    drop(r);
    w.close().unwrap();
    assert!(g.leftovers().is_empty());
}
