//! The command line's arguments (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use lloyd::{Device, Law};

#[derive(Parser)]
#[command(
    name = "lloyd",
    version,
    about = "Optimal quantizers and K-means codebooks (Lloyd's method) on the CPU or a GPU"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
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
pub enum Method1d {
    /// Randomized Lloyd on M samples.
    Randomized,
    /// Closed-form cells, Newton–Raphson with Levenberg–Marquardt damping (built-in laws).
    Exact,
    /// Competitive learning (stochastic gradient), M steps.
    Clvq,
}

#[derive(clap::Args)]
pub struct QuantizeNdArgs {
    /// Dimension d.
    #[arg(long, default_value_t = 2)]
    pub d: usize,
    /// Number of centroids N.
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// The law of each coordinate.
    #[arg(long, value_enum, default_value = "normal")]
    pub law: LawName,
    /// Samples M (per iteration with --fresh).
    #[arg(long, default_value_t = 100_000)]
    pub samples: usize,
    /// Lloyd iterations.
    #[arg(long, default_value_t = 50)]
    pub iterations: usize,
    /// Draw fresh samples at every iteration.
    #[arg(long)]
    pub fresh: bool,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write a picture of the cells (d = 2) to this SVG file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Subcommand)]
pub enum PqCommand {
    /// Train m codebooks of 2^bits centroids on the rows of a (n, d) .npy.
    Train(PqTrainArgs),
    /// Codes (n, m) of the rows of a .npy (uint8 up to 8 bits, uint16 above).
    Encode(PqEncodeArgs),
    /// Vectors (n, d) from codes.
    Decode(PqDecodeArgs),
}

#[derive(clap::Args)]
pub struct PqTrainArgs {
    /// Data: a float .npy of shape (n, d).
    #[arg(long)]
    pub input: PathBuf,
    /// Sub-spaces (must divide d).
    #[arg(long)]
    pub m: usize,
    /// Bits per code (1 to 16).
    #[arg(long, default_value_t = 8)]
    pub bits: u32,
    /// Lloyd iterations per sub-space.
    #[arg(long, default_value_t = 25)]
    pub iterations: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the codebooks (float32 .npy, shape (m, 2^bits, d/m)).
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args)]
pub struct PqEncodeArgs {
    /// The codebooks written by `lloyd pq train`.
    #[arg(long)]
    pub codebook: PathBuf,
    /// The vectors (.npy, shape (n, d)).
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the codes.
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args)]
pub struct PqDecodeArgs {
    /// The codebooks written by `lloyd pq train`.
    #[arg(long)]
    pub codebook: PathBuf,
    /// The codes (.npy, uint8/uint16, shape (n, m)).
    #[arg(long)]
    pub codes: PathBuf,
    /// Where to write the vectors (float32 .npy, shape (n, d)).
    #[arg(long)]
    pub output: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LawName {
    Normal,
    Uniform,
    Exponential,
    Lognormal,
}

#[derive(clap::Args)]
pub struct Common {
    /// cpu, gpu, auto, gpu:INDEX or gpu:NAME.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: Device,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

impl Common {
    /// The GPU options the environment names (`LLOYD_GPU_TILE`, `LLOYD_GPU_LOCAL_SUMS`,
    /// `LLOYD_GPU_MAX_CHUNK_BYTES`): read here, by the binary, never by the library.
    pub fn gpu_options(&self) -> Result<lloyd::GpuOptions, lloyd::Error> {
        lloyd::GpuOptions::from_vars(|k| std::env::var(k).ok())
    }
}

pub fn parse_device(s: &str) -> Result<Device, String> {
    s.parse()
}

#[derive(clap::Args)]
pub struct QuantizeArgs {
    /// The law to quantize.
    #[arg(long, value_enum, default_value = "normal")]
    pub law: LawName,
    /// Normal: mean.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub mean: f64,
    /// Normal: standard deviation.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub std: f64,
    /// Uniform: lower end.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub low: f64,
    /// Uniform: upper end.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub high: f64,
    /// Exponential: rate.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub rate: f64,
    /// Log-normal: mean of the logarithm.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub mu: f64,
    /// Log-normal: standard deviation of the logarithm.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub sigma: f64,
    /// Randomized Lloyd (default), the exact closed-form optimum, or CLVQ.
    #[arg(long, value_enum, default_value = "randomized")]
    pub method: Method1d,
    /// Quantize these 1-D samples (.npy) instead of a law.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Number of centroids N.
    #[arg(long, default_value_t = 10)]
    pub n: usize,
    /// Number of samples M.
    #[arg(long, default_value_t = 1_000_000)]
    pub samples: usize,
    /// Most Lloyd iterations.
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// Relative decrease of the distortion under which to stop.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub tolerance: f64,
    /// Seed of the samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// CLVQ: samples per step (1, the default: the classic one-sample CLVQ).
    #[arg(long = "clvq-batch", default_value_t = 1)]
    pub clvq_batch: usize,
    /// CLVQ: the step sequence γₙ = a / (a + b n), a (default 4N).
    #[arg(long = "clvq-a", allow_negative_numbers = true)]
    pub clvq_a: Option<f64>,
    /// CLVQ: the step sequence's b (default π²/N²).
    #[arg(long = "clvq-b", allow_negative_numbers = true)]
    pub clvq_b: Option<f64>,
    /// CLVQ: a constant step in (0, 1] instead of the decreasing sequence.
    #[arg(long = "clvq-step", allow_negative_numbers = true, conflicts_with_all = ["clvq_a", "clvq_b"])]
    pub clvq_step: Option<f64>,
    #[command(flatten)]
    pub common: Common,
}

/// How `lloyd kmeans` starts: a named method, or the centroids of a `.npy` file.
#[derive(Clone, Debug)]
pub enum InitName {
    Random,
    /// Greedy k-means++ (scikit-learn's).
    KmeansPlusPlus,
    /// The plain k-means++, one candidate per step.
    KmeansPlusPlusPlain,
    /// k-means‖ (scalable k-means++: a few passes over the data).
    KmeansParallel,
    /// Centroids of shape (k, d) from a file.
    File(PathBuf),
}

/// `random`, `kmeans++`, `kmeans++-plain`, or the path of a `.npy` file of centroids.
/// A size in bytes: a number, optionally followed by K, M, G or T (powers of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        Some('T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let v: f64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a size (bytes, or a number with K, M, G or T)"))?;
    let bytes = v * (1u64 << shift) as f64;
    if !(1.0..1.8e19).contains(&bytes) {
        return Err(format!("'{s}': a size must be at least one byte"));
    }
    Ok(bytes as u64)
}

pub fn parse_init(s: &str) -> Result<InitName, String> {
    match s {
        "random" => Ok(InitName::Random),
        "kmeans++" => Ok(InitName::KmeansPlusPlus),
        "kmeans++-plain" => Ok(InitName::KmeansPlusPlusPlain),
        "kmeans||" | "kmeans-parallel" => Ok(InitName::KmeansParallel),
        path if path.ends_with(".npy") || std::path::Path::new(path).exists() => {
            Ok(InitName::File(PathBuf::from(path)))
        }
        _ => Err(format!(
            "unknown initialisation `{s}`: use random, kmeans++, kmeans++-plain, kmeans|| or a \
             .npy file of shape (k, d)"
        )),
    }
}

#[derive(clap::Args)]
pub struct KmeansArgs {
    /// Data: a float32/float64 .npy of shape (n, d).
    #[arg(long)]
    pub input: PathBuf,
    /// Number of centroids.
    #[arg(long)]
    pub k: usize,
    /// Most Lloyd iterations.
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// Relative decrease of the error under which to stop.
    #[arg(long, default_value_t = 1e-4, allow_negative_numbers = true)]
    pub tolerance: f64,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Initialisation: random, kmeans++ (greedy, scikit-learn's), kmeans++-plain, kmeans||
    /// (k-means‖, also kmeans-parallel: a few passes, for data streamed from disk), or a .npy
    /// file of shape (k, d) holding the starting centroids.
    #[arg(long, default_value = "random", value_parser = parse_init)]
    pub init: InitName,
    /// Starts to run (seeds SEED, SEED + 1, …), keeping the fit with the lowest inertia
    /// (scikit-learn's n_init).
    #[arg(long = "n-init", default_value_t = 1)]
    pub n_init: usize,
    /// Per-point weights: a .npy of shape (n,).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Where to write the centroids (float32 .npy, shape (k, d)).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Where to write the labels (uint32 .npy, shape (n,)).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Mini-batch K-means (Sculley) in batches of B rows instead of Lloyd's iteration,
    /// --iterations passes over the file (read a batch at a time, batches in a random order).
    #[arg(long, value_name = "B")]
    pub minibatch: Option<usize>,
    /// Spherical K-means: centroids scaled to unit norm after every update, points assigned
    /// by largest inner product (cosine similarity for unit-norm data; faiss's spherical).
    #[arg(long)]
    pub spherical: bool,
    /// Memory the fit may use (bytes, or with K, M, G, T): data that would not fit is read
    /// from disk a chunk at a time, each iteration one pass [default: the memory available]
    #[arg(long = "max-memory", value_parser = parse_bytes)]
    pub max_memory: Option<u64>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args)]
pub struct EncodeArgs {
    /// The codebook (.npy, shape (k, d)).
    #[arg(long)]
    pub codebook: PathBuf,
    /// The vectors (.npy, shape (n, d)).
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the labels (uint32 .npy).
    #[arg(long)]
    pub output: PathBuf,
    /// Also write the Euclidean distance of every vector to every centroid (float64 .npy,
    /// shape (n, k); scikit-learn's `transform`).
    #[arg(long)]
    pub distances: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args)]
pub struct DecodeArgs {
    /// The codebook (.npy, shape (k, d)).
    #[arg(long)]
    pub codebook: PathBuf,
    /// The labels (integer .npy).
    #[arg(long)]
    pub labels: PathBuf,
    /// Where to write the vectors (float32 .npy, shape (n, d)).
    #[arg(long)]
    pub output: PathBuf,
    /// Accepted for symmetry: decoding is a gather, done on the host whatever the device.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: Device,
}

impl QuantizeArgs {
    /// CLVQ with the step and batch the options name (the library's defaults otherwise).
    pub fn clvq(&self) -> lloyd::Clvq {
        let base = lloyd::Clvq::new(self.n).batch(self.clvq_batch);
        let nf = self.n.max(1) as f64;
        match (self.clvq_step, self.clvq_a, self.clvq_b) {
            (Some(g), _, _) => base.step(lloyd::Step::Constant(g)),
            (None, None, None) => base,
            (None, a, b) => base.step(lloyd::Step::Decreasing {
                a: a.unwrap_or(4.0 * nf),
                b: b.unwrap_or(std::f64::consts::PI.powi(2) / (nf * nf)),
            }),
        }
    }

    /// The main job's parameters: the 10-point quantizer of N(0, 1).
    pub fn parse_default() -> Self {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            q: QuantizeArgs,
        }
        Wrap::parse_from(["lloyd"]).q
    }

    /// The default parameters with another law.
    pub fn parse_default_with(law: LawName) -> Self {
        QuantizeArgs {
            law,
            ..Self::parse_default()
        }
    }

    pub fn law(&self) -> Law {
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
