//! Greedy k-means++ against scikit-learn's default start (greedy k-means++, one run) on
//! scikit-learn's bundled data sets: lloyd's mean final error over five seeds must be within
//! 2 % of scikit-learn's, measured live. Skipped, saying why, without Python and
//! scikit-learn (`.ci/run` installs them).

use std::process::Command;

use lloyd::{Device, Init, KMeans};

const SCRIPT: &str = r#"
import sys, json
import numpy as np
from sklearn import datasets
from sklearn.cluster import KMeans
out = {}
for name, k in [("wine", 64), ("breast_cancer", 256), ("digits", 256)]:
    x = getattr(datasets, "load_" + name)().data.astype(np.float64)
    np.save(sys.argv[1] + "/" + name + ".npy", x)
    mse = [KMeans(n_clusters=k, random_state=s).fit(x).inertia_ / len(x) for s in range(5)]
    out[name] = [k, float(np.mean(mse))]
print(json.dumps(out))
"#;

#[test]
fn kmeans_plus_plus_and_kmeans_parallel_starts_are_as_good_as_scikit_learns() {
    let dir = std::env::temp_dir().join(format!("lloyd-kpp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = Command::new("python3")
        .args(["-c", SCRIPT, dir.to_str().unwrap()])
        .output();
    let out = match run {
        Ok(o) if o.status.success() => String::from_utf8(o.stdout).unwrap(),
        Ok(o) => {
            eprintln!(
                "k-means++ quality test skipped: scikit-learn did not run ({})",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            return;
        }
        Err(e) => {
            eprintln!("k-means++ quality test skipped: no python3 ({e})");
            return;
        }
    };
    let reference: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for (name, row) in reference.as_object().unwrap() {
        let k = row[0].as_u64().unwrap() as usize;
        let sklearn = row[1].as_f64().unwrap();
        let (values, dim) = lloyd::npy::read_matrix(dir.join(format!("{name}.npy"))).unwrap();
        let data = values.to_f64();
        // Greedy k-means++, and k-means‖ (the streamed fits' start), held to the same bar.
        for (start, init) in [
            ("greedy k-means++", Init::KMeansPlusPlus),
            ("k-means||", Init::kmeans_parallel()),
        ] {
            let mean: f64 = (0..5u64)
                .map(|seed| {
                    KMeans::new(k)
                        .init(init.clone())
                        .seed(seed)
                        .iterations(300)
                        .tolerance(0.0)
                        .device(Device::Cpu)
                        .fit(&data, dim)
                        .unwrap()
                        .mse
                })
                .sum::<f64>()
                / 5.0;
            eprintln!("{name}, k = {k}: lloyd {start} {mean:.2}, scikit-learn {sklearn:.2}");
            assert!(
                mean <= 1.02 * sklearn,
                "{name}, k = {k}: lloyd {start} {mean} against scikit-learn's {sklearn}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
