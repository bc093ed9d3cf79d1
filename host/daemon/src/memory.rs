//! Giving freed memory back to the system. A first sync, a policy list read
//! whole or a burst of rule changes leaves the allocator holding pages
//! nothing uses any more; glibc keeps them unless asked, and the process
//! stays as large as its busiest moment.

use std::time::{Duration, Instant};

/// How often at most the allocator is asked (each time walks its heaps).
const EVERY: Duration = Duration::from_secs(10);

/// When the allocator was last asked.
#[derive(Debug)]
pub(crate) struct GiveBack {
    last: Instant,
}

impl Default for GiveBack {
    fn default() -> Self {
        GiveBack { last: Instant::now() }
    }
}

impl GiveBack {
    /// Gives back now.
    pub(crate) fn now(&mut self) {
        self.last = Instant::now();
        trim();
    }

    /// Gives back, unless it was done less than [`EVERY`] ago.
    pub(crate) fn now_and_then(&mut self) {
        if self.last.elapsed() >= EVERY {
            self.now();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: `malloc_trim` takes no pointer and only walks glibc's own
    // heaps, under their locks; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators give back on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
