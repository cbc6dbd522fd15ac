//! Issue #9, items 2, 8, 9 and 10 through the `lloyd` binary: float64 files, sizes, files
//! that are not regular files, and messages that name what is wrong.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

fn lloyd(args: &[&str]) -> Output {
    lloyd_env(args, &[])
}

fn lloyd_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lloyd"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure with one error line that contains `needle`.
fn fails_with(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "succeeded: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Item 2: float64 samples 10⁸ + N(0, 1) are quantized as N(0, 1) is (they collapsed in f32
/// and reported mse 0).
#[test]
fn float64_samples_far_from_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let z = lloyd::Law::standard_normal().sample(100_000, 3).unwrap();
    let far: Vec<f64> = z.iter().map(|v| v + 1e8).collect();
    let (pz, pf) = (dir.path().join("z.npy"), dir.path().join("far.npy"));
    lloyd::npy::write_f64(&pz, &[z.len()], &z).unwrap();
    lloyd::npy::write_f64(&pf, &[far.len()], &far).unwrap();
    let run = |p: &Path| {
        json(&lloyd(&[
            "quantize",
            "--input",
            p.to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
        ]))
    };
    let (a, b) = (run(&pz), run(&pf));
    let (ma, mb) = (a["mse"].as_f64().unwrap(), b["mse"].as_f64().unwrap());
    assert!(mb > 0.0 && (ma - mb).abs() < 1e-6 * ma, "{ma} vs {mb}");
}

/// Item 8: a budget of 10⁹ iterations with a tolerance just runs; requests that cannot fit
/// are refused before any work with what they need; a `.npy` whose shape overflows is a bad
/// header.
#[test]
fn sizes() {
    let o = lloyd(&[
        "quantize",
        "--iterations",
        "1000000000",
        "--tolerance",
        "1e-6",
        "--samples",
        "50000",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(json(&o)["converged"].as_bool().unwrap());
    fails_with(
        &lloyd(&["quantize", "--samples", "100000000000", "--device", "cpu"]),
        "GiB",
    );
    fails_with(
        &lloyd(&["quantize-nd", "--d", "100000000", "--device", "cpu"]),
        "GiB",
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.npy");
    // shape (2^63 + 1, 2): the product overflows.
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775809, 2), }";
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((h.len() as u16).to_le_bytes());
    bytes.extend(h.as_bytes());
    bytes.extend([0u8; 16]);
    std::fs::write(&p, bytes).unwrap();
    fails_with(
        &lloyd(&["kmeans", "--input", p.to_str().unwrap(), "--k", "2"]),
        "bad header",
    );
}

fn blobs_file(dir: &Path) -> String {
    let data = common::blobs(300, 2, 3, 1);
    let p = dir.join("data.npy");
    lloyd::npy::write_f32(&p, &[300, 2], &data).unwrap();
    p.to_str().unwrap().to_string()
}

fn kmeans_to(input: &str, output: &Path) -> Output {
    lloyd(&[
        "kmeans",
        "--input",
        input,
        "--k",
        "3",
        "--device",
        "cpu",
        "--output",
        output.to_str().unwrap(),
    ])
}

/// Item 9: what is not a regular file is never replaced. A symbolic link is followed (its
/// target gets the data, the link stays a link), a FIFO and a character device are written
/// through, an existing file keeps its permission bits, a read-only one is refused, a
/// 254-byte name works, and `--output` and `--labels` cannot name one file.
#[test]
fn files_that_are_not_regular_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = blobs_file(d);
    // A symbolic link: followed.
    let target = d.join("target.npy");
    std::fs::write(&target, b"old").unwrap();
    let link = d.join("link.npy");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(kmeans_to(&input, &link).status.success());
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(lloyd::Codebook::load_npy(&target).unwrap().k(), 3);
    // A FIFO: written through (a reader drains it).
    let fifo = d.join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let f = fifo.clone();
        std::thread::spawn(move || std::fs::read(f).unwrap())
    };
    assert!(kmeans_to(&input, &fifo).status.success(), "FIFO");
    let read = reader.join().unwrap();
    assert!(
        read.starts_with(b"\x93NUMPY"),
        "the FIFO got {} bytes",
        read.len()
    );
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    // A character device of our own (never /dev/null itself): written through, still a
    // device. Needs root, which CI has; skipped with a reason elsewhere.
    let null = d.join("null");
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status();
    if matches!(made, Ok(s) if s.success()) {
        assert!(
            kmeans_to(&input, &null).status.success(),
            "character device"
        );
        assert!(
            std::fs::metadata(&null)
                .unwrap()
                .file_type()
                .is_char_device()
        );
    } else {
        eprintln!("character-device case skipped: mknod needs root");
    }
    // Permission bits are kept.
    let kept = d.join("kept.npy");
    std::fs::write(&kept, b"old").unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(kmeans_to(&input, &kept).status.success());
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    // A read-only file is refused and left as it was.
    let ro = d.join("readonly.npy");
    std::fs::write(&ro, b"keep me").unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).unwrap();
    fails_with(&kmeans_to(&input, &ro), "read-only");
    assert_eq!(std::fs::read(&ro).unwrap(), b"keep me");
    // A legal 254-byte name.
    let long = d.join(format!("{}.npy", "n".repeat(250)));
    assert!(
        kmeans_to(&input, &long).status.success(),
        "{}",
        stderr(&kmeans_to(&input, &long))
    );
    // No temporary file is left anywhere.
    for e in std::fs::read_dir(d).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "left behind: {name}");
    }
    // One file for two outputs.
    let both = d.join("both.npy");
    fails_with(
        &lloyd(&[
            "kmeans",
            "--input",
            &input,
            "--k",
            "3",
            "--output",
            both.to_str().unwrap(),
            "--labels",
            both.to_str().unwrap(),
        ]),
        "--labels",
    );
}

/// Item 9: SIGINT and SIGTERM go through the handler that removes the temporary files of
/// writes in progress (`npy::remove_temporaries`, tested on its own in the library): the
/// process exits with 130 instead of dying by the signal, and leaves nothing behind.
#[test]
fn an_interrupted_run_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = common::gaussian(200_000, 16, 2);
    let input = d.join("big.npy");
    lloyd::npy::write_f32(&input, &[200_000, 16], &data).unwrap();
    for signal in ["INT", "TERM"] {
        let out = d.join(format!("out-{signal}.npy"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_lloyd"))
            .args([
                "kmeans",
                "--input",
                input.to_str().unwrap(),
                "--k",
                "256",
                "--iterations",
                "1000",
                "--tolerance",
                "0",
                "--device",
                "cpu",
                "--output",
                out.to_str().unwrap(),
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(800));
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args([&format!("-{signal}"), &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{signal}: {status:?}");
        for e in std::fs::read_dir(d).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp"), "{signal}: left behind {name}");
        }
        assert!(!out.exists());
    }
}

/// Item 10: each message names what is wrong.
#[test]
fn messages_name_what_is_wrong() {
    fails_with(&lloyd(&["kmeans"]), "--input");
    fails_with(&lloyd(&["kmeans", "--input", "x.npy"]), "--k");
    fails_with(&lloyd(&["quantize", "--device", "gpu:99"]), "gpu:99");
    // With no adapter at all too (Vulkan's loader pointed at no driver).
    let no_vulkan = [("VK_ICD_FILENAMES", "/nonexistent.json")];
    fails_with(
        &lloyd_env(&["quantize", "--device", "gpu:99"], &no_vulkan),
        "--device gpu:99",
    );
    fails_with(
        &lloyd(&["quantize-nd", "--d", "3", "--svg", "x.svg"]),
        "--d 2",
    );
    fails_with(
        &lloyd(&["quantize", "--method", "clvq", "--samples", "0"]),
        "--samples",
    );
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("matrix.npy");
    lloyd::npy::write_f32(&m, &[500, 4], &vec![0.5; 2000]).unwrap();
    fails_with(
        &lloyd(&["quantize", "--input", m.to_str().unwrap()]),
        "(n,)",
    );
}

/// Item 10: OpenGL adapters are skipped by `auto`, and warned about when chosen.
#[test]
fn opengl_is_skipped_by_auto_and_warned_about() {
    let gl = [("WGPU_BACKEND", "gl")];
    let o = lloyd_env(&["quantize", "--samples", "20000", "--json"], &gl);
    assert!(o.status.success(), "{}", stderr(&o));
    let device = json(&o)["device"].as_str().unwrap().to_string();
    assert_eq!(device, "cpu");
    let o = lloyd_env(
        &[
            "quantize",
            "--samples",
            "2000",
            "--iterations",
            "2",
            "--device",
            "gpu",
            "--json",
        ],
        &gl,
    );
    if o.status.success() {
        assert!(stderr(&o).contains("OpenGL"), "{}", stderr(&o));
    } else {
        eprintln!("no OpenGL adapter here: {}", stderr(&o));
    }
}
