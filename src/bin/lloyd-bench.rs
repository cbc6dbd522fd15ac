//! `lloyd-bench`: the field's reference benchmark of one Lloyd iteration, CPU against every
//! GPU adapter (and any external command), written as CSV, a Markdown summary and SVG plots.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use lloyd::stepper::Stepper;
use lloyd::{Device, Law, ProductQuantizer};
use lloyd::{GpuOptions, GpuTile};

#[path = "lloyd_bench/plot.rs"]
mod plot;
#[path = "lloyd_bench/stats.rs"]
mod stats;

use stats::{Row, summarize};

#[derive(Parser)]
#[command(
    name = "lloyd-bench",
    about = "Time one Lloyd iteration on the CPU, every GPU and external commands"
)]
struct Args {
    /// A grid that finishes in under a minute on 2 cores.
    #[arg(long)]
    quick: bool,
    /// Devices: `all` (the CPU and every adapter), or a comma list of cpu, gpu, gpu:INDEX.
    #[arg(long, default_value = "all")]
    device: String,
    /// An external command printing `lloyd quantize --json`-style JSON; `--n N --samples M
    /// --iterations I --seed S` are appended. Repeatable.
    #[arg(long)]
    compare: Vec<String>,
    /// Numbers of centroids N (1-D).
    #[arg(long, value_delimiter = ',')]
    n: Option<Vec<usize>>,
    /// Numbers of samples M (1-D).
    #[arg(long, value_delimiter = ',')]
    m: Option<Vec<usize>>,
    /// Seeds.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Timed iterations per run (after the warm-up).
    #[arg(long)]
    iterations: Option<usize>,
    /// Iterations at the start of each fit, not timed (the first: its caches are cold).
    /// Every timed iteration then belongs to the same fit from its initial centroids, as
    /// a user's fit runs them: not a converged state.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// K-means points n.
    #[arg(long, value_delimiter = ',')]
    kmeans_n: Option<Vec<usize>>,
    /// K-means dimensions d.
    #[arg(long, value_delimiter = ',')]
    kmeans_d: Option<Vec<usize>>,
    /// K-means centroids k.
    #[arg(long, value_delimiter = ',')]
    kmeans_k: Option<Vec<usize>>,
    /// Output folder for bench.csv, summary.md and the SVG plots.
    #[arg(long, default_value = "bench-out")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// The GPU's f32 peak in TFLOP/s (an H100 SXM's is 66.9: 132 SMs x 128 lanes x 2 x
    /// 1.98 GHz); K-means rows then show their share of it.
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// What to run: any of lloyd1d, kmeans, pq.
    #[arg(long, value_delimiter = ',', default_value = "lloyd1d,kmeans,pq")]
    kinds: Vec<String>,
    /// GPU K-means: time each of these tile shapes of the d-D kernel (BPxBCxTMxTN, or `all`
    /// for every candidate) as its own method, instead of the default shape.
    #[arg(long, value_delimiter = ',')]
    tiles: Vec<String>,
}

/// A way to run an iteration: a lloyd device or an external command.
enum Method {
    Device(String, Device),
    External(String),
}

impl Method {
    fn name(&self) -> String {
        match self {
            Method::Device(name, _) => name.clone(),
            Method::External(cmd) => cmd.clone(),
        }
    }
}

fn methods(a: &Args) -> Result<Vec<Method>, String> {
    let mut out = Vec::new();
    let adapters = lloyd::list_adapters();
    let names: Vec<String> = if a.device == "all" {
        std::iter::once("cpu".to_string())
            .chain(adapters.iter().map(|x| format!("gpu:{}", x.index)))
            .collect()
    } else {
        a.device.split(',').map(|s| s.trim().to_string()).collect()
    };
    for n in names {
        let dev: Device = n.parse()?;
        let label = match &dev {
            Device::Cpu => "cpu".to_string(),
            Device::GpuAdapter(i) => adapters
                .get(*i)
                .map(|x| format!("gpu:{} {}", i, x.name))
                .ok_or(format!("no adapter {i}"))?,
            other => format!("{other}"),
        };
        out.push(Method::Device(label, dev));
    }
    out.extend(a.compare.iter().cloned().map(Method::External));
    Ok(out)
}

fn external(
    cmd: &str,
    n: usize,
    m: usize,
    iterations: usize,
    seed: u64,
) -> Result<(f64, f64), String> {
    let full = format!("{cmd} --n {n} --samples {m} --iterations {iterations} --seed {seed}");
    let o = Command::new("sh")
        .args(["-c", &full])
        .output()
        .map_err(|e| format!("{full}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "{full}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or(format!("{full}: no JSON"))?;
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{full}: {e}"))?;
    let ms = v["ms_per_iteration"]
        .as_f64()
        .ok_or(format!("{full}: no ms_per_iteration"))?;
    Ok((ms, v["setup_ms"].as_f64().unwrap_or(f64::NAN)))
}

/// Times the iterations of a fresh `iterations`-iteration fit after its first `warmup`, run as a fit runs
/// them: on the CPU each iteration alone (one wall-clock sample each, so the median is the
/// fit's median iteration); on a GPU queued in up to five batches with one read-back each
/// (one sample a batch: its time over its iterations). Every iteration gives a device
/// sample. Returns per-iteration wall and device ms.
fn time_steps(
    s: &mut Stepper,
    warmup: usize,
    iterations: usize,
    device: &Device,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    if warmup > 0 {
        s.run(warmup).map_err(|e| e.to_string())?;
    }
    // A fit of `iterations` in all.
    let iterations = iterations.saturating_sub(warmup).max(1);
    let batches = match device {
        Device::Cpu => iterations,
        _ => iterations.clamp(1, 5),
    };
    let mut wall = Vec::with_capacity(batches);
    let mut device = Vec::new();
    for b in 0..batches {
        let count = iterations / batches + usize::from(b < iterations % batches);
        let t = Instant::now();
        let steps = s.run(count.max(1)).map_err(|e| e.to_string())?;
        wall.push(t.elapsed().as_secs_f64() * 1e3 / steps.len() as f64);
        device.extend(
            steps
                .iter()
                .filter_map(|r| r.device_seconds)
                .map(|d| d * 1e3),
        );
    }
    Ok((wall, device))
}

fn run(a: &Args) -> Result<(), String> {
    let quick = a.quick;
    let ns = a.n.clone().unwrap_or(if quick {
        vec![10, 50, 200]
    } else {
        vec![10, 20, 50, 100, 200, 500]
    });
    let ms = a.m.clone().unwrap_or(if quick {
        vec![200_000]
    } else {
        vec![200_000, 500_000, 1_000_000]
    });
    let seeds = a
        .seeds
        .clone()
        .unwrap_or(if quick { vec![0, 1] } else { vec![0, 1, 2] });
    let iterations = a.iterations.unwrap_or(if quick { 10 } else { 100 });
    let kn = a.kmeans_n.clone().unwrap_or(if quick {
        vec![20_000]
    } else {
        vec![100_000, 1_000_000]
    });
    let kd = a
        .kmeans_d
        .clone()
        .unwrap_or(if quick { vec![16] } else { vec![32, 128] });
    let kk = a
        .kmeans_k
        .clone()
        .unwrap_or(if quick { vec![32] } else { vec![256, 1024] });
    let kmeans_iterations = if quick { 3 } else { 5 };
    let methods = methods(a)?;

    for kind in &a.kinds {
        if !["lloyd1d", "kmeans", "pq"].contains(&kind.as_str()) {
            return Err(format!(
                "--kinds: unknown kind `{kind}` (lloyd1d, kmeans, pq)"
            ));
        }
    }
    let wants = |kind: &str| a.kinds.iter().any(|k| k == kind);
    let ms = if wants("lloyd1d") { ms } else { Vec::new() };
    let kn = if wants("kmeans") { kn } else { Vec::new() };
    let options = GpuOptions::from_vars(|k| std::env::var(k).ok()).map_err(|e| e.to_string())?;
    let tiles: Vec<Option<GpuTile>> = if a.tiles.iter().any(|t| t == "all") {
        GpuOptions::tile_shapes().into_iter().map(Some).collect()
    } else if a.tiles.is_empty() {
        vec![options.tile]
    } else {
        a.tiles
            .iter()
            .map(|t| t.parse().map(Some).map_err(|e: lloyd::Error| e.to_string()))
            .collect::<Result<_, _>>()?
    };
    let jobs = methods.len() * (ns.len() * ms.len() * seeds.len() + kn.len() * kd.len() * kk.len());
    let bar = if a.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(jobs as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} [{elapsed}]")
            .expect("static template"),
    );

    let mut rows: Vec<Row> = Vec::new();
    for &m in &ms {
        for &seed in &seeds {
            let samples = Law::standard_normal()
                .sample(m, seed)
                .map_err(|e| e.to_string())?;
            for &n in &ns {
                for method in &methods {
                    bar.set_message(format!("1-D {} N={n} M={m} seed {seed}", method.name()));
                    let row = match method {
                        Method::Device(name, dev) => {
                            let t = Instant::now();
                            let mut s = Stepper::quantizer1d(samples.clone(), n, dev)
                                .map_err(|e| e.to_string())?;
                            let setup_ms = t.elapsed().as_secs_f64() * 1e3;
                            let (wall, device) = time_steps(&mut s, a.warmup, iterations, dev)?;
                            Row::new(name, "lloyd1d", n, m, 1, seed, setup_ms, &wall, &device)
                        }
                        Method::External(cmd) => {
                            let (ms_iter, setup_ms) = external(cmd, n, m, iterations, seed)?;
                            Row::new(cmd, "lloyd1d", n, m, 1, seed, setup_ms, &[ms_iter], &[])
                        }
                    };
                    rows.push(row);
                    bar.inc(1);
                }
            }
        }
    }
    for &n in &kn {
        for &d in &kd {
            let data: Vec<f32> = Law::standard_normal()
                .sample(n * d, 7)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|v| v as f32)
                .collect();
            for &k in &kk {
                for method in &methods {
                    bar.inc(1);
                    let Method::Device(name, dev) = method else {
                        continue;
                    };
                    let shapes = if matches!(dev, Device::Cpu) {
                        &[None][..]
                    } else {
                        &tiles[..]
                    };
                    for tile in shapes {
                        let label = match tile {
                            Some(t) => format!("{name} tile {t}"),
                            None => name.clone(),
                        };
                        bar.set_message(format!("k-means {label} n={n} d={d} k={k}"));
                        let t = Instant::now();
                        let choice = GpuOptions {
                            tile: *tile,
                            ..options
                        };
                        let mut s = Stepper::kmeans_with_options(&data, d, k, 0, &[], dev, &choice)
                            .map_err(|e| e.to_string())?;
                        let setup_ms = t.elapsed().as_secs_f64() * 1e3;
                        let (wall, device) = time_steps(&mut s, 1, kmeans_iterations, dev)?;
                        rows.push(Row::new(
                            &label, "kmeans", k, n, d, 0, setup_ms, &wall, &device,
                        ));
                    }
                }
            }
        }
    }
    // Product quantization: training time (m = 8 sub-spaces of 256 centroids) and encoding
    // throughput, reported per iteration of training and per 10^5 vectors encoded.
    let (pn, pd) = if quick { (5_000, 16) } else { (100_000, 32) };
    let pq_data: Vec<f32> = Law::standard_normal()
        .sample(pn * pd, 9)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|v| v as f32)
        .collect();
    for method in methods.iter().filter(|_| wants("pq")) {
        let Method::Device(name, dev) = method else {
            continue;
        };
        bar.set_message(format!("pq {name}"));
        let pq_iterations = if quick { 3 } else { 10 };
        let t = Instant::now();
        let pq = ProductQuantizer::new(8, 8)
            .iterations(pq_iterations)
            .device(dev.clone())
            .train(&pq_data, pd)
            .map_err(|e| e.to_string())?;
        let train_ms = t.elapsed().as_secs_f64() * 1e3;
        rows.push(Row::new(
            name,
            "pq_train",
            256,
            pn,
            pd,
            0,
            0.0,
            &[train_ms / pq_iterations as f64],
            &[],
        ));
        let t = Instant::now();
        pq.clone()
            .with_device(dev.clone())
            .encode(&pq_data)
            .map_err(|e| e.to_string())?;
        let per_1e5 = t.elapsed().as_secs_f64() * 1e3 * 1e5 / pn as f64;
        rows.push(Row::new(
            name,
            "pq_encode",
            256,
            pn,
            pd,
            0,
            0.0,
            &[per_1e5],
            &[],
        ));
    }
    bar.finish_and_clear();
    write_outputs(&a.out, &rows, a.peak_tflops)
}

fn write_outputs(out: &Path, rows: &[Row], peak_tflops: Option<f64>) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut csv = String::from(Row::CSV_HEADER);
    csv.push('\n');
    for r in rows {
        csv.push_str(&r.csv());
        csv.push('\n');
    }
    let write = |name: &str, text: &str| {
        std::fs::write(out.join(name), text)
            .map_err(|e| format!("{}: {e}", out.join(name).display()))
    };
    write("bench.csv", &csv)?;
    let summary = summarize(rows);
    let mut md = String::new();
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let _ = writeln!(md, "Machine: {machine}, {} threads", rayon_threads());
    for a in lloyd::list_adapters() {
        let _ = writeln!(
            md,
            "GPU adapter {}: {} ({}, {}, driver {})",
            a.index, a.name, a.backend, a.device_type, a.driver
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| method | kind | N or k | M or n | d | ms/iter (median over seeds) | spread (min–max) | GPU ms/iter | setup ms | GFLOP/s | % of peak |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for s in &summary {
        let rate = s.gflops();
        // The peak is a GPU's: CPU rows get no share of it.
        let share = rate
            .zip(peak_tflops)
            .filter(|_| !s.method.starts_with("cpu"))
            .map_or(String::new(), |(g, p)| {
                format!("{:.1}", 100.0 * g / (p * 1e3))
            });
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.4} | {:.4}–{:.4} | {} | {:.1} | {} | {} |",
            s.method,
            s.kind,
            s.n,
            s.m,
            s.d,
            s.median_ms,
            s.min_ms,
            s.max_ms,
            s.device_ms.map_or("".to_string(), |v| format!("{v:.4}")),
            s.setup_ms,
            rate.map_or(String::new(), |g| format!("{g:.1}")),
            share
        );
    }
    write("summary.md", &md)?;
    plot::time_vs_n(&out.join("time_vs_n.svg"), &summary)?;
    plot::ratio_vs_n(&out.join("ratio_vs_n.svg"), &summary)?;
    println!("{md}");
    println!(
        "wrote bench.csv, summary.md, time_vs_n.svg, ratio_vs_n.svg in {}",
        out.display()
    );
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
