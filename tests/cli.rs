//! The `lloyd` binary end to end: the main job, JSON output, K-means on files, errors.

mod common;

use std::process::Command;

fn lloyd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lloyd"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn main_job_prints_the_ten_point_normal_quantizer() {
    let o = lloyd(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = stdout(&o);
    assert!(s.contains("10-point quantizer"), "{s}");
    let rows = s.lines().filter(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() == 3 && f.iter().all(|x| x.parse::<f64>().is_ok())
    });
    assert_eq!(rows.count(), 10, "{s}");
    assert!(s.contains("distortion"), "{s}");
}

/// The table shows every centroid to its leading digits at any scale: a law scaled by
/// 10⁻¹⁰ does not print as zeros, one scaled by 10¹⁵⁰ not as 150-digit numbers: each printed
/// centroid is the JSON's to six significant digits at least, and to eight decimals, or to
/// nine significant digits where it is printed in scientific notation.
#[test]
fn quantize_table_reads_at_every_scale() {
    for std in ["1e-10", "1", "1e150"] {
        let args = [
            "quantize",
            "--n",
            "4",
            "--std",
            std,
            "--samples",
            "20000",
            "--device",
            "cpu",
        ];
        let o = lloyd(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let table = stdout(&o);
        assert!(table.len() < 1000, "std {std}: {table}");
        let printed: Vec<&str> = table
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 3 && f[0].parse::<usize>().is_ok()).then_some(f[1])
            })
            .collect();
        let o = lloyd(&[&args[..], &["--json"]].concat());
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        let exact: Vec<f64> = serde_json::from_value(v["centroids"].clone()).unwrap();
        assert_eq!(printed.len(), 4, "std {std}");
        for (&p, e) in printed.iter().zip(&exact) {
            let tolerance = if p.contains('e') {
                5e-9 * e.abs()
            } else {
                5e-9
            };
            let error = (p.parse::<f64>().unwrap() - e).abs();
            assert!(
                error <= tolerance && error <= 1e-5 * e.abs(),
                "std {std}: {p} printed for {e}"
            );
        }
    }
}

#[test]
fn quantize_json_has_every_field() {
    let o = lloyd(&[
        "quantize",
        "--law",
        "normal",
        "--n",
        "8",
        "--samples",
        "100000",
        "--iterations",
        "50",
        "--seed",
        "0",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    for key in [
        "centroids",
        "probabilities",
        "distortion",
        "mse",
        "iterations",
        "device",
        "ms_per_iteration",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["centroids"].as_array().unwrap().len(), 8);
    assert_eq!(v["device"], "cpu");
    let d = v["distortion"].as_f64().unwrap();
    assert!((v["mse"].as_f64().unwrap() - 2.0 * d).abs() < 1e-15);
    // the optimal 8-point quantizer of N(0,1) has mse 0.03455 (Max, 1960)
    assert!((v["mse"].as_f64().unwrap() - 0.03455).abs() < 1e-3, "{v}");
}

#[test]
fn kmeans_encode_decode_on_npy_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::blobs(600, 3, 3, 2);
    let input = dir.path().join("data.npy");
    lloyd::npy::write_f32(&input, &[600, 3], &data).unwrap();
    let cents = dir.path().join("centroids.npy");
    let o = lloyd(&[
        "kmeans",
        "--input",
        input.to_str().unwrap(),
        "--k",
        "3",
        "--iterations",
        "20",
        "--seed",
        "0",
        "--output",
        cents.to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    for key in ["mse", "iterations", "counts", "device", "ms_per_iteration"] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    let counts: u64 = v["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(counts, 600);

    let labels = dir.path().join("labels.npy");
    let o = lloyd(&[
        "encode",
        "--codebook",
        cents.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        labels.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!((e["mse"].as_f64().unwrap() - v["mse"].as_f64().unwrap()).abs() < 1e-6);

    let recon = dir.path().join("recon.npy");
    let o = lloyd(&[
        "decode",
        "--codebook",
        cents.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--output",
        recon.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (shape, back) = lloyd::npy::read_f32(&recon).unwrap();
    assert_eq!(shape, vec![600, 3]);
    let mse: f64 = data
        .iter()
        .zip(&back)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum::<f64>()
        / 600.0;
    assert!((mse - e["mse"].as_f64().unwrap()).abs() < 1e-5);
}

#[test]
fn bad_input_is_one_error_line_and_a_failure_code() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.npy");
    std::fs::write(&bad, b"garbage").unwrap();
    for args in [
        vec!["quantize", "--n", "0", "--device", "cpu"],
        vec!["quantize", "--n", "5", "--samples", "3", "--device", "cpu"],
        vec![
            "quantize", "--law", "normal", "--std", "-1", "--device", "cpu",
        ],
        vec!["kmeans", "--input", bad.to_str().unwrap(), "--k", "3"],
        vec!["kmeans", "--input", "/nonexistent/data.npy", "--k", "3"],
        vec!["quantize", "--n", "not-a-number"],
        vec![
            "encode",
            "--codebook",
            bad.to_str().unwrap(),
            "--input",
            bad.to_str().unwrap(),
            "--output",
            "x.npy",
        ],
    ] {
        let o = lloyd(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn gpu_json_names_the_adapter() {
    let Some(_) = common::gpu::gpu() else { return };
    let o = lloyd(&[
        "quantize",
        "--n",
        "4",
        "--samples",
        "10000",
        "--iterations",
        "5",
        "--device",
        "gpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let name = lloyd::list_adapters()[0].name.clone();
    assert!(v["device"].as_str().unwrap().contains(&name), "{v}");
    let o = lloyd(&["devices", "--json"]);
    assert!(o.status.success());
    let list: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(list[0]["name"], name);
}

#[test]
fn pq_train_encode_decode_on_npy_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::gaussian(2000, 8, 3);
    let input = dir.path().join("data.npy");
    lloyd::npy::write_f32(&input, &[2000, 8], &data).unwrap();
    let p = |s: &str| dir.path().join(s).to_str().unwrap().to_string();
    let o = lloyd(&[
        "pq",
        "train",
        "--input",
        &p("data.npy"),
        "--m",
        "4",
        "--bits",
        "4",
        "--output",
        &p("pq.npy"),
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let o = lloyd(&[
        "pq",
        "encode",
        "--codebook",
        &p("pq.npy"),
        "--input",
        &p("data.npy"),
        "--output",
        &p("codes.npy"),
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(e["mse"], v["mse"]);
    let o = lloyd(&[
        "pq",
        "decode",
        "--codebook",
        &p("pq.npy"),
        "--codes",
        &p("codes.npy"),
        "--output",
        &p("recon.npy"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (shape, recon) = lloyd::npy::read_f32(p("recon.npy")).unwrap();
    assert_eq!(shape, vec![2000, 8]);
    let mse: f64 = data
        .iter()
        .zip(&recon)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum::<f64>()
        / 2000.0;
    assert!((mse - v["mse"].as_f64().unwrap()).abs() < 1e-5);
    let o = lloyd(&[
        "pq",
        "train",
        "--input",
        &p("data.npy"),
        "--m",
        "3",
        "--output",
        &p("x.npy"),
        "--device",
        "cpu",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not divisible by m = 3"));
}

/// `--init FILE.npy` starts from the file's centroids: the fit equals the library's from the
/// same start, and a file of the wrong shape is one error line.
#[test]
fn kmeans_starts_from_a_file_of_centroids() {
    let dir = std::env::temp_dir().join(format!("lloyd-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = common::blobs(600, 3, 4, 11);
    let (x, c, bad) = (dir.join("x.npy"), dir.join("c.npy"), dir.join("bad.npy"));
    lloyd::npy::write_f32(&x, &[600, 3], &data).unwrap();
    let init: Vec<f32> = data[..4 * 3].to_vec();
    lloyd::npy::write_f32(&c, &[4, 3], &init).unwrap();
    lloyd::npy::write_f32(&bad, &[4, 2], &data[..8]).unwrap();
    let out = dir.join("out.npy");
    let args = |init: &std::path::Path| {
        lloyd(&[
            "kmeans",
            "--input",
            x.to_str().unwrap(),
            "--k",
            "4",
            "--init",
            init.to_str().unwrap(),
            "--device",
            "cpu",
            "--output",
            out.to_str().unwrap(),
            "--quiet",
        ])
    };
    let o = args(&c);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fit = lloyd::KMeans::new(4)
        .init(lloyd::Init::given(&init))
        .device(lloyd::Device::Cpu)
        .fit(&data, 3)
        .unwrap();
    let (_, got) = lloyd::npy::read_f64(&out).unwrap();
    assert_eq!(&got[..], fit.codebook.centroids());
    let o = args(&bad);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("dimension 2"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `encode --distances` writes the (n, k) distances beside the labels.
#[test]
fn encode_writes_distances() {
    let dir = std::env::temp_dir().join(format!("lloyd-dist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (x, c) = (dir.join("x.npy"), dir.join("c.npy"));
    let (l, d) = (dir.join("l.npy"), dir.join("d.npy"));
    lloyd::npy::write_f32(&x, &[3, 1], &[0.0, 1.0, 5.0]).unwrap();
    lloyd::npy::write_f32(&c, &[2, 1], &[0.0, 4.0]).unwrap();
    let p = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let o = lloyd(&[
        "encode",
        "--codebook",
        &p(&c),
        "--input",
        &p(&x),
        "--output",
        &p(&l),
        "--distances",
        &p(&d),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (shape, v) = lloyd::npy::read_f64(&d).unwrap();
    assert_eq!(shape, vec![3, 2]);
    assert_eq!(v, vec![0.0, 4.0, 1.0, 3.0, 5.0, 1.0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `kmeans --json` and `quantize --json` carry the per-iteration history, in the same shape.
#[test]
fn json_carries_the_history() {
    let o = lloyd(&[
        "quantize",
        "--n",
        "4",
        "--samples",
        "2000",
        "--iterations",
        "3",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let q: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let h = q["history"].as_array().unwrap();
    assert_eq!(h.len(), 3);
    for key in [
        "iteration",
        "mse",
        "distortion",
        "seconds",
        "empty_cells_split",
    ] {
        assert!(h[0].get(key).is_some(), "{key} in {}", h[0]);
    }
    let dir = std::env::temp_dir().join(format!("lloyd-hist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = dir.join("x.npy");
    lloyd::npy::write_f32(&x, &[400, 2], &common::blobs(400, 2, 3, 1)).unwrap();
    let o = lloyd(&[
        "kmeans",
        "--input",
        x.to_str().unwrap(),
        "--k",
        "3",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let k: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let kh = k["history"].as_array().unwrap();
    assert_eq!(kh.len() as u64, k["iterations"].as_u64().unwrap());
    assert!(k["converged"].is_boolean());
    assert_eq!(
        kh[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        h[0].as_object().unwrap().keys().collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `quantize-nd --json` has every key `quantize --json` has, centroids as rows of d values.
#[test]
fn quantize_nd_json_has_the_keys_of_quantize() {
    let run = |args: &[&str]| -> serde_json::Value {
        let o = lloyd(args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    let one = run(&[
        "quantize",
        "--n",
        "4",
        "--samples",
        "2000",
        "--iterations",
        "2",
        "--device",
        "cpu",
        "--json",
    ]);
    let nd = run(&[
        "quantize-nd",
        "--d",
        "3",
        "--n",
        "4",
        "--samples",
        "2000",
        "--iterations",
        "2",
        "--device",
        "cpu",
        "--json",
    ]);
    for key in one.as_object().unwrap().keys() {
        assert!(nd.get(key).is_some(), "quantize-nd lacks `{key}`: {nd}");
    }
    assert_eq!(nd["d"], 3);
    let rows = nd["centroids"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.as_array().unwrap().len() == 3));
    assert!(nd["converged"].is_boolean());
}

/// CLVQ's step sequence and batch come from the command line; bad ones are one error line.
#[test]
fn clvq_steps_and_batch_from_the_command_line() {
    let run = |extra: &[&str]| {
        let mut args = vec![
            "quantize",
            "--method",
            "clvq",
            "--n",
            "4",
            "--samples",
            "20000",
            "--device",
            "cpu",
            "--json",
        ];
        args.extend_from_slice(extra);
        lloyd(&args)
    };
    let a = run(&["--clvq-batch", "16", "--clvq-step", "0.05"]);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let b = run(&["--clvq-batch", "16", "--clvq-a", "8", "--clvq-b", "0.5"]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_ne!(stdout(&a), stdout(&b), "the options change the run");
    for bad in [
        &["--clvq-batch", "0"][..],
        &["--clvq-a", "-1"],
        &["--clvq-step", "2"],
    ] {
        let o = run(bad);
        assert!(!o.status.success(), "{bad:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{bad:?}: {err}");
    }
}

/// Streaming from the command line: bad sizes, and what a streamed fit cannot do, are one
/// error line each; a tiny budget still fits (three rows a chunk).
#[test]
fn streamed_kmeans_options() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.npy");
    let data = common::blobs(300, 2, 3, 4);
    lloyd::npy::write_f32(&input, &[300, 2], &data).unwrap();
    let weights = dir.path().join("w.npy");
    lloyd::npy::write_f32(&weights, &[300], &[1.0; 300]).unwrap();
    let x = input.to_str().unwrap();
    for (extra, needle) in [
        (vec!["--max-memory", "0"], "at least one byte"),
        (vec!["--max-memory", "lots"], "is not a size"),
        (
            vec!["--max-memory", "1K", "--weights", weights.to_str().unwrap()],
            "--weights",
        ),
        (
            vec!["--max-memory", "1K", "--init", "kmeans++"],
            "k-means++",
        ),
    ] {
        let mut args = vec!["kmeans", "--input", x, "--k", "3", "--device", "cpu", "-q"];
        args.extend(extra.iter().copied());
        let o = lloyd(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    let o = lloyd(&[
        "kmeans",
        "--input",
        x,
        "--k",
        "3",
        "--device",
        "cpu",
        "-q",
        "--json",
        "--max-memory",
        "1K",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = stdout(&o);
    assert!(
        s.contains("\"streamed\":true") && s.contains("\"chunk_rows\":3"),
        "{s}"
    );
}

/// `kmeans --minibatch B`: mini-batch K-means over the file, a final pass for the mse and
/// the labels; what it cannot combine with is one error line.
#[test]
fn minibatch_kmeans_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.npy");
    let data = common::blobs(4000, 3, 5, 2);
    lloyd::npy::write_f32(&input, &[4000, 3], &data).unwrap();
    let labels = dir.path().join("l.npy");
    let x = input.to_str().unwrap();
    let common = ["kmeans", "--input", x, "--k", "5", "--device", "cpu", "-q"];
    let mut args = common.to_vec();
    args.extend(["--minibatch", "256", "--iterations", "3", "--json"]);
    args.extend(["--labels", labels.to_str().unwrap()]);
    let o = lloyd(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["points_seen"], 12000);
    assert_eq!(lloyd::npy::read_labels(&labels).unwrap().1.len(), 4000);
    let mut full = common.to_vec();
    full.extend(["--init", "kmeans++", "--json"]);
    let lloyd_fit: serde_json::Value = serde_json::from_str(&stdout(&lloyd(&full))).unwrap();
    let (mb, ll) = (
        v["mse"].as_f64().unwrap(),
        lloyd_fit["mse"].as_f64().unwrap(),
    );
    assert!(mb < 1.1 * ll, "mini-batch {mb} against Lloyd's {ll}");
    for extra in [
        ["--spherical", ""],
        ["--n-init", "2"],
        ["--init", "kmeans||"],
    ] {
        let mut args = common.to_vec();
        args.extend(["--minibatch", "256"]);
        args.extend(extra.iter().filter(|s| !s.is_empty()));
        let o = lloyd(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(err.contains("--minibatch"), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
