//! A small-object allocator for protections inside the sandbox.
//!
//! Every string the host hands a protection is allocated by the guest's
//! allocator (the host calls `cabi_realloc` once per string) and freed after
//! the call, so a message event costs about ten small allocations and frees.
//! The default wasm allocator (dlmalloc) spends hundreds of instructions on
//! each; this one keeps a free list per 16-byte size class up to 512 bytes,
//! so the common case is a few instructions. Larger or over-aligned requests
//! go to the system allocator. Small blocks are reused, never returned: a
//! protection's small-object memory is bounded by its peak use.
//!
//! Enabled by the `small-object-allocator` feature (on by default); turn it
//! off to bring your own `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

const CLASS: usize = 16;
const CLASSES: usize = 32;
const MAX_SMALL: usize = CLASS * CLASSES;

/// The allocator; install with `#[global_allocator]` (the SDK does, on wasm32).
pub struct SmallObjectAllocator {
    /// Heads of the free lists; each free block starts with the next pointer.
    free: UnsafeCell<[*mut u8; CLASSES]>,
}

// SAFETY: wasm32-wasip2 components are single-threaded: no two calls into
// the allocator can overlap. (Only installed on wasm32.)
unsafe impl Sync for SmallObjectAllocator {}

impl SmallObjectAllocator {
    pub const fn new() -> Self {
        SmallObjectAllocator { free: UnsafeCell::new([ptr::null_mut(); CLASSES]) }
    }
}

impl Default for SmallObjectAllocator {
    fn default() -> Self {
        Self::new()
    }
}

/// The class index of a small, normally aligned layout.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() <= MAX_SMALL && layout.align() <= CLASS {
        Some(layout.size().saturating_sub(1) / CLASS)
    } else {
        None
    }
}

#[inline]
fn class_layout(class: usize) -> Layout {
    // SAFETY: sizes 16..=512 with alignment 16 are always valid layouts.
    unsafe { Layout::from_size_align_unchecked((class + 1) * CLASS, CLASS) }
}

unsafe impl GlobalAlloc for SmallObjectAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: single-threaded (see `Sync`), and no reference to the
        // array outlives this function.
        let heads = unsafe { &mut *self.free.get() };
        let head = heads[class];
        if head.is_null() {
            // SAFETY: a valid, non-zero-sized layout.
            return unsafe { System.alloc(class_layout(class)) };
        }
        // SAFETY: `head` is a free block of this class; its first word holds the next.
        heads[class] = unsafe { head.cast::<*mut u8>().read() };
        head
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            // SAFETY: `block` came from `System.alloc(layout)` above.
            return unsafe { System.dealloc(block, layout) };
        };
        // SAFETY: as in `alloc`; every small block is at least 16 bytes and
        // 16-aligned, so it can hold the next pointer.
        let heads = unsafe { &mut *self.free.get() };
        unsafe { block.cast::<*mut u8>().write(heads[class]) };
        heads[class] = block;
    }

    #[inline]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with this alignment is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            // Same class: the block already has room.
            (Some(a), Some(b)) if a == b => block,
            // Both large: let the system allocator grow in place if it can.
            // SAFETY: forwarded with the caller's guarantees.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: as for `alloc`/`dealloc`; copy the smaller of the two sizes.
                unsafe {
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        ptr::copy_nonoverlapping(block, new, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    new
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_by_class_and_realloc_keeps_contents() {
        let a = SmallObjectAllocator::new();
        unsafe {
            let l24 = Layout::from_size_align(24, 8).unwrap();
            let l30 = Layout::from_size_align(30, 1).unwrap();
            let p = a.alloc(l24);
            p.write_bytes(7, 24);
            a.dealloc(p, l24);
            // 30 bytes is the same class (17..=32) as 24: the block comes back.
            let q = a.alloc(l30);
            assert_eq!(p, q);
            q.write_bytes(9, 30);
            // Growing within the class keeps the block; beyond it moves and copies.
            assert_eq!(a.realloc(q, l30, 32), q);
            let r = a.realloc(q, Layout::from_size_align(32, 1).unwrap(), 1000);
            assert_ne!(r, q);
            assert_eq!(std::slice::from_raw_parts(r, 30), &[9u8; 30][..]);
            let big = Layout::from_size_align(1000, 1).unwrap();
            let s = a.realloc(r, big, 2000);
            assert_eq!(std::slice::from_raw_parts(s, 30), &[9u8; 30][..]);
            a.dealloc(s, Layout::from_size_align(2000, 1).unwrap());
            // Over-aligned requests bypass the classes.
            let l = Layout::from_size_align(64, 64).unwrap();
            let o = a.alloc(l);
            assert_eq!(o as usize % 64, 0);
            a.dealloc(o, l);
        }
    }
}
