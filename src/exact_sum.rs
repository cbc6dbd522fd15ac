//! An exact sum of f64 values: every finite f64 is an integer multiple of 2⁻¹⁰⁷⁴, so a
//! fixed-point accumulator wide enough for the whole range adds them with no rounding at all.
//! Sums of the same values are therefore identical whatever the order and however they were
//! split and merged, which is what a frame agreed between the parts of a distributed fit
//! needs (see [`crate::frame::Extent`]).

/// Bits per digit; each digit is an i64, so it absorbs 2³⁰ additions of 32-bit pieces before
/// the carries must move up.
const DIGIT_BITS: u32 = 32;
/// The position of bit 0 of the accumulator: 2⁻¹²²³, the smallest product of an f32
/// weight and an f64 value (2⁻¹⁴⁹ · 2⁻¹⁰⁷⁴).
const OFFSET: i64 = 1223;
/// Digits spanning 2⁻¹²²³ to beyond the largest such product (2¹²⁸ · 2¹⁰²⁴) with room for the
/// carries of 2⁶³ additions.
const DIGITS: usize = 80;
/// Additions between carry propagations.
const NORMALISE_EVERY: u32 = 1 << 30;

/// The exact sum of finite f64 values.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ExactSum {
    digits: Vec<i64>,
    pending: u32,
}

impl Default for ExactSum {
    fn default() -> Self {
        ExactSum {
            digits: vec![0; DIGITS],
            pending: 0,
        }
    }
}

impl ExactSum {
    /// Whether a value decoded from bytes is one additions can produce: the digits all
    /// there, each within the range the pending carries allow.
    pub(crate) fn well_formed(&self) -> bool {
        self.digits.len() == DIGITS
            && self.pending < NORMALISE_EVERY
            && self.digits.iter().all(|d| d.unsigned_abs() < 1 << 62)
    }

    /// Adds a finite value (non-finite values are the caller's to refuse).
    pub(crate) fn add(&mut self, v: f64) {
        if let Some((m, e)) = parts_f64(v) {
            self.place(u128::from(m), e, v < 0.0);
        }
    }

    /// Adds the product `w · v` of a finite f32 weight and a finite f64 value, exactly (the
    /// product of the two integer significands takes at most 77 bits).
    pub(crate) fn add_product(&mut self, w: f32, v: f64) {
        if let (Some((mw, ew)), Some((mv, ev))) = (parts_f32(w), parts_f64(v)) {
            self.place(
                u128::from(mw) * u128::from(mv),
                ew + ev,
                (w < 0.0) != (v < 0.0),
            );
        }
    }

    /// Adds the product `w · v` of a finite f64 weight of at most `f32::MAX` and a finite f64
    /// value: `w` as the sum of three f32 pieces (24, 24 and the last 5 of its 53 bits), each
    /// product added by [`ExactSum::add_product`]. Exact where no piece falls below f32's
    /// smallest subnormal (weights above about 2⁻¹⁰⁰), and a function of `w` and `v` alone
    /// everywhere, so sums still merge to the same bits. An f32 weight is its first piece
    /// alone: its sums are those of [`ExactSum::add_product`], digit for digit.
    pub(crate) fn add_weighted(&mut self, w: f64, v: f64) {
        let mut rest = w;
        for _ in 0..3 {
            let piece = rest as f32;
            if piece == 0.0 {
                break;
            }
            self.add_product(piece, v);
            rest -= f64::from(piece);
        }
    }

    /// Adds ±m · 2^e (m < 2⁷⁷).
    pub(crate) fn place(&mut self, m: u128, e: i64, negative: bool) {
        let pos = e + OFFSET;
        let (index, shift) = ((pos / 32) as usize, (pos % 32) as u32);
        // m < 2⁷⁷ and shift < 32: at most 109 bits, four digits.
        let wide = m << shift;
        let sign = if negative { -1 } else { 1 };
        for t in 0..4 {
            let piece = ((wide >> (32 * t)) & 0xffff_ffff) as i64;
            self.digits[index + t] += sign * piece;
        }
        self.pending += 1;
        if self.pending >= NORMALISE_EVERY {
            self.normalise();
        }
    }

    /// Adds another exact sum.
    pub(crate) fn merge(&mut self, other: &ExactSum) {
        let mut o = other.clone();
        o.normalise();
        self.normalise();
        for (a, b) in self.digits.iter_mut().zip(&o.digits) {
            *a += b;
        }
        self.normalise();
    }

    /// Moves carries up so that every digit but the top one lies in [0, 2³²): one
    /// representation per value.
    fn normalise(&mut self) {
        let mut carry = 0i64;
        for d in self.digits.iter_mut().take(DIGITS - 1) {
            let v = *d + carry;
            carry = v >> DIGIT_BITS;
            *d = v - (carry << DIGIT_BITS);
        }
        self.digits[DIGITS - 1] += carry;
        self.pending = 0;
    }

    /// The sum rounded to f64 (a function of the exact value alone, so equal sums give equal
    /// bits); ±infinity beyond f64's range.
    pub(crate) fn value(&self) -> f64 {
        self.scaled(0)
    }

    /// The sum times 2^e, rounded to f64 once: a sum beyond f64 can still be scaled into it.
    pub(crate) fn scaled(&self, e: i32) -> f64 {
        let mut s = self.clone();
        s.normalise();
        let Some(top) = s.digits.iter().rposition(|&d| d != 0) else {
            return 0.0;
        };
        if s.digits[top] < 0 {
            // Lower digits are non-negative: the top one carries the sign. The magnitude is
            // read from the negated sum, whose top digits hold its leading bits.
            for d in &mut s.digits {
                *d = -*d;
            }
            return -s.scaled(e);
        }
        let lowest = top.saturating_sub(2);
        // The top three digits exactly, then one sticky bit for whatever lies below, so the
        // one rounding of the conversion sees the whole value.
        let mut head: i128 = 0;
        for i in (lowest..=top).rev() {
            head = (head << DIGIT_BITS) + i128::from(s.digits[i]);
        }
        let sticky = s.digits[..lowest].iter().any(|&d| d != 0);
        head = (head << 1) | i128::from(sticky);
        let exponent = DIGIT_BITS as i32 * lowest as i32 - OFFSET as i32 - 1 + e;
        // The head holds at most 97 bits: the conversion rounds once, then the scaling is
        // exact unless the result is subnormal.
        libm::scalbn(head as f64, exponent)
    }
}

/// Exponent groups of [`Buckets`]: f64's 2048 biased exponents, 32 to a group.
const GROUPS: usize = 64;

/// A fast exact partial sum of f64 values, for one column of a block of rows: each value's
/// significand (53 bits), shifted by its exponent's place in a group of 32, is added to that
/// group's i128 (at most 84 bits a value, so 2⁴³ values fit), then the groups are moved into
/// an [`ExactSum`] once. One addition a value where [`ExactSum::add`] spreads four digits and
/// counts carries; the frame of a whole fit sums every coordinate of the data.
#[derive(Clone)]
pub(crate) struct Buckets {
    groups: [i128; GROUPS],
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            groups: [0; GROUPS],
        }
    }
}

impl Buckets {
    /// Adds a finite value (fewer than 2⁴³ of them between two [`Buckets::drain_into`]).
    #[inline(always)]
    pub(crate) fn add(&mut self, v: f64) {
        debug_assert!(v.is_finite());
        let bits = v.to_bits();
        let biased = (bits >> 52) & 0x7ff;
        let frac = bits & ((1u64 << 52) - 1);
        // Subnormals have exponent field 0 and the exponent of field 1, without the hidden bit.
        let (m, at) = match biased {
            0 => (frac, 1),
            _ => (frac | (1u64 << 52), biased),
        };
        let wide = i128::from(m) << (at & 31);
        let group = &mut self.groups[(at >> 5) as usize];
        *group += if bits >> 63 == 0 { wide } else { -wide };
    }

    /// Adds what was summed here to `sum`, and starts again from zero.
    pub(crate) fn drain_into(&mut self, sum: &mut ExactSum) {
        for (g, v) in self.groups.iter_mut().enumerate() {
            if *v != 0 {
                // Group g holds multiples of 2^(32g − 1075): the place of bit 0 of an f64
                // significand whose biased exponent is 32g.
                let (m, negative) = (v.unsigned_abs(), *v < 0);
                let e = 32 * g as i64 - 1075;
                sum.place(m & u128::from(u64::MAX), e, negative);
                sum.place(m >> 64, e + 64, negative);
                *v = 0;
            }
        }
    }
}

/// A finite non-zero f64 as (integer significand, exponent): |v| = m · 2^e.
fn parts_f64(v: f64) -> Option<(u64, i64)> {
    if v == 0.0 || !v.is_finite() {
        return None;
    }
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    Some(if exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), exp - 1075)
    })
}

/// A finite non-zero f32 as (integer significand, exponent).
fn parts_f32(v: f32) -> Option<(u64, i64)> {
    if v == 0.0 || !v.is_finite() {
        return None;
    }
    let bits = v.to_bits();
    let exp = i64::from((bits >> 23) & 0xff);
    let frac = u64::from(bits & ((1u32 << 23) - 1));
    Some(if exp == 0 {
        (frac, -149)
    } else {
        (frac | (1u64 << 23), exp - 150)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A float64 weight's product is exact, in three f32 pieces: its sum equals that of the
    /// weight's exact pieces added one by one in another order; an f32 weight's digits are
    /// those of `add_product`.
    #[test]
    fn weighted_products_are_exact() {
        let w = 0.1f64 + 1e-12;
        let (w1, r) = (w as f32, w - f64::from(w as f32));
        let (w2, w3) = (r as f32, (r - f64::from(r as f32)) as f32);
        assert_eq!(f64::from(w1) + (f64::from(w2) + f64::from(w3)), w);
        assert_ne!(w3, 0.0);
        for v in [1.0 + f64::EPSILON, -3.5e7, 1e-300, f64::MAX] {
            let mut a = ExactSum::default();
            a.add_weighted(w, v);
            let mut b = ExactSum::default();
            for piece in [w3, w2, w1] {
                b.add_product(piece, v);
            }
            a.normalise();
            b.normalise();
            assert_eq!(a, b, "{v}");
            let mut c = ExactSum::default();
            c.add_weighted(f64::from(2.5f32), v);
            let mut d = ExactSum::default();
            d.add_product(2.5, v);
            assert_eq!(c, d, "{v}");
        }
        // 0.1 · 3 in f64 rounds; the exact sum does not.
        let mut s = ExactSum::default();
        s.add_weighted(0.1, 3.0);
        s.add(-0.30000000000000004);
        assert!(s.value() < 0.0);
    }

    #[test]
    fn sums_are_exact_and_independent_of_order() {
        let values = [
            1e308,
            1.0,
            -1e308,
            1e-300,
            3.5,
            -2.25,
            f64::MIN_POSITIVE / 8.0,
        ];
        let mut a = ExactSum::default();
        values.iter().for_each(|&v| a.add(v));
        let mut b = ExactSum::default();
        values.iter().rev().for_each(|&v| b.add(v));
        assert_eq!(a.value(), b.value());
        assert_eq!(a.value(), 2.25);
        // Split into parts and merged: the same value.
        let mut p = ExactSum::default();
        let mut q = ExactSum::default();
        values[..3].iter().for_each(|&v| p.add(v));
        values[3..].iter().for_each(|&v| q.add(v));
        q.merge(&p);
        assert_eq!(q.value(), a.value());
    }

    #[test]
    fn tiny_remainders_survive_cancellation() {
        let mut s = ExactSum::default();
        for v in [1e16, 1.0, -1e16, 1e-20] {
            s.add(v);
        }
        assert_eq!(s.value(), 1.0 + 1e-20);
        let mut t = ExactSum::default();
        t.add(-5e-324);
        assert_eq!(t.value(), -5e-324);
        t.add(5e-324);
        assert_eq!(t.value(), 0.0);
    }

    #[test]
    fn products_are_exact() {
        let mut s = ExactSum::default();
        // 3 · (1 + 2⁻⁵²) needs 54 bits: an f64 product would round it.
        s.add_product(3.0, 1.0 + f64::EPSILON);
        s.add(-3.0);
        assert_eq!(s.value(), 3.0 * f64::EPSILON);
        let mut t = ExactSum::default();
        t.add_product(f32::MAX, f64::MAX);
        t.add_product(-f32::MAX, f64::MAX);
        t.add_product(f32::MIN_POSITIVE / 4.0, 5e-324);
        assert!(
            t.value() == 0.0,
            "below f64's range, but not lost: {}",
            t.value()
        );
        assert_eq!(t.scaled(1202), 1.0);
    }

    /// Buckets drained into a sum give the sum of adding each value, on values of every
    /// magnitude and sign (subnormals, the largest, cancellations), drained more than once.
    #[test]
    fn buckets_sum_what_adding_each_value_sums() {
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state
        };
        let mut values = vec![f64::MAX, -f64::MAX, 5e-324, -5e-324, f64::MIN_POSITIVE, 1.0];
        for _ in 0..20_000 {
            // Random bits: every exponent and sign, non-finite ones left out.
            let v = f64::from_bits(next());
            if v.is_finite() {
                values.push(v);
            }
        }
        values.extend([1e300, 1.0, -1e300, 3.0 * f64::EPSILON]);
        let mut each = ExactSum::default();
        let (mut buckets, mut drained) = (Buckets::default(), ExactSum::default());
        for (i, &v) in values.iter().enumerate() {
            each.add(v);
            buckets.add(v);
            if i % 5000 == 4999 {
                buckets.drain_into(&mut drained);
            }
        }
        buckets.drain_into(&mut drained);
        for e in [0, -1000, 1000, 2000] {
            assert_eq!(
                drained.scaled(e).to_bits(),
                each.scaled(e).to_bits(),
                "2^{e}"
            );
        }
        let mut negated = ExactSum::default();
        values.iter().for_each(|&v| negated.add(-v));
        negated.merge(&drained);
        assert_eq!(negated.scaled(2000), 0.0);
    }

    #[test]
    fn matches_a_plain_sum_of_integers() {
        let mut s = ExactSum::default();
        let mut plain = 0i64;
        for i in -1000i64..3000 {
            s.add((i * 7919) as f64);
            plain += i * 7919;
        }
        assert_eq!(s.value(), plain as f64);
    }
}
