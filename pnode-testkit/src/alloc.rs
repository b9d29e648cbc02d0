//! A counting global allocator for the tests that assert that some code allocates nothing:
//! it forwards to the system allocator and counts the allocations.
//!
//! Install it in a test binary of its own (`#[global_allocator]` is per binary, and another
//! test's thread allocating while one counts would be counted too):
//!
//! ```
//! use pnode_testkit::alloc::CountingAlloc;
//!
//! #[global_allocator]
//! static GLOBAL: CountingAlloc = CountingAlloc::new();
//!
//! let mut buf = vec![0.0; 4];
//! let before = GLOBAL.count();
//! buf.iter_mut().for_each(|x| *x += 1.0); // the code that must not allocate
//! assert_eq!(GLOBAL.count() - before, 0);
//! let more = vec![1u8; 8];
//! assert!(GLOBAL.count() > before, "{more:?} was counted");
//! ```
//!
//! It also keeps per-thread figures ([`thread_allocs`]: allocations, bytes requested, peak of
//! the bytes live), which other threads' allocations do not disturb, so a test binary whose
//! tests run in parallel can count the work of one call.
// The one unsafe impl of the crate: `GlobalAlloc` is an unsafe trait.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting allocations (not deallocations).
#[derive(Debug, Default)]
pub struct CountingAlloc {
    allocs: AtomicUsize,
}

impl CountingAlloc {
    /// A counter at zero (`const`, for a `static`).
    pub const fn new() -> Self {
        CountingAlloc {
            allocs: AtomicUsize::new(0),
        }
    }

    /// The number of allocations so far, by every thread.
    pub fn count(&self) -> usize {
        self.allocs.load(Ordering::Relaxed)
    }
}

/// One thread's allocations through [`CountingAlloc`] (growing a buffer counts as a new
/// allocation of its new size).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ThreadAllocs {
    /// Allocations made.
    pub count: u64,
    /// Bytes requested by them.
    pub bytes: u64,
    /// Bytes allocated and not yet freed by this thread (blocks freed by another thread stay
    /// counted here).
    pub live: u64,
    /// The most bytes live at once since the thread started or [`reset_thread_peak`].
    pub peak: u64,
}

impl ThreadAllocs {
    /// The allocations and bytes since `earlier`, with this figure's live bytes and peak.
    pub fn since(self, earlier: ThreadAllocs) -> ThreadAllocs {
        ThreadAllocs {
            count: self.count - earlier.count,
            bytes: self.bytes - earlier.bytes,
            ..self
        }
    }
}

thread_local! {
    // `const` and without a destructor: reading it never allocates, even at thread exit.
    static THREAD: Cell<ThreadAllocs> = const {
        Cell::new(ThreadAllocs { count: 0, bytes: 0, live: 0, peak: 0 })
    };
}

/// This thread's allocations so far (all zero unless a [`CountingAlloc`] is the global
/// allocator).
pub fn thread_allocs() -> ThreadAllocs {
    THREAD.try_with(Cell::get).unwrap_or_default()
}

/// Start this thread's peak over from its bytes live now.
pub fn reset_thread_peak() {
    let _ = THREAD.try_with(|t| {
        let mut a = t.get();
        a.peak = a.live;
        t.set(a);
    });
}

fn count_thread(alloc: Option<usize>, free: Option<usize>) {
    let _ = THREAD.try_with(|t| {
        let mut a = t.get();
        if let Some(size) = alloc {
            a.count += 1;
            a.bytes += size as u64;
            a.live += size as u64;
            a.peak = a.peak.max(a.live);
        }
        if let Some(size) = free {
            a.live = a.live.saturating_sub(size as u64);
        }
        t.set(a);
    });
}

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocs.fetch_add(1, Ordering::Relaxed);
        count_thread(Some(layout.size()), None);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_thread(None, Some(layout.size()));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.allocs.fetch_add(1, Ordering::Relaxed);
        count_thread(Some(new_size), Some(layout.size()));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
