//! Large buffers on transparent huge pages where Linux offers them (`madvise(MADV_HUGEPAGE)`
//! before their first touch, as NumPy does for its arrays): one page fault per 2 MiB instead
//! of one per 4 KiB. Filling fresh pages can cost more than the work that fills them: on the
//! development VM, reading a 512 MB `.npy` file from the page cache took 0.16 s on 4 KiB
//! pages and 0.05–0.07 s on huge pages. Elsewhere, and where the system refuses, nothing
//! changes. Only buffers filled once, front to back, are advised: a `.npy` file's array, and
//! a fit's rows converted into its frame (at n = 5·10⁴, d = 768 on a Zen 4 VM, 48 ms on 4 KiB
//! pages, 18–43 ms on huge pages). The 1-D index's sorted blocks and prefix sums on huge
//! pages made its set-up no faster here and its iterations erratic (up to six times longer),
//! so they stay on ordinary pages.

/// A huge page, and the smallest buffer worth advising (NumPy's threshold is 4 MiB too).
const HUGE: usize = 2 << 20;
const FROM: usize = 4 << 20;

/// Asks for huge pages under the whole 2 MiB pages within `len` bytes from `ptr`.
fn advise_bytes(ptr: *const u8, len: usize) {
    if len < FROM {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let start = (ptr as usize).next_multiple_of(HUGE);
        let end = (ptr as usize + len) & !(HUGE - 1);
        if end > start {
            // SAFETY: the range lies within memory this process owns; the advice changes
            // how its pages are backed, never their contents. A refusal (huge pages
            // disabled) leaves the buffer as it was, so the result is not looked at.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, HUGE);
}

/// `n` zeros, advised. The zeroed allocation of a type aligned to at most 16 bytes is the
/// system's `calloc`, whose large blocks are fresh pages not yet touched, so the advice
/// reaches them before their first fault (a more aligned type is zeroed by a `memset`
/// first, which the advice comes too late for).
pub(crate) fn zeroed<T: bytemuck::Zeroable>(n: usize) -> Vec<T> {
    let v: Vec<T> = bytemuck::zeroed_vec(n);
    advise_bytes(v.as_ptr().cast(), std::mem::size_of_val(v.as_slice()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advised_buffers_are_zeros() {
        for n in [0, 1, FROM / 8 - 1, FROM / 8 + 3, 3 * HUGE / 8 + 5] {
            let z: Vec<f64> = zeroed(n);
            assert_eq!(z.len(), n);
            assert!(z.iter().all(|&v| v == 0.0));
        }
    }
}
