//! `.npy` round trips, atomic writes, corrupt files, and a read-back by NumPy itself.

use std::process::Command;

use lloyd::{Codebook, Error, npy};

#[test]
fn codebook_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("centroids.npy");
    let cb = Codebook::new((0..24).map(|i| i as f32 * 0.25 - 1.0).collect(), 3).unwrap();
    cb.save_npy(&path).unwrap();
    assert_eq!(Codebook::load_npy(&path).unwrap(), cb);
    // Atomic write: no temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("centroids.npy")]);
}

#[test]
fn labels_round_trip_and_float64_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("labels.npy");
    npy::write_labels(&p, &[3, 1, 4, 1, 5]).unwrap();
    let (shape, labels) = npy::read_labels(&p).unwrap();
    assert_eq!(shape, vec![5]);
    assert_eq!(labels, vec![3, 1, 4, 1, 5]);
    // Integers read as float64, as NumPy converts them; floats are not labels.
    assert_eq!(npy::read_f64(&p).unwrap().1, vec![3.0, 1.0, 4.0, 1.0, 5.0]);
    let f = dir.path().join("floats.npy");
    npy::write_f32(&f, &[2], &[0.5, 1.0]).unwrap();
    assert!(matches!(npy::read_labels(&f), Err(Error::Npy { .. })));
}

#[test]
fn corrupt_and_missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"this is not numpy").unwrap();
    let e = Codebook::load_npy(&garbage).unwrap_err();
    assert!(matches!(e, Error::Npy { .. }), "{e}");

    let good = dir.path().join("good.npy");
    Codebook::new(vec![1.0; 64], 8)
        .unwrap()
        .save_npy(&good)
        .unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.npy");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let e = Codebook::load_npy(&truncated).unwrap_err();
    assert!(matches!(e, Error::Npy { .. }), "{e}");

    let mut nan = bytes.clone();
    let n = nan.len();
    nan[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    let with_nan = dir.path().join("nan.npy");
    std::fs::write(&with_nan, &nan).unwrap();
    let e = Codebook::load_npy(&with_nan).unwrap_err();
    assert!(e.to_string().contains("non-finite"), "{e}");

    let e = Codebook::load_npy(dir.path().join("missing.npy")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

#[test]
fn numpy_reads_what_we_write_and_we_read_what_numpy_writes() {
    let probe = Command::new("python3")
        .args(["-c", "import numpy"])
        .output();
    if !matches!(probe, Ok(ref o) if o.status.success()) {
        eprintln!("skipped: python3 with numpy is not available");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.npy");
    let cb = Codebook::new(vec![1.5, -2.0, 3.25, 0.0, 7.0, 1e-3], 2).unwrap();
    cb.save_npy(&ours).unwrap();
    let theirs = dir.path().join("theirs.npy");
    let script = format!(
        "import numpy as np; a = np.load({ours:?}); assert a.dtype == np.float32, a.dtype; \
         assert a.shape == (3, 2), a.shape; print(repr(a.tolist())); \
         np.save({theirs:?}, np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)))",
        ours = ours.to_str().unwrap(),
        theirs = theirs.to_str().unwrap()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        printed.trim(),
        "[[1.5, -2.0], [3.25, 0.0], [7.0, 0.0010000000474974513]]"
    );
    let back = Codebook::load_npy(&theirs).unwrap();
    assert_eq!(back.dim(), 4);
    assert_eq!(back.precision(), lloyd::Precision::F64);
    assert_eq!(
        back.centroids(),
        (0..12).map(f64::from).collect::<Vec<_>>().as_slice()
    );
}

/// A bounded fuzz of the `.npy` reader: every single-byte mutation of a valid file's header
/// and many random mutations of its body give either the right array or a clear error,
/// never a panic or a wrong shape.
#[test]
fn mutated_files_never_panic_or_lie() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.npy");
    let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
    npy::write_f32(&good, &[6, 4], &data).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let header_end = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let path = dir.path().join("mutated.npy");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for i in 0..header_end {
        for v in [0u8, b'9', b'(', b',', 0xff, bytes[i].wrapping_add(1)] {
            let mut m = bytes.clone();
            m[i] = v;
            cases.push(m);
        }
    }
    for _ in 0..300 {
        let mut m = bytes.clone();
        let cut = (next() as usize) % (m.len() + 1);
        if next() % 2 == 0 {
            m.truncate(cut);
        } else {
            let i = (next() as usize) % m.len();
            m[i] = next() as u8;
        }
        cases.push(m);
    }
    for m in cases {
        std::fs::write(&path, &m).unwrap();
        let result = std::panic::catch_unwind(|| npy::read_floats(&path));
        match result.expect("the reader panicked") {
            Ok((shape, values)) => {
                let count: usize = shape.iter().product();
                assert_eq!(
                    values.len(),
                    count,
                    "shape {shape:?} with {} values",
                    values.len()
                );
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

/// A `.npy` file written by hand: format `version`, `descr`, order and shape, then `data`.
fn npy_bytes(version: u8, descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let pre = if version == 1 { 10 } else { 12 };
    while (pre + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([version, 0]);
    match version {
        1 => out.extend((header.len() as u16).to_le_bytes()),
        _ => out.extend((header.len() as u32).to_le_bytes()),
    }
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// Floats in either byte order, C or Fortran order, header formats 1 to 3: the values
/// NumPy would read, whichever path (one read in the machine's order, or value by value)
/// reads them; a short file is refused.
#[test]
fn floats_read_the_same_in_every_byte_order_and_format() {
    let dir = tempfile::tempdir().unwrap();
    let values = [1.5f64, -2.25, 3e-7, 4.0, 1e30, -0.0];
    let row_major = |fortran: bool| -> Vec<f64> {
        match fortran {
            // Stored column by column: (3, 2) read back row by row.
            true => vec![
                values[0], values[3], values[1], values[4], values[2], values[5],
            ],
            false => values.to_vec(),
        }
    };
    for version in [1u8, 2, 3] {
        for fortran in [false, true] {
            for (descr, wide) in [("<f4", false), (">f4", false), ("<f8", true), (">f8", true)] {
                let big = descr.starts_with('>');
                let data: Vec<u8> = values
                    .iter()
                    .flat_map(|&v| match (wide, big) {
                        (true, true) => v.to_be_bytes().to_vec(),
                        (true, false) => v.to_le_bytes().to_vec(),
                        (false, true) => (v as f32).to_be_bytes().to_vec(),
                        (false, false) => (v as f32).to_le_bytes().to_vec(),
                    })
                    .collect();
                let path = dir
                    .path()
                    .join(format!("a{version}{fortran}{}.npy", &descr[1..]));
                std::fs::write(&path, npy_bytes(version, descr, fortran, "(3, 2)", &data)).unwrap();
                let (shape, floats) = lloyd::npy::read_floats(&path).unwrap();
                assert_eq!(shape, vec![3, 2]);
                let got = match floats {
                    lloyd::npy::Floats::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
                    lloyd::npy::Floats::F64(v) => v,
                };
                let want: Vec<f64> = row_major(fortran)
                    .iter()
                    .map(|&v| if wide { v } else { f64::from(v as f32) })
                    .collect();
                assert_eq!(got, want, "version {version}, {descr}, fortran {fortran}");
                let short = npy_bytes(version, descr, fortran, "(3, 2)", &data[..data.len() - 1]);
                std::fs::write(&path, short).unwrap();
                assert!(
                    lloyd::npy::read_floats(&path).is_err(),
                    "{descr} v{version} short"
                );
            }
        }
    }
}
