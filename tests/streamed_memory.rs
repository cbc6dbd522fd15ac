//! `lloyd kmeans` on a file several times larger than the memory it is allowed
//! (`--max-memory`): it streams the file, its peak memory (measured by the kernel) stays far
//! below the file's size, and its centroids and labels are those of the in-memory fit to
//! the bit. A test binary of its own: the peak of children is per process.

use std::process::Command;

/// The largest resident set of any child this process has waited for, in bytes.
fn children_peak_bytes() -> u64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0);
    // Linux reports kilobytes.
    usage.ru_maxrss as u64 * 1024
}

fn kmeans(input: &std::path::Path, dir: &std::path::Path, tag: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lloyd"))
        .args(["kmeans", "--input"])
        .arg(input)
        .args([
            "--k",
            "12",
            "--iterations",
            "8",
            "--tolerance",
            "0",
            "--device",
            "cpu",
        ])
        .args(["--json", "--quiet", "--output"])
        .arg(dir.join(format!("{tag}-centroids.npy")))
        .arg("--labels")
        .arg(dir.join(format!("{tag}-labels.npy")))
        .args(extra)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes an (n, dim) float32 `.npy` of 12 blobs far from the origin a row at a time: this
/// process stays small, and a child's peak counts what this process held when it started it.
fn write_rows(path: &std::path::Path, n: usize, dim: usize) {
    use std::io::Write;
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {dim}), }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    w.write_all(b"\x93NUMPY\x01\x00").unwrap();
    w.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
    w.write_all(&header).unwrap();
    for i in 0..n * dim {
        let (row, t) = (i / dim, i % dim);
        let center = ((row * 7919) % 12) as f32;
        let v = center * 3.0 + ((i * 2_654_435_761) % 1000) as f32 * 1e-3 + t as f32 + 500.0;
        w.write_all(&v.to_le_bytes()).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn a_file_larger_than_the_memory_allowed_is_streamed_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.npy");
    let (n, dim) = (1_500_000usize, 8usize);
    write_rows(&input, n, dim);
    let file = std::fs::metadata(&input).unwrap().len();
    assert!(file >= 48_000_000);

    // First, so that the peak of the children is this run's.
    let streamed = kmeans(&input, dir.path(), "streamed", &["--max-memory", "8M"]);
    let peak = children_peak_bytes();
    assert!(streamed.contains("\"streamed\":true"), "{streamed}");
    eprintln!("streamed: file {file} bytes, peak resident {peak} bytes");
    assert!(
        peak < file / 3,
        "the streamed fit peaked at {peak} bytes for a file of {file}"
    );

    let whole = kmeans(&input, dir.path(), "whole", &[]);
    assert!(whole.contains("\"streamed\":false"), "{whole}");
    for what in ["centroids", "labels"] {
        let a = std::fs::read(dir.path().join(format!("streamed-{what}.npy"))).unwrap();
        let b = std::fs::read(dir.path().join(format!("whole-{what}.npy"))).unwrap();
        assert!(
            a == b,
            "the streamed {what} differ from the in-memory fit's"
        );
    }
}
