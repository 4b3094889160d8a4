//! The component's allocator: a bump arena over the linear memory the instance starts with,
//! reset whenever nothing in it is alive, then the standard allocator.
//!
//! The standard allocator (dlmalloc) only ever obtains memory by growing it — `memory.grow`
//! even when the instance starts with unused pages — and the host drops a warm instance whose
//! memory grew past a small allowance (and every growth costs it an `mprotect` when the pool
//! slot is reused). Allocating from the initial pages first means an ordinary call never grows
//! memory. Bumping is also cheaper than a free list, and a call's allocations all die by its
//! end (the host frees what it lifted from the results), so the arena counts its live blocks
//! and starts over from its base once there are none: a warm instance serves call after call
//! from the same few pages. A call that needs more than the arena (a window of large messages)
//! falls back to dlmalloc, which frees and reuses as usual.
//!
//! Only built for wasm32 (the component); native unit tests use the system allocator.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;

/// The allocator of the component.
pub struct Arena {
    /// The next free byte of the arena, its start and its end; all 0 until the first
    /// allocation.
    next: Cell<usize>,
    base: Cell<usize>,
    end: Cell<usize>,
    /// Arena blocks allocated and not yet freed: at 0, the arena starts over from `base`.
    live: Cell<usize>,
}

// SAFETY: the component runs on one thread (wasm32 without threads), so the cells are never
// accessed concurrently.
unsafe impl Sync for Arena {}

impl Arena {
    /// An arena that finds its bounds at the first allocation.
    pub const fn new() -> Self {
        Self {
            next: Cell::new(0),
            base: Cell::new(0),
            end: Cell::new(0),
            live: Cell::new(0),
        }
    }

    /// Set the bounds at the first allocation: from the linker's heap base to the end of the
    /// memory the instance started with.
    fn bounds(&self) -> (usize, usize) {
        if self.end.get() == 0 {
            unsafe extern "C" {
                /// Where the heap starts, after the stack and the data (set by the linker).
                static __heap_base: u8;
            }
            // SAFETY: only the address of the linker-provided symbol is taken.
            let base = unsafe { core::ptr::addr_of!(__heap_base) } as usize;
            let end = core::arch::wasm32::memory_size(0) * 65536;
            self.next.set(base);
            self.base.set(base);
            self.end.set(end.max(base));
        }
        (self.next.get(), self.end.get())
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        let address = ptr as usize;
        self.end.get() != 0 && address < self.end.get()
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: blocks handed out by the arena are disjoint (the cursor only moves forward), aligned
// as asked, and inside memory the instance owns; everything else is the system allocator's.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (next, end) = self.bounds();
        let start = next.next_multiple_of(layout.align());
        match start.checked_add(layout.size()) {
            Some(stop) if stop <= end => {
                self.next.set(stop);
                self.live.set(self.live.get() + 1);
                start as *mut u8
            }
            // SAFETY: forwarded as given.
            _ => unsafe { std::alloc::System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.owns(ptr) {
            // A block is reclaimed with all the others, when the last one is freed.
            let live = self.live.get().saturating_sub(1);
            self.live.set(live);
            if live == 0 {
                self.next.set(self.base.get());
            }
            return;
        }
        // SAFETY: not an arena block, so the system allocator's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.owns(ptr) {
            let start = ptr as usize;
            // The last block can grow in place (the common case: a growing string or vector).
            if start + layout.size() == self.next.get()
                && let Some(stop) = start.checked_add(new_size)
                && stop <= self.end.get()
            {
                self.next.set(stop);
                return ptr;
            }
            if new_size <= layout.size() {
                return ptr;
            }
        } else {
            // SAFETY: not an arena block, so the system allocator's.
            return unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: `new_size` with the old alignment is a valid layout (the caller guarantees
        // it does not overflow).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for any allocation.
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks are valid for the old size, and distinct.
            unsafe { core::ptr::copy_nonoverlapping(ptr, moved, layout.size()) };
            // The new block is live, so freeing the old one cannot reset the arena under it.
            // SAFETY: `ptr` is an arena block of `layout`, no longer used.
            unsafe { self.dealloc(ptr, layout) };
        }
        moved
    }
}
