//! Counting the bytes each thread has live, so a fuzz test can bound the
//! memory one input takes. Tests run on threads of their own, so per-thread
//! counts keep parallel tests apart.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting per thread. A test binary that fuzzes
/// installs it: `#[global_allocator] static A: CountingAllocator = CountingAllocator;`
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

thread_local! {
    // Signed: memory freed on another thread than it was allocated on makes
    // a thread's count go down, even below zero; only growth is measured.
    // Const-initialised `Cell`s need no destructor, so reading them inside
    // the allocator never allocates and never fails.
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn grew(bytes: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(i64::try_from(bytes).unwrap_or(i64::MAX));
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrank(bytes: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(i64::try_from(bytes).unwrap_or(i64::MAX))));
}

// SAFETY: every call goes to `System` unchanged; the counters only observe.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as it is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        new
    }
}

/// Starts a measurement: the bytes live on this thread now.
pub(crate) fn start() -> i64 {
    let live = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(live));
    live
}

/// The most bytes live on this thread since `start` returned `before`, above it.
pub(crate) fn peak_since(before: i64) -> i64 {
    PEAK.with(Cell::get) - before
}

/// Fails when the test binary does not count: the memory bound would not hold.
pub(crate) fn ensure_counting(target: &str) {
    let before = start();
    drop(std::hint::black_box(vec![0u8; 4096]));
    assert!(
        peak_since(before) >= 4096,
        "fuzz target `{target}`: install gleipnir_fuzz::CountingAllocator as this test binary's #[global_allocator]"
    );
}
