//! Each 1-D cell's squared error, kept between iterations. Late in a fit most boundaries do
//! not move (at N = 500, M = 2·10⁵ from the quantiles, nine in ten from the thirtieth
//! iteration on), and evaluating every cell's error again in double-double arithmetic was a
//! quarter of an iteration. A cell's sums are a function of its two boundaries alone
//! (differences of fixed prefix sums), and its error a function of those sums and its
//! centroid: an error kept for the same boundaries and centroid is the same bits as one
//! evaluated again.
//!
//! (The prefix sums at the boundaries are not kept: those of boundaries that did not move
//! are read from lines the last iteration brought into cache, so keeping them saved nothing
//! measurable.)

use super::interval_sums::IntervalSums;

/// How many flags are set (a sum the compiler vectorises).
fn count(flags: &[u8]) -> usize {
    flags.iter().map(|&f| usize::from(f)).sum()
}

/// The indices of the non-zero flags of `flags` into `out`, eight flags a test: late in a
/// fit most are zero, and which are not is no pattern a branch predictor learns.
fn set_indices(flags: &[u8], out: &mut Vec<usize>) {
    out.clear();
    for (w, chunk) in flags.chunks(8).enumerate() {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        let mut word = u64::from_le_bytes(bytes);
        while word != 0 {
            let byte = word.trailing_zeros() / 8;
            out.push(w * 8 + byte as usize);
            word &= !(0xff << (8 * byte));
        }
    }
}

/// Each cell's squared error about its centroid, kept with the boundaries and the centroid
/// it was evaluated for.
#[derive(Debug, Default)]
pub(crate) struct CellErrors {
    /// The bounds and the centroids' bits of the last call (cell `j`'s key is
    /// `bounds[j]`, `bounds[j + 1]` and `centroid[j]`).
    bounds: Vec<usize>,
    centroid: Vec<u64>,
    values: Vec<f64>,
    /// Buffers kept between calls: which cells changed, their indices, their sums and
    /// centroids.
    changed: Vec<u8>,
    dirty: Vec<usize>,
    subset: IntervalSums,
    subset_centroids: Vec<f64>,
}

impl CellErrors {
    /// The errors of `sums` (cell `j` holds the samples `bounds[j]..bounds[j + 1]`) about
    /// `centroids`: [`IntervalSums::errors`], evaluated only for the cells whose bounds or
    /// centroid changed since the last call.
    pub(crate) fn errors(
        &mut self,
        bounds: &[usize],
        sums: &IntervalSums,
        centroids: &[f64],
    ) -> &[f64] {
        let k = centroids.len();
        debug_assert!(bounds.len() == k + 1 && sums.k() == k);
        if self.values.len() != k {
            self.values = sums.errors(centroids);
            self.bounds = bounds.to_vec();
            self.centroid = centroids.iter().map(|c| c.to_bits()).collect();
            return &self.values;
        }
        // Whether each cell changed, in a loop of zipped slices that the compiler vectorises,
        // then the indices of those that did, eight cells a test.
        self.changed.resize(k, 0);
        let kept = (self.bounds[..k].iter().zip(&self.bounds[1..])).zip(&mut self.centroid);
        let now = (bounds[..k].iter().zip(&bounds[1..])).zip(centroids);
        for ((changed, ((low, high), centroid)), ((l, h), c)) in
            self.changed.iter_mut().zip(kept).zip(now)
        {
            let c = c.to_bits();
            *changed = u8::from((l != low) | (h != high) | (c != *centroid));
            *centroid = c;
        }
        self.bounds.copy_from_slice(bounds);
        // Where more than a quarter changed (early in a fit, or cells of many samples whose
        // boundaries all move), evaluating all costs less than gathering and scattering them.
        if 4 * count(&self.changed) > k {
            self.values = sums.errors(centroids);
            return &self.values;
        }
        set_indices(&self.changed, &mut self.dirty);
        if self.dirty.is_empty() {
            return &self.values;
        }
        // The errors read the counts, sums and squares alone.
        let s = &mut self.subset;
        s.counts.clear();
        s.sums.clear();
        s.squares.clear();
        self.subset_centroids.clear();
        for &j in &self.dirty {
            s.counts.push(sums.counts[j]);
            s.sums.push(sums.sums[j]);
            s.squares.push(sums.squares[j]);
            self.subset_centroids.push(centroids[j]);
        }
        let errors = s.errors(&self.subset_centroids);
        for (&j, e) in self.dirty.iter().zip(errors) {
            self.values[j] = e;
        }
        &self.values
    }

    /// Forgets every error (the number of cells changes, or the samples do).
    pub(crate) fn clear(&mut self) {
        self.values.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cell_sums::fixed;
    use crate::backend::interval_sums::fixed_square;

    /// The set flags' indices, in order, at every length around a word of eight.
    #[test]
    fn set_indices_are_the_non_zero_flags() {
        let mut next = crate::backend::rank::xorshift(5);
        let mut out = Vec::new();
        for len in [0, 1, 7, 8, 9, 16, 23, 500] {
            for density in [0, 1, 3, 8] {
                let flags: Vec<u8> = (0..len).map(|_| u8::from(next() % 8 < density)).collect();
                set_indices(&flags, &mut out);
                let want: Vec<usize> = (0..len).filter(|&i| flags[i] != 0).collect();
                assert_eq!(out, want, "length {len}, density {density}/8");
            }
        }
    }

    /// Kept errors equal errors evaluated afresh, to the bit, while bounds and centroids
    /// change for a few cells, for most, or for none, and when the cells change in number.
    #[test]
    fn kept_errors_are_fresh_errors() {
        let mut next = crate::backend::rank::xorshift(11);
        let mut unit = move || (next() >> 11) as f64 / (1u64 << 53) as f64;
        let mut samples: Vec<f64> = (0..5000).map(|_| 2.0 * unit() - 1.0).collect();
        samples.sort_by(f64::total_cmp);
        let mut kept = CellErrors::default();
        for (round, k) in [(0, 40usize), (1, 40), (2, 40), (3, 40), (4, 41), (5, 41)] {
            for change in [0.0, 0.05, 0.9] {
                let mut bounds: Vec<usize> = (0..=k).map(|i| i * samples.len() / k).collect();
                let mut centroids: Vec<f64> = (0..k)
                    .map(|j| samples[(bounds[j] + bounds[j + 1]) / 2])
                    .collect();
                for b in &mut bounds[1..k] {
                    if unit() < change {
                        *b += (round % 3) + 1;
                    }
                }
                for c in centroids.iter_mut() {
                    if unit() < change {
                        *c += 1e-3;
                    }
                }
                let mut sums = IntervalSums::zeros(k);
                for j in 0..k {
                    let cell = &samples[bounds[j]..bounds[j + 1]];
                    sums.counts[j] = cell.len() as u64;
                    sums.sums[j] = cell.iter().map(|&x| fixed(x)).sum();
                    sums.squares[j] = cell.iter().map(|&x| fixed_square(x)).sum();
                }
                let want: Vec<u64> = sums
                    .errors(&centroids)
                    .iter()
                    .map(|e| e.to_bits())
                    .collect();
                let got: Vec<u64> = kept
                    .errors(&bounds, &sums, &centroids)
                    .iter()
                    .map(|e| e.to_bits())
                    .collect();
                assert_eq!(got, want, "round {round}, change {change}");
            }
        }
    }
}
