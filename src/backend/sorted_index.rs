//! Sorted samples with a cache-resident index over them, searched for many keys at once.
//!
//! A 1-D Lloyd iteration asks, for each of the N − 1 midpoints between sorted centroids, how
//! many samples lie at or below it. One binary search after another over a sorted array of
//! 4–800 MB is latency-bound: each of its 20–27 probes waits on a cache miss that the next
//! one depends on. Here the samples are the leaves of a static B+-tree of [`FANOUT`]-wide
//! blocks (each block of a layer above holds the first value of [`FANOUT`] blocks below, an
//! index of 1/7 of the samples' size whose top layers stay in cache), so that a search is
//! log₈ M block counts (7 at M = 10⁶), each one cache line and two vector compares. All the searches go down
//! in lock-step, one layer at a time: a layer's loads are independent of each other, so their
//! cache misses overlap instead of queueing.

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;

/// Values in a block: 64 bytes, one cache line. (Sixteen, two lines a block and two layers
/// fewer, measured the same.)
const FANOUT: usize = 8;

/// [`FANOUT`] sorted values, aligned so that a block is a whole cache line.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
struct Block([f64; FANOUT]);

impl Block {
    /// Values at or below `key` (they come first: a block is sorted).
    #[inline(always)]
    fn count_at_or_below(&self, key: f64) -> usize {
        self.0.iter().map(|&x| usize::from(x <= key)).sum()
    }
}

/// Sorted finite samples, the leaves of a static B+-tree over them.
pub(crate) struct SortedIndex {
    /// `layers[0]`: the samples, sorted, in blocks, the last padded with +∞ (above every
    /// key, so never counted). `layers[t + 1]` holds the first value of each block of
    /// `layers[t]`, padded the same way; the last layer is one block.
    layers: Vec<Vec<Block>>,
    len: usize,
}

impl SortedIndex {
    /// Indexes sorted, finite samples (at least one).
    pub(crate) fn new(sorted: Vec<f64>) -> Self {
        debug_assert!(!sorted.is_empty() && sorted.is_sorted_by(|a, b| a <= b));
        let len = sorted.len();
        let mut layers = vec![leaf_blocks(&sorted)];
        drop(sorted);
        while layers[layers.len() - 1].len() > 1 {
            let below = &layers[layers.len() - 1];
            let firsts = below.iter().map(|b| b.0[0]);
            let layer = blocks(firsts, below.len());
            layers.push(layer);
        }
        SortedIndex { layers, len }
    }

    /// The samples, sorted.
    pub(crate) fn samples(&self) -> &[f64] {
        &bytemuck::cast_slice::<Block, f64>(&self.layers[0])[..self.len]
    }

    /// `out[i]` = the number of samples at or below `mids[i]` (the first index whose sample is
    /// above it), for every `i`; `mids` need not be sorted. `found` is called with each count
    /// as soon as it is known (see [`Searches::counts`]).
    pub(crate) fn counts_at_or_below(
        &self,
        mids: &[f64],
        out: &mut [usize],
        found: impl Fn(usize),
    ) {
        assert_eq!(mids.len(), out.len());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            // SAFETY: the feature it is compiled for was just detected.
            unsafe { descend_avx2(&self.layers, mids, out, found) };
            return;
        }
        descend(&self.layers, mids, out, Block::count_at_or_below, found);
    }
}

/// The searches of a fit's iterations, each key starting from its last count. While most
/// counts stay within a block of their last (late in a fit, most boundaries move by a few
/// samples an iteration or not at all), a count that lies in the leaf block of its last, or
/// in a block beside it, is read from those blocks alone (the lines the last search ended
/// on, still in cache), and only the others go down the tree. While many move further
/// (early in a fit, or with few cells over many samples) every key goes straight down the
/// tree: one key left for it costs most of the tree's time, as its layers' misses come one
/// after another.
#[derive(Debug, Default)]
pub(crate) struct Searches {
    /// Going straight down the tree.
    tree: bool,
    /// Buffers kept between iterations: the last counts (going down the tree, to see how
    /// far they moved), or the keys left for the tree, their indices and counts.
    last: Vec<usize>,
    far: Vec<usize>,
    keys: Vec<f64>,
    counts: Vec<usize>,
}

impl Searches {
    /// `out[i]` = the count of `sorted` at or below `mids[i]`, where `out[i]` holds its last
    /// count (or any guess). `found` is called with each count once, as soon as it is
    /// known: the 1-D backend prefetches its prefix sums there, so that their misses overlap
    /// the searches still going on instead of following all of them (at N = 500, M = 10⁶,
    /// a tenth of the iteration).
    pub(crate) fn counts(
        &mut self,
        sorted: &SortedIndex,
        mids: &[f64],
        out: &mut [usize],
        found: impl Fn(usize) + Copy,
    ) {
        assert_eq!(mids.len(), out.len());
        if self.tree {
            self.last.clear();
            self.last.extend_from_slice(out);
            sorted.counts_at_or_below(mids, out, found);
            let near = out
                .iter()
                .zip(&self.last)
                .filter(|&(&now, &then)| now.abs_diff(then) < FANOUT)
                .count();
            self.tree = 8 * near < 7 * out.len();
        } else {
            let far = self.near(sorted, mids, out, found);
            self.tree = 8 * far > out.len();
        }
    }

    /// The counts found beside their guesses, then the others down the tree; how many went
    /// down the tree.
    fn near(
        &mut self,
        sorted: &SortedIndex,
        mids: &[f64],
        out: &mut [usize],
        found: impl Fn(usize) + Copy,
    ) -> usize {
        self.far.clear();
        settle_detected(&sorted.layers[0], mids, out, &mut self.far, found);
        if !self.far.is_empty() {
            self.keys.clear();
            self.keys.extend(self.far.iter().map(|&i| mids[i]));
            self.counts.clear();
            self.counts.resize(self.far.len(), 0);
            sorted.counts_at_or_below(&self.keys, &mut self.counts, found);
            for (&i, &c) in self.far.iter().zip(&self.counts) {
                out[i] = c;
            }
        }
        self.far.len()
    }
}

/// The counts of [`Searches`] found beside their guesses, in `out`; the indices of the keys
/// left for the tree in `far`. `count` is [`Block::count_at_or_below`].
#[inline(always)]
fn settle(
    leaves: &[Block],
    mids: &[f64],
    out: &mut [usize],
    far: &mut Vec<usize>,
    count: impl Fn(&Block, f64) -> usize,
    found: impl Fn(usize),
) {
    for (i, (o, &key)) in out.iter_mut().zip(mids).enumerate() {
        // The block holding the guess's last sample at or below the key.
        let b = (o.saturating_sub(1) / FANOUT).min(leaves.len() - 1);
        let c = count(&leaves[b], key);
        // A block is sorted: a count strictly inside it places the key between its first
        // and last values, so every sample before it is at or below the key and every one
        // after above; a full or empty count says only which side the key lies on.
        *o = if 0 < c && c < FANOUT {
            b * FANOUT + c
        } else if c == FANOUT && b + 1 < leaves.len() {
            match count(&leaves[b + 1], key) {
                n if n < FANOUT => (b + 1) * FANOUT + n,
                _ => {
                    far.push(i);
                    continue;
                }
            }
        } else if c == 0 && b > 0 {
            match count(&leaves[b - 1], key) {
                n if n > 0 => (b - 1) * FANOUT + n,
                _ => {
                    far.push(i);
                    continue;
                }
            }
        } else if c == 0 {
            // Below the first sample.
            0
        } else {
            // At or above every value of the last block, padding included: the key is at
            // or above the last sample (+∞ pads are above every finite key).
            b * FANOUT + c
        };
        found(*o);
    }
}

/// [`settle`] with the block count this CPU runs fastest.
fn settle_detected(
    leaves: &[Block],
    mids: &[f64],
    out: &mut [usize],
    far: &mut Vec<usize>,
    found: impl Fn(usize),
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt")
    {
        // SAFETY: the feature it is compiled for was just detected.
        unsafe { settle_avx2(leaves, mids, out, far, found) };
        return;
    }
    settle(leaves, mids, out, far, Block::count_at_or_below, found);
}

/// [`settle`] counting a block with two vector compares and a population count.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn settle_avx2(
    leaves: &[Block],
    mids: &[f64],
    out: &mut [usize],
    far: &mut Vec<usize>,
    found: impl Fn(usize),
) {
    settle(
        leaves,
        mids,
        out,
        far,
        |block, key| count_avx2(block, key),
        found,
    )
}

/// Layers of at most this many blocks (128 KiB) stay in cache between iterations: their
/// blocks are not prefetched.
const CACHED_BLOCKS: usize = 2048;

/// The searches of [`SortedIndex::counts_at_or_below`], all keys one layer at a time, with
/// `count` for [`Block::count_at_or_below`].
#[inline(always)]
fn descend(
    layers: &[Vec<Block>],
    mids: &[f64],
    out: &mut [usize],
    count: impl Fn(&Block, f64) -> usize,
    found: impl Fn(usize),
) {
    let top = layers.len() - 1;
    for (o, &mid) in out.iter_mut().zip(mids) {
        *o = count(&layers[top][0], mid);
    }
    if top == 0 {
        out.iter().for_each(|&o| found(o));
    }
    for (depth, layer) in layers[..top].iter().enumerate().rev() {
        if layer.len() > CACHED_BLOCKS {
            for &o in out.iter() {
                prefetch(&layer[o.saturating_sub(1)]);
            }
        }
        // `c` values of the layer above at or below the key: they are the first values of
        // blocks 0..c here, and block c's first value is above it, so the key's count here
        // is that of the blocks before c − 1 plus what block c − 1 holds at or below it.
        // With c = 0 every value is above the key: block 0 then counts none.
        for (o, &mid) in out.iter_mut().zip(mids) {
            let block = o.saturating_sub(1);
            *o = block * FANOUT + count(&layer[block], mid);
            if depth == 0 {
                found(*o);
            }
        }
    }
}

/// [`descend`] counting a block with two vector compares and a population count.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn descend_avx2(
    layers: &[Vec<Block>],
    mids: &[f64],
    out: &mut [usize],
    found: impl Fn(usize),
) {
    descend(
        layers,
        mids,
        out,
        |block, key| count_avx2(block, key),
        found,
    );
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn count_avx2(block: &Block, key: f64) -> usize {
    use std::arch::x86_64::{_CMP_LE_OQ, _mm256_cmp_pd, _mm256_movemask_pd, _mm256_set1_pd};
    let [lo, hi]: &[std::arch::x86_64::__m256d; 2] = bytemuck::cast_ref(&block.0);
    let key = _mm256_set1_pd(key);
    let below = |v| _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LE_OQ>(v, key));
    (below(*lo) | below(*hi) << 4).count_ones() as usize
}

/// Asks for the cache lines of `value` without waiting for them: a loop of prefetches ahead
/// of a loop of work keeps many misses in flight, where the work's own instructions would
/// fill the out-of-order window after a few.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = std::ptr::from_ref(value).cast::<i8>();
        for offset in (0..size_of::<T>()).step_by(64) {
            // SAFETY: SSE is part of every x86-64 target, and a prefetch reads nothing and
            // never faults; the address lies inside `value`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// [`blocks`] of all the samples, on every thread (each writes the blocks it fills first,
/// so the threads share the kernel's zeroing of the fresh pages).
fn leaf_blocks(sorted: &[f64]) -> Vec<Block> {
    const CHUNK: usize = 1 << 13;
    let len = sorted.len().div_ceil(FANOUT);
    let mut out: Vec<Block> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(CHUNK)
        .zip(sorted.par_chunks(CHUNK * FANOUT))
        .for_each(|(out, values)| {
            for (block, values) in out.iter_mut().zip(values.chunks(FANOUT)) {
                let mut b = Block([f64::INFINITY; FANOUT]);
                b.0[..values.len()].copy_from_slice(values);
                block.write(b);
            }
        });
    // SAFETY: `sorted` has a chunk of values for each chunk of blocks and a slice of at
    // most `FANOUT` values for each block, so every one of the `len` blocks was written.
    unsafe { out.set_len(len) };
    out
}

/// `len` sorted values in blocks, the last padded with +∞.
fn blocks(values: impl Iterator<Item = f64>, len: usize) -> Vec<Block> {
    let mut out = vec![Block([f64::INFINITY; FANOUT]); len.div_ceil(FANOUT)];
    for (slot, v) in bytemuck::cast_slice_mut::<Block, f64>(&mut out)
        .iter_mut()
        .zip(values)
    {
        *slot = v;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn sorted(mut v: Vec<usize>) -> Vec<usize> {
        v.sort_unstable();
        v
    }

    fn brute(sorted: &[f64], mid: f64) -> usize {
        sorted.iter().filter(|&&x| x <= mid).count()
    }

    /// From guesses exact, near, far and out of range, in both directions, the counts are
    /// those of brute force, beside the guesses and down the tree alike; the searches turn
    /// to the tree when many counts move far, and back when few do.
    /// Over several of the threads' chunks and a partial last block: the leaves are the
    /// samples in order, then +∞.
    #[test]
    fn leaves_hold_the_samples_then_infinity() {
        for len in [1usize, 8, 65_536, 65_537, 3 * 65_536 + 5] {
            let s: Vec<f64> = (0..len).map(|i| i as f64 - 7.5).collect();
            let index = SortedIndex::new(s.clone());
            assert_eq!(index.samples(), &s[..]);
            let leaves: &[f64] = bytemuck::cast_slice(&index.layers[0]);
            assert_eq!(leaves.len(), len.div_ceil(FANOUT) * FANOUT);
            assert!(
                leaves[len..].iter().all(|&v| v == f64::INFINITY),
                "len {len}"
            );
        }
    }

    #[test]
    fn counts_from_guesses_equal_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for len in [1usize, 2, 9, 64, 65, 130, 1000, 65_537] {
            let mut s: Vec<f64> = (0..len)
                .map(|_| f64::from(rng.random_range(-200i32..200)) / 8.0)
                .collect();
            s.sort_by(f64::total_cmp);
            let idx = SortedIndex::new(s.clone());
            let mids: Vec<f64> = (0..200)
                .map(|i| match i % 3 {
                    0 => s[rng.random_range(0..len)],
                    1 => rng.random_range(-30.0..30.0),
                    _ => f64::from(rng.random_range(-300i32..300)) / 8.0,
                })
                .collect();
            let want: Vec<usize> = mids.iter().map(|&m| brute(&s, m)).collect();
            let mut searches = Searches::default();
            for spread in [0i64, 1, 2, 5, 7, 8, 9, 16, 100_000, 3, 0, 0] {
                let mut out: Vec<usize> = want
                    .iter()
                    .map(|&w| {
                        let off = if spread == 0 {
                            0
                        } else {
                            rng.random_range(-spread..=spread)
                        };
                        (w as i64 + off).clamp(0, len as i64 + 5) as usize
                    })
                    .collect();
                let tree = searches.tree;
                let found = std::cell::RefCell::new(Vec::new());
                searches.counts(&idx, &mids, &mut out, |c| found.borrow_mut().push(c));
                assert_eq!(out, want, "len {len} spread {spread} tree {tree}");
                assert_eq!(
                    sorted(found.into_inner()),
                    sorted(want.clone()),
                    "found, {tree}"
                );
            }
            if len >= 1000 {
                // Guesses 10⁵ off sent it down the tree; exact ones brought it back.
                assert!(!searches.tree, "len {len}");
            }
        }
        let idx = SortedIndex::new(vec![0.0; 1000]);
        let mut searches = Searches::default();
        let mut out = vec![0; 10];
        searches.counts(&idx, &[1.0; 10], &mut out, |_| ());
        assert!(searches.tree, "every count moved 1000 samples");
        assert_eq!(out, [1000; 10]);
    }

    /// Every length around the stride and the batch, ties, keys below, between and above
    /// the samples, and keys exactly on samples.
    #[test]
    fn counts_equal_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for len in [
            1usize, 2, 3, 7, 8, 9, 63, 64, 65, 511, 512, 513, 4097, 65_537,
        ] {
            let mut s: Vec<f64> = (0..len)
                .map(|_| f64::from(rng.random_range(-20i32..20)) / 8.0)
                .collect();
            s.sort_by(f64::total_cmp);
            let idx = SortedIndex::new(s.clone());
            assert_eq!(idx.samples(), &s[..]);
            for nkeys in [1usize, 15, 16, 17, 40] {
                let mids: Vec<f64> = (0..nkeys)
                    .map(|i| match i % 3 {
                        0 => s[rng.random_range(0..len)],
                        1 => rng.random_range(-3.0..3.0),
                        _ => f64::from(rng.random_range(-30i32..30)) / 4.0,
                    })
                    .collect();
                let mut out = vec![0; nkeys];
                let found = std::cell::RefCell::new(Vec::new());
                idx.counts_at_or_below(&mids, &mut out, |c| found.borrow_mut().push(c));
                assert_eq!(
                    sorted(found.into_inner()),
                    sorted(out.clone()),
                    "found, len {len}"
                );
                for (m, o) in mids.iter().zip(&out) {
                    assert_eq!(*o, brute(&s, *m), "len {len} mid {m}");
                }
            }
        }
    }
}
