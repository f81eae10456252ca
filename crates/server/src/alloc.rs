//! A global allocator that keeps oversized allocations from aborting the
//! process.
//!
//! The protocol decoder reserves capacity for an array from the count a
//! request declares, before reading any element; a 20-byte request can
//! declare two billion elements. A plain allocator then fails the
//! reservation and the process aborts. This allocator serves allocations of
//! 1 GiB or more with anonymous mappings that reserve no memory
//! (`MAP_NORESERVE`): the reservation succeeds, the decoder runs out of
//! input after a few elements and returns an error, and the mapping is
//! released. Everything smaller goes to the system allocator unchanged.
//!
//! The `pubsub` binary and the fuzz targets install it with
//! `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are mapped, not malloc'ed.
pub const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

/// The system allocator, with huge allocations served by lazy mappings.
#[derive(Debug, Default, Clone, Copy)]
pub struct GuardedAllocator;

fn is_huge(layout: Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

// SAFETY: small allocations are forwarded to `System` unchanged; huge ones are
// page-aligned (so any alignment up to a page is met) anonymous private
// mappings of exactly `layout.size()` bytes, zero-filled by the kernel, and
// are unmapped with the same size on deallocation. `realloc` between the two
// kinds copies through a fresh allocation.
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout) {
            // SAFETY: a fresh anonymous mapping; no existing memory is touched.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    layout.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return std::ptr::null_mut();
            }
            return p.cast();
        }
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout) {
            // Anonymous mappings are zero-filled.
            // SAFETY: same contract as `alloc`.
            return unsafe { self.alloc(layout) };
        }
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(layout) {
            // SAFETY: `ptr` came from our mmap of exactly this size.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
            return;
        }
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` and `layout.align()` form
        // a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_huge(layout) && !is_huge(new_layout) {
            // SAFETY: forwarded with the caller's contract.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: allocate, copy the common prefix, free the old block.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}
