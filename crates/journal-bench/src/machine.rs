//! What the machine charges for something the figures depend on but our code does not choose.
//!
//! ZSTD reads the CPU's features (three `cpuid` instructions) each time it creates a context,
//! and the parquet crate creates a compression and a decompression context for every
//! compressed column chunk it writes or reads. Under a hypervisor `cpuid` traps: a few hundred
//! nanoseconds on one host, several microseconds under nested virtualization. Ingest and
//! compaction figures from machines whose `cpuid` costs differ are not comparable.

/// Nanoseconds one `cpuid` instruction takes here (`None` off x86-64).
pub fn cpuid_ns() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::time::Instant;
        const CALLS: u32 = 2_000;
        let started = Instant::now();
        let mut seen = 0u32;
        for leaf in 0..CALLS {
            // Leaves 1 and 7, as ZSTD asks them.
            #[allow(unused_unsafe)]
            let r = unsafe { core::arch::x86_64::__cpuid_count(1 + 6 * (leaf % 2), 0) };
            seen ^= r.ebx;
        }
        std::hint::black_box(seen);
        Some(started.elapsed().as_secs_f64() * 1e9 / f64::from(CALLS))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}
