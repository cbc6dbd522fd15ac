//! Product quantization: error against bits, sub-space additivity, asymmetric distances,
//! search, files, and its parameter rules.

mod common;

use common::gaussian;
use lloyd::{Device, Error, PqCodebook, PqCodes, PqCodesRef, ProductQuantizer};

fn train(bits: u32, data: &[f32]) -> PqCodebook {
    ProductQuantizer::new(4, bits)
        .iterations(15)
        .seed(1)
        .device(Device::Cpu)
        .train(data, 16)
        .unwrap()
}

#[test]
fn error_decreases_with_bits_and_adds_over_sub_spaces() {
    let data = gaussian(3000, 16, 3);
    let mut last = f64::INFINITY;
    for bits in [1u32, 2, 4, 6, 8] {
        let pq = train(bits, &data);
        let mse = pq.mse(&data).unwrap();
        assert!(mse < last, "bits {bits}: {mse} >= {last}");
        last = mse;
        let sum: f64 = pq.sub_mse(&data).unwrap().iter().sum();
        assert!((sum - mse).abs() < 1e-12 * mse.max(1.0));
        let (codes, one_pass) = pq.encode_with_mse(&data).unwrap();
        assert_eq!(codes, pq.encode(&data).unwrap());
        assert_eq!(one_pass, mse);
        let decoded = pq.decode(&codes).unwrap();
        let direct: f64 = data
            .iter()
            .zip(&decoded)
            .map(|(a, b)| (f64::from(*a) - b).powi(2))
            .sum::<f64>()
            / 3000.0;
        assert!((direct - mse).abs() < 1e-5 * mse, "{direct} vs {mse}");
        for j in 0..4 {
            let sub = pq.sub_mse(&data).unwrap()[j];
            let cb = pq.codebook(j);
            let sub_data: Vec<f32> = data
                .chunks_exact(16)
                .flat_map(|r| r[j * 4..j * 4 + 4].to_vec())
                .collect();
            assert!((cb.mse(&sub_data).unwrap() - sub).abs() < 1e-12);
        }
    }
}

#[test]
fn asymmetric_distances_equal_distances_to_decoded_vectors() {
    let data = gaussian(1000, 16, 4);
    let pq = train(5, &data);
    let codes = pq.encode(&data).unwrap();
    let decoded = pq.decode(&codes).unwrap();
    let queries = gaussian(5, 16, 99);
    for q in queries.chunks_exact(16) {
        let brute: Vec<(usize, f32)> = decoded
            .chunks_exact(16)
            .enumerate()
            .map(|(i, x)| {
                let d: f64 = q
                    .iter()
                    .zip(x)
                    .map(|(a, b)| (f64::from(*a) - b).powi(2))
                    .sum();
                (i, d as f32)
            })
            .collect();
        let table = pq.distance_table(q).unwrap();
        for (i, d) in &brute {
            let adc: f32 = (0..4).map(|j| table[j * 32 + codes.get(i * 4 + j)]).sum();
            assert!((adc - d).abs() <= 1e-4 * (1.0 + d), "row {i}: {adc} vs {d}");
        }
        let top = pq.search(q, &codes, 10).unwrap();
        assert_eq!(top.len(), 10);
        assert!(top.windows(2).all(|w| w[0].1 <= w[1].1));
        let mut sorted = brute.clone();
        sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        for ((_, got), (_, want)) in top.iter().zip(&sorted) {
            assert!((got - want).abs() <= 1e-4 * (1.0 + want));
        }
    }
}

#[test]
fn codes_and_codebooks_round_trip_through_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = gaussian(1200, 16, 6);
    for bits in [3u32, 9] {
        let pq = train(bits, &data);
        let codes = pq.encode(&data).unwrap();
        assert_eq!(matches!(codes, PqCodes::U8(_)), bits <= 8);
        let cp = dir.path().join(format!("codes{bits}.npy"));
        codes.save_npy(&cp, 4).unwrap();
        let (back, m) = PqCodes::load_npy(&cp).unwrap();
        assert_eq!((back.clone(), m), (codes.clone(), 4));
        let bp = dir.path().join(format!("pq{bits}.npy"));
        pq.save_npy(&bp).unwrap();
        let loaded = PqCodebook::load_npy(&bp).unwrap();
        assert_eq!((loaded.m(), loaded.bits(), loaded.dim()), (4, bits, 16));
        assert_eq!(loaded.decode(&back).unwrap(), pq.decode(&codes).unwrap());
        let (shape, values) = lloyd::npy::read_floats(&bp).unwrap();
        assert_eq!(values.precision(), lloyd::Precision::F32);
        assert_eq!(shape, vec![4, 1 << bits, 4]);
    }
}

#[test]
fn parameter_rules() {
    let data = gaussian(300, 12, 1);
    let cpu = |m, bits| ProductQuantizer::new(m, bits).device(Device::Cpu);
    assert!(matches!(
        cpu(5, 4).train(&data, 12),
        Err(Error::SubspaceMismatch { dim: 12, m: 5 })
    ));
    assert!(matches!(
        cpu(0, 4).train(&data, 12),
        Err(Error::ZeroSubspaces)
    ));
    assert!(matches!(
        cpu(4, 0).train(&data, 12),
        Err(Error::InvalidBits(0))
    ));
    assert!(matches!(
        cpu(4, 17).train(&data, 12),
        Err(Error::InvalidBits(17))
    ));
    assert!(matches!(
        cpu(4, 9).train(&data, 12),
        Err(Error::TooManyCentroids { k: 512, n: 300 })
    ));
    let pq = cpu(4, 2).train(&data, 12).unwrap();
    assert!(matches!(
        pq.decode(&PqCodes::U8(vec![0, 1, 2])),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        pq.decode(&PqCodes::U8(vec![0, 1, 2, 4])),
        Err(Error::LabelOutOfRange { label: 4, .. })
    ));
    assert!(matches!(
        pq.search(&[0.0; 5], &PqCodes::U8(vec![0; 4]), 1),
        Err(Error::DimensionMismatch { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.npy");
    lloyd::npy::write_f32(&bad, &[2, 3, 4], &[0.0; 24]).unwrap();
    assert!(matches!(PqCodebook::load_npy(&bad), Err(Error::Npy { .. })));
}

/// A product quantizer from codebooks: 2^bits centroids each, all of one shape, at least one.
#[test]
fn codebooks_make_a_quantizer_only_when_they_fit_together() {
    use lloyd::{Codebook, Error, PqCodebook};
    let two = |v: f64| Codebook::new(vec![v as f32, v as f32 + 1.0], 1).unwrap();
    assert!(PqCodebook::from_codebooks(vec![two(0.0), two(5.0)]).is_ok());
    assert!(matches!(
        PqCodebook::from_codebooks(Vec::new()),
        Err(Error::ZeroSubspaces)
    ));
    let three = Codebook::new(vec![0.0, 1.0, 2.0], 1).unwrap();
    assert!(matches!(
        PqCodebook::from_codebooks(vec![three]),
        Err(Error::InvalidArgument(m)) if m.contains("2^bits")
    ));
    let wide = Codebook::new(vec![0.0, 1.0, 2.0, 3.0], 2).unwrap();
    assert!(matches!(
        PqCodebook::from_codebooks(vec![two(0.0), wide]),
        Err(Error::InvalidArgument(m)) if m.contains("sub-space 1")
    ));
}

/// Decoding into a float32 buffer, on the calling thread and on every thread, gives the
/// rows decode gives, for u8 and u16 codes and row counts across the threads' blocks; a
/// wrong buffer or code is refused.
#[test]
fn decode_into_a_buffer_equals_decode() {
    let data = gaussian(3001, 16, 8);
    for bits in [4u32, 9] {
        let pq = train(bits, &data);
        let codes = pq.encode(&data).unwrap();
        let want: Vec<f32> = pq
            .decode(&codes)
            .unwrap()
            .iter()
            .map(|&v| v as f32)
            .collect();
        let mut out = vec![f32::NAN; 3001 * 16];
        pq.decode_into(&codes, &mut out).unwrap();
        assert_eq!(out, want, "bits {bits}");
        let mut borrowed = vec![f32::NAN; 3001 * 16];
        pq.decode_into(PqCodesRef::from(&codes), &mut borrowed)
            .unwrap();
        assert_eq!(borrowed, want, "bits {bits}, borrowed codes");
        // Beyond the 4 MiB that are copied on the calling thread: the codes 25 times over.
        let many = match &codes {
            PqCodes::U8(c) => PqCodes::U8(c.repeat(25)),
            PqCodes::U16(c) => PqCodes::U16(c.repeat(25)),
        };
        let mut spread = vec![f32::NAN; 25 * 3001 * 16];
        pq.decode_into(&many, &mut spread).unwrap();
        assert_eq!(spread, want.repeat(25), "bits {bits}, on every thread");
        let one = match &codes {
            PqCodes::U8(c) => PqCodes::U8(c[..4].to_vec()),
            PqCodes::U16(c) => PqCodes::U16(c[..4].to_vec()),
        };
        let mut row = vec![0.0f32; 16];
        pq.decode_into(&one, &mut row).unwrap();
        assert_eq!(row, want[..16]);
        assert!(pq.decode_into(&codes, &mut out[..16]).is_err());
    }
    let pq = train(4, &data);
    let mut out = vec![0.0f32; 16];
    for codes in [
        PqCodes::U8(vec![0, 1, 2, 16]),
        PqCodes::U16(vec![0, 1, 2, 999]),
    ] {
        match pq.decode_into(&codes, &mut out) {
            Err(Error::LabelOutOfRange {
                index: 3, k: 16, ..
            }) => {}
            other => panic!("{codes:?}: {other:?}"),
        }
    }
}

/// The nearest centroid of `books[j]` to each row's sub-vector j by f64 differences of the
/// caller's values, lowest index on ties.
fn brute_codes(data: &[f64], dim: usize, books: &[lloyd::Codebook]) -> Vec<usize> {
    let m = books.len();
    let dsub = dim / m;
    let mut codes = Vec::with_capacity(data.len() / dim * m);
    for row in data.chunks_exact(dim) {
        for (j, book) in books.iter().enumerate() {
            let x = &row[j * dsub..(j + 1) * dsub];
            let mut best = (0usize, f64::INFINITY);
            for (c, centroid) in book.centroids().chunks_exact(dsub).enumerate() {
                let d: f64 = x.iter().zip(centroid).map(|(a, b)| (a - b) * (a - b)).sum();
                if d < best.1 {
                    best = (c, d);
                }
            }
            codes.push(best.0);
        }
    }
    codes
}

/// The CPU encodes every sub-space of a block of rows in one pass; each code is the nearest
/// centroid to the caller's values (lowest index on ties), and each sub-space's error is its
/// codebook's, at sub-space dimensions the fused kernel serves (1, 3, 8) and one the matrix
/// product does (12), u8 and u16 codes, row counts across the blocks, points on a coarse grid
/// (ties), data shifted by 10⁴ and scaled by 2⁴⁰, float32 and float64.
#[test]
fn one_pass_codes_are_the_nearest_centroids() {
    let mut seed = 11u64;
    for &(n, dim, m, bits) in &[
        (1usize, 8usize, 1usize, 2u32),
        (257, 24, 3, 8),
        (1003, 6, 6, 3),
        (515, 9, 3, 9),
        (700, 24, 2, 5),
    ] {
        let dsub = dim / m;
        for (shift, scale, coarse) in [
            (0.0, 1.0, false),
            (1e4, 1.0, true),
            (0.0, 2f64.powi(40), false),
        ] {
            seed += 1;
            let raw = gaussian(n + (m << bits), dim, seed);
            let grid = |v: f32| if coarse { (v * 2.0).round() / 2.0 } else { v };
            let caller = |v: f32| (f64::from(grid(v)) + shift) * scale;
            let data: Vec<f64> = raw[..n * dim].iter().map(|&v| caller(v)).collect();
            let books: Vec<lloyd::Codebook> = (0..m)
                .map(|j| {
                    let c: Vec<f64> = raw[n * dim..]
                        .chunks_exact(dim)
                        .take(1 << bits)
                        .flat_map(|row| row[j * dsub..(j + 1) * dsub].iter().map(|&v| caller(v)))
                        .collect();
                    lloyd::Codebook::from_f64(c, dsub).unwrap()
                })
                .collect();
            let pq = PqCodebook::from_codebooks(books.clone())
                .unwrap()
                .with_device(Device::Cpu);
            let narrow: Vec<f32> = data.iter().map(|&v| v as f32).collect();
            let narrowed: Vec<f64> = narrow.iter().map(|&v| f64::from(v)).collect();
            let case = format!("n {n} dim {dim} m {m} bits {bits} shift {shift} scale {scale}");
            for wide in [true, false] {
                let (codes, sub_mse, exact) = if wide {
                    (pq.encode(&data).unwrap(), pq.sub_mse(&data).unwrap(), &data)
                } else {
                    (
                        pq.encode(&narrow).unwrap(),
                        pq.sub_mse(&narrow).unwrap(),
                        &narrowed,
                    )
                };
                assert_eq!(matches!(codes, PqCodes::U16(_)), bits > 8, "{case}");
                let want = brute_codes(exact, dim, &books);
                for (i, &w) in want.iter().enumerate() {
                    assert_eq!(codes.get(i), w, "{case} code {i}");
                }
                for (j, book) in books.iter().enumerate() {
                    let cols: Vec<f64> = exact
                        .chunks_exact(dim)
                        .flat_map(|row| row[j * dsub..(j + 1) * dsub].iter().copied())
                        .collect();
                    let mse = book.mse(&cols).unwrap();
                    let rel = (sub_mse[j] - mse).abs() / mse.max(f64::MIN_POSITIVE);
                    assert!(rel <= 1e-12, "{case} sub {j}: {} against {mse}", sub_mse[j]);
                }
            }
        }
    }
}

/// Integer data, as scikit-learn's digits: a value equidistant from two centroids takes the
/// first, a value equal to a centroid takes it rather than one 10⁻⁸ away, a repeated
/// centroid answers by its first index; in PQ codes and in a codebook's labels. Centred in f64 and rounded to f32, these broke at
/// random (70 % of digits' codes at one pixel a sub-space matched the exact nearest).
#[test]
fn integer_data_take_the_exact_nearest_centroid() {
    // 11.3 puts the centroids' mean, the frame's origin, off the binary grid the values lie on.
    let centroids = vec![1e-8, 0.0, 7.5, 8.5, 3.0, 3.0, 16.0, 11.3];
    let books: Vec<lloyd::Codebook> = (0..4)
        .map(|_| lloyd::Codebook::from_f64(centroids.clone(), 1).unwrap())
        .collect();
    let pq = PqCodebook::from_codebooks(books.clone())
        .unwrap()
        .with_device(Device::Cpu);
    let data: Vec<f64> = (0..4 * 170)
        .map(|i| ((i * 7 + i / 17) % 17) as f64)
        .collect();
    let want = brute_codes(&data, 4, &books);
    for (label, x) in [(1usize, 0.0), (2, 8.0), (4, 3.0), (6, 16.0)] {
        assert!(data.iter().zip(&want).any(|(&v, &w)| v == x && w == label));
    }
    let narrow: Vec<f32> = data.iter().map(|&v| v as f32).collect();
    for codes in [pq.encode(&data).unwrap(), pq.encode(&narrow).unwrap()] {
        for (i, &w) in want.iter().enumerate() {
            assert_eq!(codes.get(i), w, "value {} at {i}", data[i]);
        }
    }
    // A single codebook's labels take the same path.
    let labels = books[0].encode(&data).unwrap();
    let one = brute_codes(&data, 1, &books[..1]);
    assert_eq!(labels.iter().map(|&l| l as usize).collect::<Vec<_>>(), one);
}
