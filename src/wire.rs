//! The bytes that carry an [`Extent`], a [`Frame`] or [`LloydStats`] between processes (the
//! workers of a Dask cluster, say): a tag naming the kind and the format's version, then the
//! value's fields in postcard's compact encoding. Decoding checks that the value is one the
//! library can hold, so that bytes from anywhere give a value or an error, never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::frame::{Extent, Frame};
use crate::stats::LloydStats;

/// The first bytes of every encoded value; the next one names its kind.
const MAGIC: &[u8; 7] = b"lloyd/1";

/// A value with a binary form.
pub(crate) trait Wire: Serialize + DeserializeOwned {
    /// The byte after [`MAGIC`] that names the kind.
    const KIND: u8;
    /// What the kind is called in errors.
    const NAME: &'static str;
    /// Whether a decoded value is one the library can hold.
    fn well_formed(&self) -> bool;
}

impl Wire for Extent {
    const KIND: u8 = b'e';
    const NAME: &'static str = "Extent";
    fn well_formed(&self) -> bool {
        Extent::well_formed(self)
    }
}

impl Wire for Frame {
    const KIND: u8 = b'f';
    const NAME: &'static str = "Frame";
    fn well_formed(&self) -> bool {
        Frame::well_formed(self)
    }
}

impl Wire for LloydStats {
    const KIND: u8 = b's';
    const NAME: &'static str = "LloydStats";
    fn well_formed(&self) -> bool {
        LloydStats::well_formed(self)
    }
}

/// `value` as bytes.
pub(crate) fn to_bytes<T: Wire>(value: &T) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(T::KIND);
    // Serialising plain vectors and numbers into a Vec cannot fail.
    postcard::to_extend(value, out).expect("postcard encodes plain data")
}

/// The value `bytes` encode, checked.
pub(crate) fn from_bytes<T: Wire>(bytes: &[u8]) -> Result<T> {
    let bad =
        |why: &str| Error::InvalidArgument(format!("not the bytes of a lloyd {}: {why}", T::NAME));
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| bad("no lloyd/1 header (another format or version)"))?;
    let (&kind, body) = body.split_first().ok_or_else(|| bad("truncated"))?;
    if kind != T::KIND {
        return Err(bad("they encode another kind of value"));
    }
    let (value, rest): (T, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| bad(&e.to_string()))?;
    if !rest.is_empty() {
        return Err(bad("bytes left over"));
    }
    if !value.well_formed() {
        return Err(bad("inconsistent fields"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::Weights;

    fn stats() -> LloydStats {
        let data = [0.0f64, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0];
        let frame = Extent::of(&data, 2).unwrap().frame();
        LloydStats::compute(&frame, &data, None, &[0.0, 1.0, 12.0, 13.0], 0).unwrap()
    }

    #[test]
    fn every_kind_round_trips() {
        let data = [0.5f32, 2.0, -3.0, 4.0, 1e-3, 7.0];
        let w = [1.0f32, 0.5, 2.0];
        let extent = Extent::of_weighted(&data, 2, Some(Weights::from(&w[..]))).unwrap();
        assert_eq!(from_bytes::<Extent>(&to_bytes(&extent)).unwrap(), extent);
        let frame = extent.frame();
        assert_eq!(from_bytes::<Frame>(&to_bytes(&frame)).unwrap(), frame);
        let s = stats();
        assert_eq!(from_bytes::<LloydStats>(&to_bytes(&s)).unwrap(), s);
        let scalars = [3.0f64, 1.0, 2.0, 9.0];
        let f1 = Extent::of(&scalars, 1).unwrap().frame();
        let s1 = LloydStats::compute(&f1, &scalars, None, &[1.0, 8.0], 0).unwrap();
        assert_eq!(from_bytes::<LloydStats>(&to_bytes(&s1)).unwrap(), s1);
    }

    #[test]
    fn foreign_truncated_or_mislabelled_bytes_are_refused() {
        let bytes = to_bytes(&stats());
        assert!(from_bytes::<LloydStats>(b"").is_err());
        assert!(from_bytes::<LloydStats>(b"lloyd/2s").is_err());
        assert!(
            from_bytes::<Frame>(&bytes).is_err(),
            "a stats value is no frame"
        );
        for cut in [8, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                from_bytes::<LloydStats>(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(from_bytes::<LloydStats>(&longer).is_err());
    }

    /// Every single-byte corruption decodes to an error or a well-formed value: never a
    /// panic, and never a value the checks would refuse.
    #[test]
    fn corrupted_bytes_never_panic() {
        let bytes = to_bytes(&stats());
        for i in 8..bytes.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] = v;
                if let Ok(s) = from_bytes::<LloydStats>(&b) {
                    // A well-formed value is usable: these must not panic either.
                    let _ = s.update();
                    let _ = s.inertia();
                    let mut m = s.clone();
                    let _ = m.merge(&s);
                }
            }
        }
    }
}
