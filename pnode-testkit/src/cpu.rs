//! The CPU time of the calling thread, for measurements on a shared machine: unlike wall-clock
//! time it leaves out the time the thread waited for a core.

use std::time::Duration;

/// CPU time this thread has run: `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` (POSIX; Linux keeps
/// it to the nanosecond and brings the running thread's time up to date on every call). `None`
/// off 64-bit Linux or if the clock is unavailable.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[allow(unsafe_code)]
pub fn thread_cpu_time() -> Option<Duration> {
    /// `struct timespec` of 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `struct timespec`; the clock id is Linux's constant.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// No thread CPU clock off 64-bit Linux.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
pub fn thread_cpu_time() -> Option<Duration> {
    None
}

#[cfg(test)]
mod tests {
    use super::thread_cpu_time;

    #[test]
    fn the_thread_clock_advances_with_work() {
        let Some(start) = thread_cpu_time() else {
            panic!("no thread CPU clock on this platform");
        };
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_time().unwrap() > start);
    }
}
