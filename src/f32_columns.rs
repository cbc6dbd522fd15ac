//! The exact column sums and the bounds of f32 rows, at a few vector operations a value:
//! the [`crate::frame::Extent`] of f32 data, which every fit in memory computes before its
//! first iteration (where the f64 path of [`crate::exact_sum::Buckets`] took most of a
//! fit's set-up: 3–6 ns a value).
//!
//! An f32 is m · 2^(e − 150), with m < 2²⁴ and e its biased exponent (1 for subnormals).
//! Each column keeps a reference exponent r, the largest e it has seen, and an i64 that
//! counts in units of 2^(r − 181): a value with r − e ≤ 31 adds m · 2^(31 − (r − e)) < 2⁵⁵
//! exactly, so 128 rows fit before the i64 is moved into the column's
//! [`ExactSum`]. A value below that (2³¹ times smaller than the column's largest, or more)
//! is added to the [`ExactSum`] directly. A larger exponent moves the column's i64 into its
//! sum first. Every value is added exactly, so the sums are those of
//! [`ExactSum::add`] value by value, whatever the order and the grouping.

use crate::exact_sum::ExactSum;

/// Rows added between two moves of the i64 counts into the exact sums: 2⁷ terms below 2⁵⁵.
const ROWS_PER_DRAIN: u32 = 128;
/// The most the exponent of a value added to a count may lie below the column's reference.
const SPAN: i32 = 31;
/// The unit of a count is 2^(r − UNIT), r its column's reference exponent: the f32 unit
/// 2^(e − 150) shifted left by [`SPAN`].
const UNIT: i64 = 150 + SPAN as i64;

/// The running sums and bounds of the columns of f32 rows.
pub(crate) struct F32Columns {
    reference: Vec<i32>,
    counts: Vec<i64>,
    rows: u32,
    /// The least and greatest value of each column.
    pub(crate) lo: Vec<f32>,
    pub(crate) hi: Vec<f32>,
}

/// The biased exponent of `bits` as its significand's scale uses it (1 for subnormals).
#[inline(always)]
fn exponent(bits: u32) -> i32 {
    (((bits >> 23) & 0xff) as i32).max(1)
}

impl F32Columns {
    pub(crate) fn new(dim: usize) -> Self {
        F32Columns {
            reference: vec![1; dim],
            counts: vec![0; dim],
            rows: 0,
            lo: vec![f32::INFINITY; dim],
            hi: vec![f32::NEG_INFINITY; dim],
        }
    }

    /// Adds the finite rows `rows` (row-major, this many columns) to `sums`, one
    /// [`ExactSum`] a column; [`F32Columns::finish`] adds what is still counted.
    pub(crate) fn add_rows(&mut self, rows: &[f32], sums: &mut [ExactSum]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the feature it is compiled for was just detected.
                unsafe { self.add_rows_avx512(rows, sums) };
                return;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the feature it is compiled for was just detected.
                unsafe { self.add_rows_avx2(rows, sums) };
                return;
            }
        }
        self.add_rows_of(rows, sums);
    }

    /// [`F32Columns::add_rows`] eight 64-bit counts at a time.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn add_rows_avx512(&mut self, rows: &[f32], sums: &mut [ExactSum]) {
        self.add_rows_of(rows, sums);
    }

    /// [`F32Columns::add_rows`] with AVX2's variable 64-bit shifts.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn add_rows_avx2(&mut self, rows: &[f32], sums: &mut [ExactSum]) {
        self.add_rows_of(rows, sums);
    }

    #[inline(always)]
    fn add_rows_of(&mut self, rows: &[f32], sums: &mut [ExactSum]) {
        let dim = self.counts.len();
        debug_assert_eq!(sums.len(), dim);
        for row in rows.chunks_exact(dim) {
            // A new largest exponent rescales its column: rare after the first rows.
            let mut grows = false;
            for (&r, &v) in self.reference.iter().zip(row) {
                grows |= exponent(v.to_bits()) > r;
            }
            if grows {
                for (j, v) in row.iter().enumerate() {
                    let e = exponent(v.to_bits());
                    if e > self.reference[j] {
                        self.drain(j, sums);
                        self.reference[j] = e;
                    }
                }
            }
            // Branch-free over the columns, so that the loop runs in vector registers.
            let mut far = false;
            for ((((c, &r), &v), lo), hi) in self
                .counts
                .iter_mut()
                .zip(&self.reference)
                .zip(row)
                .zip(self.lo.iter_mut())
                .zip(self.hi.iter_mut())
            {
                let bits = v.to_bits();
                let biased = (bits >> 23) & 0xff;
                let m = i64::from((bits & 0x7f_ffff) | if biased != 0 { 0x80_0000 } else { 0 });
                let below = r - exponent(bits);
                let fits = below <= SPAN;
                let signed = if bits >> 31 != 0 { -m } else { m };
                let shift = (SPAN - below.min(SPAN)) as u32;
                *c += if fits { signed << shift } else { 0 };
                far |= !fits & (m != 0);
                *lo = lo.min(v);
                *hi = hi.max(v);
            }
            if far {
                for j in 0..dim {
                    let bits = row[j].to_bits();
                    if self.reference[j] - exponent(bits) > SPAN {
                        sums[j].add(f64::from(row[j]));
                    }
                }
            }
            self.rows += 1;
            if self.rows == ROWS_PER_DRAIN {
                self.finish(sums);
            }
        }
    }

    /// Moves column `j`'s count into its exact sum.
    fn drain(&mut self, j: usize, sums: &mut [ExactSum]) {
        let c = std::mem::take(&mut self.counts[j]);
        if c != 0 {
            sums[j].place(
                u128::from(c.unsigned_abs()),
                i64::from(self.reference[j]) - UNIT,
                c < 0,
            );
        }
    }

    /// Moves every count into its column's exact sum.
    pub(crate) fn finish(&mut self, sums: &mut [ExactSum]) {
        for j in 0..self.counts.len() {
            self.drain(j, sums);
        }
        self.rows = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::rank::xorshift;

    /// Column sums value by value with [`ExactSum::add`], and the bounds.
    fn reference(rows: &[f32], dim: usize) -> (Vec<ExactSum>, Vec<f32>, Vec<f32>) {
        let mut sums = vec![ExactSum::default(); dim];
        let (mut lo, mut hi) = (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim]);
        for row in rows.chunks_exact(dim) {
            for (j, &v) in row.iter().enumerate() {
                sums[j].add(f64::from(v));
                lo[j] = lo[j].min(v);
                hi[j] = hi[j].max(v);
            }
        }
        (sums, lo, hi)
    }

    fn fast(rows: &[f32], dim: usize, parts: usize) -> (Vec<ExactSum>, Vec<f32>, Vec<f32>) {
        let mut sums = vec![ExactSum::default(); dim];
        let mut c = F32Columns::new(dim);
        let n = rows.len() / dim;
        let step = n.div_ceil(parts).max(1);
        for part in rows.chunks(step * dim) {
            c.add_rows(part, &mut sums);
        }
        c.finish(&mut sums);
        (sums, c.lo, c.hi)
    }

    fn values_of(sums: &[ExactSum]) -> Vec<(f64, f64, f64)> {
        // The sum and two scalings that expose its low bits: equal exact sums agree on all.
        sums.iter()
            .map(|s| (s.value(), s.scaled(200), s.scaled(-200)))
            .collect()
    }

    /// Random bits of every exponent and sign (subnormals, zeros of both signs and ±MAX
    /// included), columns of very different scales, growing exponents late in a column and
    /// more than 128 rows between them: the same sums and bounds as value by value.
    #[test]
    fn sums_and_bounds_are_those_of_adding_each_value() {
        let mut next = xorshift(0x5eed);
        for &(n, dim) in &[(1usize, 1usize), (3, 5), (300, 7), (1000, 4), (257, 40)] {
            let mut rows = Vec::with_capacity(n * dim);
            for i in 0..n {
                for j in 0..dim {
                    let r = next();
                    let uniform = (r >> 40) as f32 / 16_777_216.0;
                    let v = match (j % 4, r % 7) {
                        // Any bits: every exponent, subnormals, zeros of both signs.
                        (0, 0) => f32::from_bits((r >> 8) as u32 & 0x807f_ffff),
                        (0, 1) => [0.0, -0.0][(r >> 9) as usize & 1],
                        (0, 2) if i > n / 2 => [f32::MAX, -f32::MAX][(r >> 9) as usize & 1],
                        (0, _) => f32::from_bits((r >> 16) as u32 & 0xff7f_ffff),
                        (1, _) => (uniform - 0.5) * 1e-3,
                        // Exponents that grow down the column.
                        (2, _) => uniform * (i as f32 + 1.0),
                        // One binade, one sign: the counts' largest terms, row after row.
                        _ => 8_388_608.0 + uniform * 8_388_607.0,
                    };
                    let v = if v.is_finite() { v } else { 1.0 };
                    rows.push(v);
                }
            }
            let (s0, lo0, hi0) = reference(&rows, dim);
            for parts in [1, 2, 7] {
                let (s, lo, hi) = fast(&rows, dim, parts);
                assert_eq!(values_of(&s), values_of(&s0), "n = {n}, dim = {dim}");
                assert_eq!(lo, lo0);
                assert_eq!(hi, hi0);
            }
        }
    }

    /// Values that cancel exactly, with a tiny one far below the others, leave the tiny one.
    #[test]
    fn tiny_values_survive_cancellation() {
        let rows = [1e30f32, 1e-30, -1e30, 3.0, -3.0, f32::from_bits(1)];
        let mut sums = vec![ExactSum::default()];
        let mut c = F32Columns::new(1);
        c.add_rows(&rows, &mut sums);
        c.finish(&mut sums);
        let mut exact = ExactSum::default();
        exact.add(f64::from(1e-30f32));
        exact.add(f64::from(f32::from_bits(1)));
        assert_eq!(sums[0].value(), exact.value());
        assert!(sums[0].value() > 0.0);
    }
}
