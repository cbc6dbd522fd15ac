//! `lloyd kmeans|encode|decode|pq|devices`: codebooks of data files.

use serde_json::json;

use lloyd::npy::Floats;
use lloyd::{
    Codebook, Encoder, Error, Init, KMeans, KMeansFit, MiniBatchKMeans, PqCodebook, PqCodes,
    Precision, ProductQuantizer, Real, RowSource, npy,
};

use super::args::{
    DecodeArgs, EncodeArgs, InitName, KmeansArgs, PqDecodeArgs, PqEncodeArgs, PqTrainArgs,
};
use super::one_d::{progress, with_summary};

/// Runs `$body` with `$data` bound to the values of a [`Floats`] as a slice of their own type.
macro_rules! typed {
    ($floats:expr, $data:ident => $body:expr) => {
        match $floats {
            Floats::F32(v) => {
                let $data: &[f32] = v;
                $body
            }
            Floats::F64(v) => {
                let $data: &[f64] = v;
                $body
            }
        }
    };
}

pub fn kmeans(a: &KmeansArgs) -> Result<(), Error> {
    if let (Some(o), Some(l)) = (&a.output, &a.labels)
        && same_file(o, l)
    {
        return Err(Error::InvalidArgument(format!(
            "--output and --labels both name {}: give the centroids and the labels their own files",
            o.display()
        )));
    }
    if let Some(batch) = a.minibatch {
        return kmeans_minibatch(a, batch);
    }
    // Data that would not fit in the memory allowed is read from disk a chunk at a time.
    let budget = a
        .max_memory
        .or_else(lloyd::available_memory)
        .unwrap_or(u64::MAX);
    match npy::NpyRows::open(&a.input) {
        Ok(rows) if in_memory_bytes(&rows) > budget => return kmeans_streamed(a, rows, budget),
        Err(e) if std::fs::metadata(&a.input).is_ok_and(|m| m.len() > budget) => return Err(e),
        _ => {}
    }
    let (values, dim) = npy::read_matrix(&a.input)?;
    typed!(&values, data => kmeans_typed(a, data, dim))
}

/// Mini-batch K-means over the file, read a batch at a time; then one pass measures the
/// centroids on every row (and writes the labels).
fn kmeans_minibatch(a: &KmeansArgs, batch: usize) -> Result<(), Error> {
    let refuse = |what: &str| {
        Err(Error::Unsupported(format!(
            "{what} with --minibatch (mini-batch K-means starts from k-means++ on its first \
             batch and takes no weights)"
        )))
    };
    if a.weights.is_some() {
        return refuse("--weights");
    }
    if !matches!(a.init, InitName::Random | InitName::KmeansPlusPlus) {
        return refuse("--init other than kmeans++");
    }
    if a.n_init != 1 || a.spherical {
        return refuse("--n-init or --spherical");
    }
    let mut rows = npy::NpyRows::open(&a.input)?;
    let dim = rows.dim();
    let fit = MiniBatchKMeans::new(a.k)
        .seed(a.seed)
        .device(a.common.device.clone())
        .fit_source(&mut rows, batch, a.iterations)?;
    if let Some(out) = &a.output {
        fit.codebook.save_npy(out)?;
    }
    // The mse of the result over every row, and the labels, in one more pass.
    let n = rows.rows();
    let (sse, counts) = encode_rows(a, &mut rows, &fit.codebook, 1 << 16)?;
    let mse = sse / n as f64;
    if a.common.json {
        let out = json!({
            "k": a.k, "n": n, "d": dim, "mse": mse, "distortion": 0.5 * mse,
            "inertia": sse, "counts": counts, "minibatch": batch,
            "points_seen": fit.points_seen,
        });
        println!("{}", with_summary(out, &fit.summary));
    } else {
        println!(
            "mini-batch k-means: n = {n}, d = {dim}, k = {}, batches of {batch}: mse {mse:.6e} after {} batches on {}",
            a.k, fit.summary.iterations_run, fit.summary.device
        );
    }
    Ok(())
}

/// About what an in-memory fit holds: the values as stored, the points in f32, and a label
/// and a distance a row.
fn in_memory_bytes(rows: &npy::NpyRows) -> u64 {
    let (n, d) = (rows.rows(), rows.dim() as u64);
    rows.data_bytes() + n * d * 4 + n * 16
}

/// Bytes a row costs a streamed fit in its chunk: read, in f64, in f32, a label and a
/// distance.
fn streamed_row_bytes(dim: usize) -> u64 {
    dim as u64 * 24 + 32
}

/// A fit of data read from disk in chunks of a quarter of `budget` bytes.
fn kmeans_streamed(a: &KmeansArgs, mut rows: npy::NpyRows, budget: u64) -> Result<(), Error> {
    if a.weights.is_some() {
        return Err(Error::Unsupported(format!(
            "--weights with data streamed from disk ({} is larger than the memory allowed, \
             --max-memory)",
            a.input.display()
        )));
    }
    let dim = rows.dim();
    let chunk_rows = ((budget / 4) / streamed_row_bytes(dim)).clamp(1, 1 << 24) as usize;
    let (bar, params) = kmeans_params(a, dim)?;
    let fit = params.fit_source(&mut rows, chunk_rows)?;
    bar.finish_and_clear();
    let n = rows.rows();
    if let Some(out) = &a.output {
        fit.codebook.save_npy(out)?;
    }
    if a.labels.is_some() {
        encode_rows(a, &mut rows, &fit.codebook, chunk_rows)?;
    }
    report(a, &fit, n, dim, Some(chunk_rows))
}

/// Encodes every row of `rows` with `codebook`, `chunk_rows` at a time, writing the labels
/// to `--labels` when it is given: the rows' sum of squared errors and each cell's count.
fn encode_rows(
    a: &KmeansArgs,
    rows: &mut npy::NpyRows,
    codebook: &Codebook,
    chunk_rows: usize,
) -> Result<(f64, Vec<u64>), Error> {
    let n = rows.rows();
    let mut encoder = Encoder::with_options(&a.common.device, &a.common.gpu_options()?)?;
    let (mut first, mut sse, mut counts) = (0u64, 0.0f64, vec![0u64; codebook.k()]);
    let mut chunk = Vec::new();
    let mut next = || -> Result<Option<Vec<u32>>, Error> {
        if first == n {
            return Ok(None);
        }
        let count = (n - first).min(chunk_rows as u64) as usize;
        rows.read(first, count, &mut chunk)?;
        first += count as u64;
        let (labels, chunk_sse) = encoder.encode(codebook, &chunk)?;
        sse += chunk_sse;
        labels.iter().for_each(|&l| counts[l as usize] += 1);
        Ok(Some(labels))
    };
    match &a.labels {
        Some(out) => npy::write_labels_from(out, n, &mut next)?,
        None => while next()?.is_some() {},
    }
    Ok((sse, counts))
}

/// The fit's parameters from the arguments, with a progress bar.
fn kmeans_params(a: &KmeansArgs, dim: usize) -> Result<(indicatif::ProgressBar, KMeans), Error> {
    let (bar, observer) = progress(a.iterations, a.common.quiet);
    let params = KMeans::new(a.k)
        .gpu_options(a.common.gpu_options()?)
        .iterations(a.iterations)
        .tolerance(a.tolerance)
        .seed(a.seed)
        .restarts(a.n_init)
        .spherical(a.spherical)
        .init(match &a.init {
            InitName::Random => Init::RandomPoints,
            InitName::KmeansPlusPlus => Init::KMeansPlusPlus,
            InitName::KmeansPlusPlusPlain => Init::KMeansPlusPlusPlain,
            InitName::KmeansParallel => Init::kmeans_parallel(),
            InitName::File(path) => {
                let (values, d) = npy::read_matrix(path)?;
                if d != dim {
                    return Err(Error::InvalidArgument(format!(
                        "--init {}: centroids of dimension {d}, the data has {dim}",
                        path.display()
                    )));
                }
                Init::Centroids(values.to_f64())
            }
        })
        .device(a.common.device.clone());
    let params = match observer {
        Some(o) => params.on_iteration(o),
        None => params,
    };
    Ok((bar, params))
}

fn kmeans_typed<T: Real>(a: &KmeansArgs, data: &[T], dim: usize) -> Result<(), Error> {
    let (bar, params) = kmeans_params(a, dim)?;
    let fit = match &a.weights {
        Some(p) => {
            // Float64 weights keep their precision (float32 files read exactly).
            let (_, w) = npy::read_f64(p)?;
            params.fit_weighted(data, dim, &w)?
        }
        None => params.fit(data, dim)?,
    };
    bar.finish_and_clear();
    if let Some(out) = &a.output {
        fit.codebook.save_npy(out)?;
    }
    if let Some(out) = &a.labels {
        npy::write_labels(out, &fit.labels)?;
    }
    report(a, &fit, fit.labels.len() as u64, dim, None)
}

/// Prints the fit: one JSON object or one line. `chunk_rows` is Some for a streamed fit.
fn report(
    a: &KmeansArgs,
    fit: &KMeansFit,
    n: u64,
    dim: usize,
    chunk_rows: Option<usize>,
) -> Result<(), Error> {
    if a.common.json {
        let mut out = json!({
            "k": a.k,
            "n": n,
            "d": dim,
            "mse": fit.mse,
            "distortion": fit.distortion,
            "inertia": fit.inertia,
            "counts": fit.counts,
            "streamed": chunk_rows.is_some(),
        });
        if let Some(c) = chunk_rows {
            out["chunk_rows"] = json!(c);
        }
        println!("{}", with_summary(out, &fit.summary));
    } else {
        println!(
            "k-means{}: n = {n}, d = {dim}, k = {}: mse {:.6e} after {} iterations on {} ({:.3} ms per iteration, {} empty cells split){}",
            chunk_rows
                .map(|c| format!(" (streamed from disk, {c} rows a chunk)"))
                .unwrap_or_default(),
            a.k,
            fit.mse,
            fit.summary.iterations_run,
            fit.summary.device,
            fit.summary.ms_per_iteration(),
            fit.summary.empty_cells_split,
            a.output
                .as_ref()
                .map(|p| format!("; centroids in {}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}

pub fn encode(a: &EncodeArgs) -> Result<(), Error> {
    let cb = Codebook::load_npy(&a.codebook)?;
    let (values, dim) = npy::read_matrix(&a.input)?;
    if dim != cb.dim() {
        return Err(Error::DimensionMismatch {
            expected: cb.dim(),
            got: dim,
        });
    }
    if let Some(d) = &a.distances
        && same_file(d, &a.output)
    {
        return Err(Error::InvalidArgument(format!(
            "--output and --distances both name {}: give each its own file",
            d.display()
        )));
    }
    let (labels, mse, device) = typed!(&values, data => cb.encode_on(data, &a.common.device))?;
    npy::write_labels(&a.output, &labels)?;
    if let Some(path) = &a.distances {
        let d = typed!(&values, data => cb.distances(data))?;
        npy::write_f64(path, &[labels.len(), cb.k()], &d)?;
    }
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

pub fn pq_train(a: &PqTrainArgs) -> Result<(), Error> {
    let (values, dim) = npy::read_matrix(&a.input)?;
    typed!(&values, data => pq_train_typed(a, data, dim))
}

fn pq_train_typed<T: Real>(a: &PqTrainArgs, data: &[T], dim: usize) -> Result<(), Error> {
    let start = std::time::Instant::now();
    let pq = ProductQuantizer::new(a.m, a.bits)
        .iterations(a.iterations)
        .seed(a.seed)
        .device(a.common.device.clone())
        .train(data, dim)?;
    let train_ms = start.elapsed().as_secs_f64() * 1e3;
    pq.save_npy(&a.output)?;
    let sub_mse = pq.sub_mse(data)?;
    let mse: f64 = sub_mse.iter().sum();
    if a.common.json {
        let out = json!({"n": data.len() / dim, "d": dim, "m": a.m, "bits": a.bits, "mse": mse,
            "sub_mse": sub_mse, "device": pq.trained_on(), "train_ms": train_ms});
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

pub fn pq_encode(a: &PqEncodeArgs) -> Result<(), Error> {
    let pq = PqCodebook::load_npy(&a.codebook)?.with_device(a.common.device.clone());
    let (values, dim) = npy::read_matrix(&a.input)?;
    if dim != pq.dim() {
        return Err(Error::DimensionMismatch {
            expected: pq.dim(),
            got: dim,
        });
    }
    let (codes, mse) = typed!(&values, data => pq.encode_with_mse(data))?;
    codes.save_npy(&a.output, pq.m())?;
    if a.common.json {
        println!(
            "{}",
            json!({"n": values.len() / dim, "m": pq.m(), "bits": pq.bits(), "mse": mse})
        );
    } else {
        println!(
            "encoded {} vectors: mse {mse:.6e}; codes in {}",
            values.len() / dim,
            a.output.display()
        );
    }
    Ok(())
}

pub fn pq_decode(a: &PqDecodeArgs) -> Result<(), Error> {
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
    write_in(&a.output, &[n, pq.dim()], &out, pq.precision())?;

    println!("decoded {n} codes into {}", a.output.display());
    Ok(())
}

pub fn devices(as_json: bool) -> Result<(), Error> {
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
        println!("        {}", a.capabilities.join(", "));
    }
    println!(
        "cpu    the CPU backend ({} threads)",
        rayon::current_num_threads()
    );
    Ok(())
}

pub fn decode(a: &DecodeArgs) -> Result<(), Error> {
    let cb = Codebook::load_npy(&a.codebook)?;
    let (_, labels) = npy::read_labels(&a.labels)?;
    let out = cb.decode(&labels)?;
    write_in(&a.output, &[labels.len(), cb.dim()], &out, cb.precision())?;
    println!(
        "decoded {} labels into {}",
        labels.len(),
        a.output.display()
    );
    Ok(())
}

/// Writes f64 values as a `.npy` of the given precision.
fn write_in(
    path: &std::path::Path,
    shape: &[usize],
    values: &[f64],
    precision: Precision,
) -> Result<(), Error> {
    match precision {
        Precision::F32 => {
            let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
            npy::write_f32(path, shape, &v)
        }
        Precision::F64 => npy::write_f64(path, shape, values),
    }
}

/// Whether two paths name one file (the same path, or the same existing file).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
