//! Benchmark rows and their summary over seeds.

/// One run: a method on one problem with one seed.
pub struct Row {
    pub method: String,
    pub kind: String,
    pub n: usize,
    pub m: usize,
    pub d: usize,
    pub seed: u64,
    pub iterations: usize,
    pub setup_ms: f64,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub device_ms: Option<f64>,
}

pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let k = s.len();
    if k % 2 == 1 {
        s[k / 2]
    } else {
        0.5 * (s[k / 2 - 1] + s[k / 2])
    }
}

impl Row {
    pub const CSV_HEADER: &'static str = "method,kind,n,m,d,seed,iterations,setup_ms,median_ms_per_iter,min_ms_per_iter,max_ms_per_iter,gpu_ms_per_iter";

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        method: &str,
        kind: &str,
        n: usize,
        m: usize,
        d: usize,
        seed: u64,
        setup_ms: f64,
        wall: &[f64],
        device: &[f64],
    ) -> Row {
        Row {
            method: method.to_string(),
            kind: kind.to_string(),
            n,
            m,
            d,
            seed,
            iterations: wall.len(),
            setup_ms,
            median_ms: median(wall),
            min_ms: wall.iter().copied().fold(f64::INFINITY, f64::min),
            max_ms: wall.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            device_ms: (!device.is_empty()).then(|| median(device)),
        }
    }

    pub fn csv(&self) -> String {
        let quoted = format!("\"{}\"", self.method.replace('"', "\"\""));
        format!(
            "{quoted},{},{},{},{},{},{},{:.3},{:.6},{:.6},{:.6},{}",
            self.kind,
            self.n,
            self.m,
            self.d,
            self.seed,
            self.iterations,
            self.setup_ms,
            self.median_ms,
            self.min_ms,
            self.max_ms,
            self.device_ms.map_or(String::new(), |v| format!("{v:.6}"))
        )
    }
}

/// Rows of one (method, kind, n, m, d) over seeds.
pub struct Summary {
    pub method: String,
    pub kind: String,
    pub n: usize,
    pub m: usize,
    pub d: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub device_ms: Option<f64>,
    pub setup_ms: f64,
}

impl Summary {
    /// K-means rows: the distance product's rate, 2·n·k·d floating-point operations per
    /// iteration over the GPU time of the iteration's kernels (the wall-clock time where
    /// there are no timestamps), in GFLOP/s.
    pub fn gflops(&self) -> Option<f64> {
        (self.kind == "kmeans").then(|| {
            let flops = 2.0 * (self.m * self.n * self.d) as f64;
            flops / (self.device_ms.unwrap_or(self.median_ms) * 1e-3) / 1e9
        })
    }
}

pub fn summarize(rows: &[Row]) -> Vec<Summary> {
    let mut out: Vec<Summary> = Vec::new();
    for r in rows {
        if out.iter().any(|s| {
            s.method == r.method && s.kind == r.kind && s.n == r.n && s.m == r.m && s.d == r.d
        }) {
            continue;
        }
        let group: Vec<&Row> = rows
            .iter()
            .filter(|x| {
                x.method == r.method && x.kind == r.kind && x.n == r.n && x.m == r.m && x.d == r.d
            })
            .collect();
        let meds: Vec<f64> = group.iter().map(|x| x.median_ms).collect();
        let dev: Vec<f64> = group.iter().filter_map(|x| x.device_ms).collect();
        out.push(Summary {
            method: r.method.clone(),
            kind: r.kind.clone(),
            n: r.n,
            m: r.m,
            d: r.d,
            median_ms: median(&meds),
            min_ms: meds.iter().copied().fold(f64::INFINITY, f64::min),
            max_ms: meds.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            device_ms: (!dev.is_empty()).then(|| median(&dev)),
            setup_ms: median(&group.iter().map(|x| x.setup_ms).collect::<Vec<_>>()),
        });
    }
    out
}
