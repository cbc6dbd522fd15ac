//! Host side of the fixed-point accumulators: choosing the scales and reading the 96-bit
//! words back.

/// The power of two `2^s` that maps values of magnitude up to `bound` below 2^61.
pub(crate) fn scale_for(bound: f64) -> f32 {
    if bound.is_nan() || bound <= 0.0 || bound.is_infinite() {
        return 1.0;
    }
    let s = (61.0 - bound.log2().ceil()).clamp(-120.0, 120.0);
    (2.0f64).powi(s as i32) as f32
}

/// The value of three little-endian words of a 96-bit two's-complement integer.
pub(crate) fn words_to_i128(w: &[u32]) -> i128 {
    (i128::from(w[2] as i32) << 64) | (i128::from(w[1]) << 32) | i128::from(w[0])
}

/// [`words_to_i128`], rounded to f64.
pub(crate) fn words_to_f64(w: &[u32]) -> f64 {
    words_to_i128(w) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        assert_eq!(words_to_f64(&[5, 0, 0]), 5.0);
        assert_eq!(words_to_f64(&[u32::MAX, u32::MAX, u32::MAX]), -1.0);
        assert_eq!(words_to_f64(&[0, 1, 0]), 4294967296.0);
        assert_eq!(words_to_f64(&[0, 0, 1]), 2f64.powi(64));
    }

    #[test]
    fn scales_keep_values_under_2_pow_61() {
        for b in [1e-15, 0.3, 1.0, 5.77, 1e6, 3e30] {
            let s = f64::from(scale_for(b));
            assert!(b * s <= 2f64.powi(61) && b * s > 2f64.powi(59), "{b}");
        }
        assert_eq!(scale_for(0.0), 1.0);
    }
}
