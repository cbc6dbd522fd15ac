//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in `lloyd`, each with a message a user can act on.
///
/// Parameter rules have one variant each, so a caller can match on the rule that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The number of centroids (cells) is zero.
    #[error("the number of centroids must be at least 1, got 0")]
    ZeroCentroids,
    /// Zero Lloyd iterations were asked for.
    #[error("the number of iterations must be at least 1, got 0")]
    ZeroIterations,
    /// A CLVQ step of zero samples.
    #[error("the CLVQ batch (samples per step) must be at least 1, got 0")]
    ZeroBatch,
    /// Zero restarts of K-means were asked for.
    #[error("the number of restarts (n_init) must be at least 1, got 0")]
    ZeroRestarts,
    /// k-means‖ with zero sampling rounds.
    #[error("k-means|| needs at least 1 sampling round, got 0")]
    ZeroRounds,
    /// k-means‖'s oversampling factor is not a finite positive number.
    #[error("the k-means|| oversampling factor must be a finite number > 0, got {0}")]
    InvalidOversampling(f64),
    /// A streamed fit asked to read chunks of zero rows.
    #[error("the rows per chunk of a streamed fit must be at least 1, got 0")]
    ZeroChunkRows,
    /// The relative tolerance is negative or not finite.
    #[error("the tolerance must be a finite number >= 0, got {0}")]
    InvalidTolerance(f64),
    /// The data holds no point.
    #[error("the data is empty: at least one point is needed")]
    EmptyData,
    /// The dimension is zero.
    #[error("the dimension d must be at least 1, got 0")]
    ZeroDimension,
    /// The flat data length is not a multiple of the dimension.
    #[error("shape mismatch: {len} values cannot be split into rows of dimension {dim}")]
    ShapeMismatch {
        /// Number of values given.
        len: usize,
        /// Dimension asked for.
        dim: usize,
    },
    /// A data value is NaN or infinite.
    #[error(
        "the data holds a non-finite value ({value}) at point {point}, coordinate {coordinate}"
    )]
    NonFiniteData {
        /// Index of the point (row).
        point: usize,
        /// Index of the coordinate (column).
        coordinate: usize,
        /// The offending value.
        value: f64,
    },
    /// More centroids than points were asked for.
    #[error("{k} centroids were asked for but the data has only {n} points: use k <= n")]
    TooManyCentroids {
        /// Centroids asked for.
        k: usize,
        /// Points in the data.
        n: usize,
    },
    /// Fewer points of positive weight than centroids.
    #[error(
        "{k} centroids were asked for but only {positive} points have a positive weight: use k <= {positive}"
    )]
    TooFewWeightedPoints {
        /// Centroids asked for.
        k: usize,
        /// Points whose weight is above zero.
        positive: usize,
    },
    /// The weights do not match the points one to one.
    #[error("{weights} weights were given for {points} points: give one weight per point")]
    WeightsLength {
        /// Number of weights.
        weights: usize,
        /// Number of points.
        points: usize,
    },
    /// A weight is negative, NaN or infinite.
    #[error("weight {index} is {value}: weights must be finite and >= 0")]
    InvalidWeight {
        /// Index of the weight.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A weight beyond the largest f32: the exact sums of weighted values hold weights up
    /// to `f32::MAX`, and weights act only through their ratios.
    #[error(
        "weight {index} is {value:e}, above the largest weight the exact sums hold \
         (3.4e38): divide every weight by the same factor"
    )]
    WeightTooLarge {
        /// Index of the weight.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// All weights are zero.
    #[error("the weights sum to zero: at least one point must have a positive weight")]
    ZeroTotalWeight,
    /// Initial centroids of the wrong shape.
    #[error("the initial centroids hold {len} values, expected k x d = {k} x {dim}")]
    InitShape {
        /// Values given.
        len: usize,
        /// Centroids expected.
        k: usize,
        /// Dimension expected.
        dim: usize,
    },
    /// Initial centroids holding NaN or infinity.
    #[error("initial centroid {index} holds a non-finite value")]
    InitNonFinite {
        /// Index of the centroid.
        index: usize,
    },
    /// The number of samples is zero.
    #[error("the number of samples M must be at least 1, got 0")]
    ZeroSamples,
    /// A law with parameters outside its domain.
    #[error("invalid law parameters: {0}")]
    InvalidLaw(String),
    /// Labels that name a centroid the codebook does not have.
    #[error("label {label} at position {index} is out of range for a codebook of {k} centroids")]
    LabelOutOfRange {
        /// Position of the label.
        index: usize,
        /// The label.
        label: u64,
        /// Centroids in the codebook.
        k: usize,
    },
    /// Data of a dimension other than the codebook's.
    #[error("dimension mismatch: the codebook has dimension {expected}, the data has {got}")]
    DimensionMismatch {
        /// The codebook's dimension.
        expected: usize,
        /// The data's dimension.
        got: usize,
    },
    /// A CLVQ step sequence outside its domain.
    #[error("invalid CLVQ step {0}: a > 0 and b >= 0, or a constant step in (0, 1]")]
    InvalidStep(String),
    /// A product quantizer with no sub-space.
    #[error("the number of sub-spaces m must be at least 1, got 0")]
    ZeroSubspaces,
    /// Bits per code outside 1..=16.
    #[error("bits per code must be between 1 and 16 (u8 codes up to 8, u16 up to 16), got {0}")]
    InvalidBits(u32),
    /// A dimension that the sub-spaces do not divide.
    #[error("the dimension {dim} is not divisible by m = {m}: choose m among the divisors of d")]
    SubspaceMismatch {
        /// The dimension.
        dim: usize,
        /// Sub-spaces asked for.
        m: usize,
    },
    /// Values beyond what the arithmetic can hold (squared distances beyond f64, a law whose
    /// centroids or distortion overflow); the message names the cause.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// Command-line arguments that contradict each other or name a bad value.
    #[error("{0}")]
    InvalidArgument(String),
    /// A request whose memory needs exceed what the machine has.
    #[error(
        "{what} needs about {needed_gib:.1} GiB, more than the {available_gib:.1} GiB available"
    )]
    TooLarge {
        /// What was asked for.
        what: String,
        /// Memory it needs, in GiB.
        needed_gib: f64,
        /// Memory available, in GiB.
        available_gib: f64,
    },
    /// No GPU adapter could be found.
    #[error(
        "no GPU adapter found ({0}); install a Vulkan/Metal/DX12 driver (on Linux without a GPU: \
         `apt-get install mesa-vulkan-drivers`) or use --device cpu"
    )]
    NoAdapter(String),
    /// The GPU backend failed or cannot serve this request.
    #[error("GPU backend: {0}")]
    Gpu(String),
    /// The device ran out of memory; the message says what was being built.
    #[error("out of device memory: {0}; use fewer points or --device cpu")]
    OutOfDeviceMemory(String),
    /// A request this device or backend does not serve (the message names the alternative).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// An observer stopped the fit (a user's interrupt, or a callback that failed).
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A `.npy` file is corrupt or holds something other than what is expected.
    #[error("{path}: not a usable .npy file: {reason}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
