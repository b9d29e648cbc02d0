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
// The one unsafe impl of the crate: `GlobalAlloc` is an unsafe trait.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
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

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocs.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}
