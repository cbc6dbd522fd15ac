//! Decoding product-quantizer codes: each row's sub-vectors copied out of one table of
//! every centroid, rows spread over the threads, and outputs larger than the last-level
//! cache written around it.

/// How decoded sub-vectors reach the output.
pub(crate) trait Store<T>: Sync {
    /// Writes `src` into `dst` (of the same length).
    fn put(&self, dst: &mut [T], src: &[T]);
    /// Called by each task once its rows are written.
    fn finish(&self) {}
}

/// Plain stores, through the cache.
pub(crate) struct Cached;

impl<T: Copy> Store<T> for Cached {
    #[inline(always)]
    fn put(&self, dst: &mut [T], src: &[T]) {
        dst.copy_from_slice(src);
    }
}

/// Non-temporal stores: a cached store first reads the line it writes, so an output too
/// large to stay in the cache costs its size twice in memory traffic; these write it once.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Streamed;

#[cfg(target_arch = "x86_64")]
impl Store<f32> for Streamed {
    #[inline(always)]
    fn put(&self, dst: &mut [f32], src: &[f32]) {
        use std::arch::x86_64::{_mm_loadu_ps, _mm_stream_ps};
        // The caller streams only 16-byte aligned rows of whole groups of four; anything
        // else (never expected) is copied plainly rather than faulting.
        if !dst.len().is_multiple_of(4) || !(dst.as_ptr() as usize).is_multiple_of(16) {
            dst.copy_from_slice(src);
            return;
        }
        for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
            // SAFETY: SSE is part of x86_64; `d` is four writable, 16-byte aligned floats
            // (checked above) and `s` four readable ones.
            unsafe { _mm_stream_ps(d.as_mut_ptr(), _mm_loadu_ps(s.as_ptr())) }
        }
    }

    fn finish(&self) {
        // Non-temporal stores are weakly ordered: fenced before the task reports done, so
        // whoever sees the task finished sees its rows.
        // SAFETY: SSE is part of x86_64.
        unsafe { std::arch::x86_64::_mm_sfence() }
    }
}

/// Outputs from this size up are streamed where the rows allow (larger than the
/// last-level cache of most machines: smaller ones are likely read again soon, from it).
#[cfg(target_arch = "x86_64")]
const STREAM_BYTES: usize = 64 << 20;

/// Whether decoding into `out` with sub-vectors of `dsub` floats streams.
#[cfg(target_arch = "x86_64")]
pub(crate) fn streams(out: &[f32], dsub: usize) -> bool {
    size_of_val(out) >= STREAM_BYTES
        && dsub.is_multiple_of(4)
        && (out.as_ptr() as usize).is_multiple_of(16)
}

/// The shape of a product quantizer's table: `m` sub-spaces of `ksub` centroids of
/// `dsub` values.
#[derive(Clone, Copy)]
pub(crate) struct Shape {
    pub m: usize,
    pub ksub: usize,
    pub dsub: usize,
}

/// Row i of `out` is the concatenation, over the sub-spaces j, of centroid `codes[i m + j]`
/// of sub-space j in `table` (`m x ksub x dsub`; codes checked below `ksub`).
pub(crate) fn decode_rows<C, T, S>(shape: Shape, codes: &[C], table: &[T], out: &mut [T], store: &S)
where
    C: Copy + Into<usize> + Sync,
    T: Copy + Send + Sync,
    S: Store<T>,
{
    // The common sub-space widths get copies of a size known when compiled (a call to
    // memmove per sub-vector cost more than the copy).
    macro_rules! at_width {
        ($($w:literal)*) => {
            match shape.dsub {
                $($w => copy_rows::<C, T, S, $w>(shape, codes, table, out, store),)*
                _ => copy_rows::<C, T, S, 0>(shape, codes, table, out, store),
            }
        };
    }
    at_width!(1 2 4 8 16 32)
}

/// [`decode_rows`] with `W`, the sub-space width when known at compile time, else 0.
fn copy_rows<C, T, S, const W: usize>(
    shape: Shape,
    codes: &[C],
    table: &[T],
    out: &mut [T],
    store: &S,
) where
    C: Copy + Into<usize> + Sync,
    T: Copy + Send + Sync,
    S: Store<T>,
{
    use rayon::prelude::*;
    // Rows per task: enough work to cover the task's cost.
    const ROWS: usize = 1024;
    // Outputs below this are copied on the calling thread: a batch of a few thousand rows
    // took 0.4 ms spread over the pool against faiss's 0.18 ms, most of it waking the pool's
    // threads.
    const SEQUENTIAL_BYTES: usize = 4 << 20;
    let Shape { m, ksub, dsub } = shape;
    assert!(W == 0 || W == dsub);
    let dim = m * dsub;
    let copy_block = |(block, block_codes): (&mut [T], &[C])| {
        // A width known when compiled (taken here: a captured one would be a value read at
        // run time) makes each copy a few moves; indexing the row by j, not through chunks
        // of it, keeps a division per row out of the loop.
        let w = if W == 0 { dsub } else { W };
        for (row, row_codes) in block.chunks_exact_mut(dim).zip(block_codes.chunks_exact(m)) {
            for (j, &code) in row_codes.iter().enumerate() {
                let at = (j * ksub + code.into()) * w;
                store.put(&mut row[j * w..(j + 1) * w], &table[at..at + w]);
            }
        }
        store.finish();
    };
    if size_of_val(out) < SEQUENTIAL_BYTES {
        // Waking the pool's threads from outside it costs more than such a copy.
        out.chunks_mut(ROWS * dim)
            .zip(codes.chunks(ROWS * m))
            .for_each(copy_block);
    } else {
        out.par_chunks_mut(ROWS * dim)
            .zip(codes.par_chunks(ROWS * m))
            .for_each(copy_block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// A buffer of `len` floats starting `skew` floats past a 16-byte boundary.
    fn buffer(len: usize, skew: usize) -> (Vec<f32>, usize) {
        let v = vec![f32::NAN; len + 4 + skew];
        let start = (4 - (v.as_ptr() as usize / 4) % 4) % 4 + skew;
        (v, start)
    }

    /// Every store, width, code type and alignment writes the rows a plain loop writes, on
    /// the calling thread and spread over the pool (past 4 MiB); odd row counts leave a
    /// partial last block.
    #[test]
    fn every_store_writes_the_plain_loops_rows() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for (m, ksub, dsub, n) in [
            (3, 16, 4, 2501),
            (5, 256, 8, 1),
            (2, 300, 12, 999),
            (4, 7, 32, 9_001),
            (3, 16, 6, 70_001),
            (16, 256, 8, 8_193),
        ] {
            let shape = Shape { m, ksub, dsub };
            let table: Vec<f32> = (0..m * ksub * dsub).map(|_| rng.random()).collect();
            let codes: Vec<u16> = (0..n * m)
                .map(|_| rng.random_range(0..ksub as u16))
                .collect();
            let mut want = vec![0.0f32; n * m * dsub];
            for (i, row) in want.chunks_exact_mut(m * dsub).enumerate() {
                for j in 0..m {
                    let at = (j * ksub + codes[i * m + j] as usize) * dsub;
                    row[j * dsub..(j + 1) * dsub].copy_from_slice(&table[at..at + dsub]);
                }
            }
            for skew in [0, 1] {
                let (mut v, at) = buffer(want.len(), skew);
                decode_rows(shape, &codes, &table, &mut v[at..at + want.len()], &Cached);
                assert_eq!(v[at..at + want.len()], want, "cached {m} {ksub} {dsub} {n}");
                #[cfg(target_arch = "x86_64")]
                {
                    let (mut v, at) = buffer(want.len(), skew);
                    decode_rows(
                        shape,
                        &codes,
                        &table,
                        &mut v[at..at + want.len()],
                        &Streamed,
                    );
                    assert_eq!(
                        v[at..at + want.len()],
                        want,
                        "streamed {m} {ksub} {dsub} {n}"
                    );
                }
            }
            if ksub <= 256 {
                let small: Vec<u8> = codes.iter().map(|&c| c as u8).collect();
                let mut out = vec![f32::NAN; want.len()];
                decode_rows(shape, &small, &table, &mut out, &Cached);
                assert_eq!(out, want, "u8 codes {m} {ksub} {dsub} {n}");
            }
        }
    }

    /// Only large outputs stream, and only rows of whole, aligned groups of four floats.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn only_large_aligned_outputs_of_fours_stream() {
        let len = STREAM_BYTES / 4;
        let (v, at) = buffer(len, 0);
        assert!(streams(&v[at..at + len], 8));
        assert!(streams(&v[at..at + len], 4));
        assert!(!streams(&v[at..at + len], 6), "sub-vectors of 6 floats");
        assert!(!streams(&v[at + 1..at + len], 8), "unaligned");
        assert!(!streams(&v[at..at + len - 4], 8), "smaller");
    }
}
