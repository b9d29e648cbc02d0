//! Peak-memory measurement of a span of work (Linux `/proc`), for the demos and benchmarks.

/// Measures how far the process's peak resident set grows over a span of work (Linux):
/// [`RssProbe::start`] hands freed heap memory back to the kernel (glibc's `malloc_trim`),
/// resets the high-water mark (`echo 5 > /proc/self/clear_refs`) and reads `VmRSS`;
/// [`RssProbe::increase`] reads `VmHWM` from `/proc/self/status`.
///
/// It measures the whole process (libtorch's working memory included, other threads' work
/// too); [`Stats::peak_stored_bytes`](pnode_runtime::checkpoint::Stats::peak_stored_bytes) is the exact checkpoint share.
#[derive(Debug, Clone, Copy)]
pub struct RssProbe {
    before: u64,
}

/// A field of `/proc/self/status` in bytes.
fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Returns the allocator's free memory to the kernel, so that a peak measured next is what
/// the work needs rather than less (freed memory kept resident from earlier work would be
/// reused unseen).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() {
    unsafe extern "C" {
        // glibc: `int malloc_trim(size_t pad)`; no preconditions.
        safe fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    malloc_trim(0);
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

impl RssProbe {
    /// Resets the peak and records the current resident set; `None` where the kernel does
    /// not offer this (not Linux, or a kernel before 4.0).
    pub fn start() -> Option<Self> {
        release_free_memory();
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
        Some(Self {
            before: proc_status_bytes("VmRSS")?,
        })
    }

    /// Peak resident set since [`RssProbe::start`] minus the resident set then, in bytes.
    pub fn increase(&self) -> Option<u64> {
        Some(proc_status_bytes("VmHWM")?.saturating_sub(self.before))
    }
}
