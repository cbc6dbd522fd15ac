//! The `lloyd` command line: optimal quantizers of 1-D laws, K-means codebooks on `.npy`
//! files, encoding and decoding.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use lloyd::{
    Clvq, Codebook, Deterministic1d, Device, Error, Init, IterationStats, KMeans, Law, Lloyd1d,
    LloydNd, Observer, PqCodebook, PqCodes, ProductQuantizer, npy,
};

#[derive(Parser)]
#[command(
    name = "lloyd",
    version,
    about = "Optimal quantizers and K-means codebooks (Lloyd's method) on the CPU or a GPU"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The optimal quantizer of a 1-D law (randomized Lloyd method) or of 1-D samples.
    Quantize(QuantizeArgs),
    /// The optimal quantizer of N(0, I_d) (or d i.i.d. copies of a law) in dimension d.
    QuantizeNd(QuantizeNdArgs),
    /// K-means codebook of the rows of a 2-D .npy array.
    Kmeans(KmeansArgs),
    /// Nearest-centroid labels of the rows of a .npy array.
    Encode(EncodeArgs),
    /// Centroids named by a .npy array of labels.
    Decode(DecodeArgs),
    /// Product quantization: train, encode, decode.
    #[command(subcommand)]
    Pq(PqCommand),
    /// The GPU adapters wgpu finds (index, backend, type, name, driver).
    Devices {
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Method1d {
    /// Randomized Lloyd on M samples.
    Randomized,
    /// Closed-form cells, Newton–Raphson with Levenberg–Marquardt damping (built-in laws).
    Exact,
    /// Competitive learning (stochastic gradient), M steps.
    Clvq,
}

#[derive(clap::Args)]
struct QuantizeNdArgs {
    /// Dimension d.
    #[arg(long, default_value_t = 2)]
    d: usize,
    /// Number of centroids N.
    #[arg(long, default_value_t = 16)]
    n: usize,
    /// The law of each coordinate.
    #[arg(long, value_enum, default_value = "normal")]
    law: LawName,
    /// Samples M (per iteration with --fresh).
    #[arg(long, default_value_t = 100_000)]
    samples: usize,
    /// Lloyd iterations.
    #[arg(long, default_value_t = 50)]
    iterations: usize,
    /// Draw fresh samples at every iteration.
    #[arg(long)]
    fresh: bool,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write a picture of the cells (d = 2) to this SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand)]
enum PqCommand {
    /// Train m codebooks of 2^bits centroids on the rows of a (n, d) .npy.
    Train(PqTrainArgs),
    /// Codes (n, m) of the rows of a .npy (uint8 up to 8 bits, uint16 above).
    Encode(PqEncodeArgs),
    /// Vectors (n, d) from codes.
    Decode(PqDecodeArgs),
}

#[derive(clap::Args)]
struct PqTrainArgs {
    /// Data: a float .npy of shape (n, d).
    #[arg(long)]
    input: PathBuf,
    /// Sub-spaces (must divide d).
    #[arg(long)]
    m: usize,
    /// Bits per code (1 to 16).
    #[arg(long, default_value_t = 8)]
    bits: u32,
    /// Lloyd iterations per sub-space.
    #[arg(long, default_value_t = 25)]
    iterations: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write the codebooks (float32 .npy, shape (m, 2^bits, d/m)).
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct PqEncodeArgs {
    /// The codebooks written by `lloyd pq train`.
    #[arg(long)]
    codebook: PathBuf,
    /// The vectors (.npy, shape (n, d)).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the codes.
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct PqDecodeArgs {
    /// The codebooks written by `lloyd pq train`.
    #[arg(long)]
    codebook: PathBuf,
    /// The codes (.npy, uint8/uint16, shape (n, m)).
    #[arg(long)]
    codes: PathBuf,
    /// Where to write the vectors (float32 .npy, shape (n, d)).
    #[arg(long)]
    output: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum LawName {
    Normal,
    Uniform,
    Exponential,
    Lognormal,
}

#[derive(clap::Args)]
struct Common {
    /// cpu, gpu, auto, gpu:INDEX or gpu:NAME.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    device: Device,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_device(s: &str) -> Result<Device, String> {
    s.parse()
}

#[derive(clap::Args)]
struct QuantizeArgs {
    /// The law to quantize.
    #[arg(long, value_enum, default_value = "normal")]
    law: LawName,
    /// Normal: mean.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    mean: f64,
    /// Normal: standard deviation.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    std: f64,
    /// Uniform: lower end.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    low: f64,
    /// Uniform: upper end.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    high: f64,
    /// Exponential: rate.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    rate: f64,
    /// Log-normal: mean of the logarithm.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    mu: f64,
    /// Log-normal: standard deviation of the logarithm.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    sigma: f64,
    /// Randomized Lloyd (default), the exact closed-form optimum, or CLVQ.
    #[arg(long, value_enum, default_value = "randomized")]
    method: Method1d,
    /// Quantize these 1-D samples (.npy) instead of a law.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Number of centroids N.
    #[arg(long, default_value_t = 10)]
    n: usize,
    /// Number of samples M.
    #[arg(long, default_value_t = 1_000_000)]
    samples: usize,
    /// Most Lloyd iterations.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Relative decrease of the distortion under which to stop.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    tolerance: f64,
    /// Seed of the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(Clone, Copy, ValueEnum)]
enum InitName {
    Random,
    #[value(name = "kmeans++")]
    KmeansPlusPlus,
}

#[derive(clap::Args)]
struct KmeansArgs {
    /// Data: a float32/float64 .npy of shape (n, d).
    #[arg(long)]
    input: PathBuf,
    /// Number of centroids.
    #[arg(long)]
    k: usize,
    /// Most Lloyd iterations.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Relative decrease of the error under which to stop.
    #[arg(long, default_value_t = 1e-4, allow_negative_numbers = true)]
    tolerance: f64,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Initialisation.
    #[arg(long, value_enum, default_value = "random")]
    init: InitName,
    /// Per-point weights: a .npy of shape (n,).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Where to write the centroids (float32 .npy, shape (k, d)).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Where to write the labels (uint32 .npy, shape (n,)).
    #[arg(long)]
    labels: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct EncodeArgs {
    /// The codebook (.npy, shape (k, d)).
    #[arg(long)]
    codebook: PathBuf,
    /// The vectors (.npy, shape (n, d)).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the labels (uint32 .npy).
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct DecodeArgs {
    /// The codebook (.npy, shape (k, d)).
    #[arg(long)]
    codebook: PathBuf,
    /// The labels (integer .npy).
    #[arg(long)]
    labels: PathBuf,
    /// Where to write the vectors (float32 .npy, shape (n, d)).
    #[arg(long)]
    output: PathBuf,
    /// Accepted for symmetry: decoding is a gather, done on the host whatever the device.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    device: Device,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line, like every other error of this program; `--help` has the rest.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{} (see --help)", first.trim());
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        None => quantize(&QuantizeArgs::parse_default()),
        Some(Command::Quantize(a)) => quantize(&a),
        Some(Command::QuantizeNd(a)) => quantize_nd(&a),
        Some(Command::Kmeans(a)) => kmeans(&a),
        Some(Command::Encode(a)) => encode(&a),
        Some(Command::Decode(a)) => decode(&a),
        Some(Command::Devices { json }) => devices(json),
        Some(Command::Pq(PqCommand::Train(a))) => pq_train(&a),
        Some(Command::Pq(PqCommand::Encode(a))) => pq_encode(&a),
        Some(Command::Pq(PqCommand::Decode(a))) => pq_decode(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

impl QuantizeArgs {
    /// The main job's parameters: the 10-point quantizer of N(0, 1).
    fn parse_default() -> Self {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            q: QuantizeArgs,
        }
        Wrap::parse_from(["lloyd"]).q
    }

    /// The default parameters with another law.
    fn parse_default_with(law: LawName) -> Self {
        QuantizeArgs {
            law,
            ..Self::parse_default()
        }
    }

    fn law(&self) -> Law {
        match self.law {
            LawName::Normal => Law::Normal {
                mean: self.mean,
                std: self.std,
            },
            LawName::Uniform => Law::Uniform {
                low: self.low,
                high: self.high,
            },
            LawName::Exponential => Law::Exponential { rate: self.rate },
            LawName::Lognormal => Law::LogNormal {
                mu: self.mu,
                sigma: self.sigma,
            },
        }
    }
}

/// A progress bar on standard error, hidden when it is not a terminal or with --quiet.
fn progress(total: usize, quiet: bool) -> (ProgressBar, Observer) {
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} iterations  {msg}  [{elapsed}]")
            .expect("static template"),
    );
    let b = bar.clone();
    let observer: Observer = Arc::new(move |s: &IterationStats| {
        b.inc(1);
        b.set_message(format!("mse {:.6e}", s.mse));
    });
    (bar, observer)
}

fn quantize(a: &QuantizeArgs) -> Result<(), Error> {
    let (bar, observer) = progress(a.iterations, a.common.quiet);
    let params = Lloyd1d::new(a.n)
        .samples(a.samples)
        .iterations(a.iterations)
        .tolerance(a.tolerance)
        .seed(a.seed)
        .device(a.common.device.clone())
        .on_iteration(observer);
    let (q, source, samples_used) = match (&a.input, a.method) {
        (None, Method1d::Exact) => (
            Deterministic1d::new(a.n)
                .iterations(a.iterations.max(1000))
                .fit(a.law())?,
            format!("{:?}", a.law()),
            0,
        ),
        (None, Method1d::Clvq) => (
            Clvq::new(a.n)
                .steps(a.samples)
                .seed(a.seed)
                .device(a.common.device.clone())
                .fit_law(a.law())?,
            format!("{:?}", a.law()),
            a.samples,
        ),
        (Some(_), Method1d::Exact | Method1d::Clvq) => {
            return Err(Error::InvalidLaw(
                "--method exact and clvq quantize a law, not --input samples".into(),
            ));
        }
        _ => match &a.input {
            Some(path) => {
                let (_, data) = npy::read_f32(path)?;
                let samples: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
                (
                    params.fit_samples(&samples)?,
                    path.display().to_string(),
                    samples.len(),
                )
            }
            None => (
                params.fit_law(a.law())?,
                format!("{:?}", a.law()),
                a.samples,
            ),
        },
    };
    bar.finish_and_clear();
    if a.common.json {
        let out = json!({
            "law": source,
            "n": q.len(),
            "samples": samples_used,
            "seed": a.seed,
            "centroids": q.centroids,
            "probabilities": q.probabilities,
            "distortion": q.distortion,
            "mse": q.mse,
            "iterations": q.iterations_run,
            "converged": q.converged,
            "empty_cells_split": q.empty_cells_split,
            "device": q.device,
            "ms_per_iteration": q.ms_per_iteration(),
            "setup_ms": q.setup_seconds * 1e3,
        });
        println!("{out}");
    } else {
        println!("Optimal {}-point quantizer of {source}", q.len());
        println!("{:>5}  {:>14}  {:>12}", "i", "centroid", "probability");
        for (i, (c, p)) in q.centroids.iter().zip(&q.probabilities).enumerate() {
            println!("{:>5}  {:>14.8}  {:>12.8}", i + 1, c, p);
        }
        println!(
            "distortion (1/2M)Σ|x-x̂|² = {:.8e}   mse = {:.8e}",
            q.distortion, q.mse
        );
        println!(
            "{} iterations on {}, {:.3} ms per iteration (median), setup {:.1} ms",
            q.iterations_run,
            q.device,
            q.ms_per_iteration(),
            q.setup_seconds * 1e3
        );
    }
    Ok(())
}

fn quantize_nd(a: &QuantizeNdArgs) -> Result<(), Error> {
    let law = QuantizeArgs::parse_default_with(a.law).law();
    let q = LloydNd::new(a.n, a.d)
        .samples(a.samples)
        .iterations(a.iterations)
        .fresh_samples(a.fresh)
        .seed(a.seed)
        .device(a.common.device.clone())
        .fit_law(law)?;
    if let Some(path) = &a.svg {
        q.save_svg(path)?;
    }
    if a.common.json {
        println!("{}", serde_json::to_string(&q).expect("plain data"));
    } else {
        println!(
            "Optimal {}-point quantizer of {:?} in dimension {}",
            a.n, law, a.d
        );
        for i in 0..a.n {
            let c: Vec<String> = q.centroid(i).iter().map(|v| format!("{v:>10.6}")).collect();
            println!(
                "{:>5}  {}  p = {:.6}",
                i + 1,
                c.join(" "),
                q.probabilities[i]
            );
        }
        println!(
            "distortion {:.8e}   mse {:.8e}   {} iterations on {}{}",
            q.distortion,
            q.mse,
            q.iterations_run,
            q.device,
            a.svg
                .as_ref()
                .map(|p| format!("; cells in {}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Reads a 2-D (or 1-D, d = 1) float .npy as (data, d).
fn read_matrix(path: &PathBuf) -> Result<(Vec<f32>, usize), Error> {
    let (shape, data) = npy::read_f32(path)?;
    let dim = match shape.as_slice() {
        [_] => 1,
        [_, d] => *d,
        s => {
            return Err(Error::Npy {
                path: path.clone(),
                reason: format!("expected shape (n, d), found {s:?}"),
            });
        }
    };
    Ok((data, dim))
}

fn kmeans(a: &KmeansArgs) -> Result<(), Error> {
    let (data, dim) = read_matrix(&a.input)?;
    let (bar, observer) = progress(a.iterations, a.common.quiet);
    let params = KMeans::new(a.k)
        .iterations(a.iterations)
        .tolerance(a.tolerance)
        .seed(a.seed)
        .init(match a.init {
            InitName::Random => Init::RandomPoints,
            InitName::KmeansPlusPlus => Init::KMeansPlusPlus,
        })
        .device(a.common.device.clone())
        .on_iteration(observer);
    let fit = match &a.weights {
        Some(p) => {
            let (_, w) = npy::read_f32(p)?;
            params.fit_weighted(&data, dim, &w)?
        }
        None => params.fit(&data, dim)?,
    };
    bar.finish_and_clear();
    if let Some(out) = &a.output {
        fit.codebook.save_npy(out)?;
    }
    if let Some(out) = &a.labels {
        npy::write_labels(out, &fit.labels)?;
    }
    if a.common.json {
        let out = json!({
            "k": a.k,
            "n": fit.labels.len(),
            "d": dim,
            "mse": fit.mse,
            "distortion": fit.distortion,
            "inertia": fit.inertia,
            "iterations": fit.iterations_run,
            "converged": fit.converged,
            "empty_cells_split": fit.empty_cells_split,
            "counts": fit.counts,
            "device": fit.device,
            "ms_per_iteration": fit.ms_per_iteration(),
            "setup_ms": fit.setup_seconds * 1e3,
        });
        println!("{out}");
    } else {
        println!(
            "k-means: n = {}, d = {dim}, k = {}: mse {:.6e} after {} iterations on {} ({:.3} ms per iteration, {} empty cells split){}",
            fit.labels.len(),
            a.k,
            fit.mse,
            fit.iterations_run,
            fit.device,
            fit.ms_per_iteration(),
            fit.empty_cells_split,
            a.output
                .as_ref()
                .map(|p| format!("; centroids in {}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn encode(a: &EncodeArgs) -> Result<(), Error> {
    let cb = Codebook::load_npy(&a.codebook)?;
    let (data, dim) = read_matrix(&a.input)?;
    if dim != cb.dim() {
        return Err(Error::DimensionMismatch {
            expected: cb.dim(),
            got: dim,
        });
    }
    let (labels, mse, device) = cb.encode_on(&data, &a.common.device)?;
    npy::write_labels(&a.output, &labels)?;
    if a.common.json {
        println!(
            "{}",
            json!({"n": labels.len(), "k": cb.k(), "d": dim, "mse": mse, "device": device})
        );
    } else {
        println!(
            "encoded {} vectors with {} centroids on {device}: mse {:.6e}; labels in {}",
            labels.len(),
            cb.k(),
            mse,
            a.output.display()
        );
    }
    Ok(())
}

fn pq_train(a: &PqTrainArgs) -> Result<(), Error> {
    let (data, dim) = read_matrix(&a.input)?;
    let start = std::time::Instant::now();
    let pq = ProductQuantizer::new(a.m, a.bits)
        .iterations(a.iterations)
        .seed(a.seed)
        .device(a.common.device.clone())
        .train(&data, dim)?;
    let train_ms = start.elapsed().as_secs_f64() * 1e3;
    pq.save_npy(&a.output)?;
    let mse = pq.mse(&data)?;
    if a.common.json {
        let out = json!({"n": data.len() / dim, "d": dim, "m": a.m, "bits": a.bits, "mse": mse,
            "sub_mse": pq.sub_mse(&data)?, "device": pq.trained_on(), "train_ms": train_ms});
        println!("{out}");
    } else {
        println!(
            "product quantizer m = {}, {} bits on {}: mse {mse:.6e}, trained in {train_ms:.0} ms; codebooks in {}",
            a.m,
            a.bits,
            pq.trained_on(),
            a.output.display()
        );
    }
    Ok(())
}

fn pq_encode(a: &PqEncodeArgs) -> Result<(), Error> {
    let pq = PqCodebook::load_npy(&a.codebook)?.with_device(a.common.device.clone());
    let (data, dim) = read_matrix(&a.input)?;
    if dim != pq.dim() {
        return Err(Error::DimensionMismatch {
            expected: pq.dim(),
            got: dim,
        });
    }
    let codes = pq.encode(&data)?;
    codes.save_npy(&a.output, pq.m())?;
    let mse = pq.mse(&data)?;
    if a.common.json {
        println!(
            "{}",
            json!({"n": data.len() / dim, "m": pq.m(), "bits": pq.bits(), "mse": mse})
        );
    } else {
        println!(
            "encoded {} vectors: mse {mse:.6e}; codes in {}",
            data.len() / dim,
            a.output.display()
        );
    }
    Ok(())
}

fn pq_decode(a: &PqDecodeArgs) -> Result<(), Error> {
    let pq = PqCodebook::load_npy(&a.codebook)?;
    let (codes, m) = PqCodes::load_npy(&a.codes)?;
    if m != pq.m() {
        return Err(Error::DimensionMismatch {
            expected: pq.m(),
            got: m,
        });
    }
    let out = pq.decode(&codes)?;
    let n = codes.len() / m;
    npy::write_f32(&a.output, &[n, pq.dim()], &out)?;
    println!("decoded {n} codes into {}", a.output.display());
    Ok(())
}

fn devices(as_json: bool) -> Result<(), Error> {
    let list = lloyd::list_adapters();
    if as_json {
        println!("{}", serde_json::to_string(&list).expect("plain data"));
        return Ok(());
    }
    if list.is_empty() {
        println!("no GPU adapter found; --device cpu (and auto) run on the CPU backend");
    }
    for a in list {
        println!(
            "gpu:{}  {:<8} {:<14} {}  [{}]",
            a.index, a.backend, a.device_type, a.name, a.driver
        );
    }
    println!(
        "cpu    the CPU backend ({} threads)",
        rayon::current_num_threads()
    );
    Ok(())
}

fn decode(a: &DecodeArgs) -> Result<(), Error> {
    let cb = Codebook::load_npy(&a.codebook)?;
    let (_, labels) = npy::read_labels(&a.labels)?;
    let out = cb.decode(&labels)?;
    npy::write_f32(&a.output, &[labels.len(), cb.dim()], &out)?;
    println!(
        "decoded {} labels into {}",
        labels.len(),
        a.output.display()
    );
    Ok(())
}
