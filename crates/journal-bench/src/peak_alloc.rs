//! The global allocator (mimalloc, as in the function binaries), able to count live heap bytes
//! and their high-water mark while one step runs, so a bench can report that step's peak memory.
//!
//! Counting is off outside [`PeakAlloc::measure`]: its atomic updates on every allocation cost
//! several percent of an allocation-heavy path, which the functions do not pay, so timed runs
//! must not carry them.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

pub struct PeakAlloc {
    inner: mimalloc::MiMalloc,
    counting: AtomicBool,
    /// Bytes allocated minus bytes freed since counting began; negative when more memory from
    /// before was freed than was allocated since.
    live: AtomicIsize,
    peak: AtomicIsize,
}

impl PeakAlloc {
    pub const fn new() -> Self {
        Self {
            inner: mimalloc::MiMalloc,
            counting: AtomicBool::new(false),
            live: AtomicIsize::new(0),
            peak: AtomicIsize::new(0),
        }
    }

    /// Runs `f` with counting on, and returns its result with the highest number of heap bytes
    /// live at once during it, above those live when it began.
    pub fn measure<R>(&self, f: impl FnOnce() -> R) -> (R, usize) {
        self.live.store(0, Ordering::Relaxed);
        self.peak.store(0, Ordering::Relaxed);
        self.counting.store(true, Ordering::SeqCst);
        let result = f();
        self.counting.store(false, Ordering::SeqCst);
        let peak = self.peak.load(Ordering::Relaxed);
        (result, usize::try_from(peak).unwrap_or(0))
    }

    fn grew(&self, by: usize) {
        if self.counting.load(Ordering::Relaxed) {
            let by = isize::try_from(by).unwrap_or(isize::MAX);
            let now = self
                .live
                .fetch_add(by, Ordering::Relaxed)
                .saturating_add(by);
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
    }

    fn shrank(&self, by: usize) {
        if self.counting.load(Ordering::Relaxed) {
            let by = isize::try_from(by).unwrap_or(isize::MAX);
            self.live.fetch_sub(by, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is forwarded to mimalloc unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.inner.alloc(layout) };
        if !p.is_null() {
            self.grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.inner.alloc_zeroed(layout) };
        if !p.is_null() {
            self.grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.inner.dealloc(ptr, layout) };
        self.shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                self.grew(new_size - layout.size());
            } else {
                self.shrank(layout.size() - new_size);
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use crate::GLOBAL;

    #[test]
    fn measures_the_high_water_mark_of_the_step_only() {
        let held = vec![0u8; 1 << 20];
        let ((), peak) = GLOBAL.measure(|| {
            let a = std::hint::black_box(vec![1u8; 3 << 20]);
            drop(a);
            let b = std::hint::black_box(vec![2u8; 2 << 20]);
            drop(b);
        });
        // The 3 MiB buffer is the peak; what was live before does not count.
        assert!((3 << 20..(3 << 20) + (64 << 10)).contains(&peak), "{peak}");
        drop(held);
        let ((), peak) = GLOBAL.measure(|| {});
        assert!(peak < 64 << 10, "an empty step peaked at {peak}");
    }
}
