//! Points on the device: uploaded from the host or drawn there, split into chunks of at most
//! one storage binding.

use super::buffers::{
    DrawParams, bind_buffers, chunk_capacity, empty_storage, guarded, read_back, storage,
    uniform_buffer,
};
use super::context::GpuContext;
use super::kernels::GENERATE;
use crate::error::Result;

/// The most workgroups of one dispatch dimension.
pub(crate) const MAX_WORKGROUPS: usize = 65_535;

/// Points already on the device, chunked, with the bound of their magnitudes.
pub(crate) struct ResidentPoints {
    pub(crate) chunks: Vec<(usize, wgpu::Buffer, Option<wgpu::Buffer>)>,
    pub(crate) bound: f64,
}

/// The generator's code and parameters for a law, with a bound on the magnitude of its
/// device samples.
pub(crate) fn law_code(law: &crate::law::Law) -> (u32, f64, f64, f64) {
    use crate::law::Law;
    match *law {
        // Box–Muller with u1 >= 2^-24 gives |z| <= 5.77.
        Law::Normal { mean, std } => (0u32, mean, std, mean.abs() + 6.0 * std),
        Law::Uniform { low, high } => (1, low, high, low.abs().max(high.abs())),
        Law::Exponential { rate } => (2, rate, 0.0, 17.5 / rate),
        Law::LogNormal { mu, sigma } => (3, mu, sigma, (mu + 6.0 * sigma).exp()),
    }
}

/// The generator's parameter block for `n` samples of `law` starting at sample `start`.
pub(crate) fn generation_params(
    law: &crate::law::Law,
    n: usize,
    seed: u64,
    start: u64,
) -> DrawParams {
    let (code, a, b, _) = law_code(law);
    DrawParams {
        n: n as u32,
        law: code,
        a: a as f32,
        b: b as f32,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        first_lo: start as u32,
        first_hi: (start >> 32) as u32,
        ..Default::default()
    }
}

impl ResidentPoints {
    /// Uploads row-major points (and their labels buffers when `labels` is set).
    pub(crate) fn upload(
        ctx: &GpuContext,
        data: &[f32],
        dim: usize,
        labels: bool,
        max_chunk_bytes: Option<u64>,
    ) -> Result<Self> {
        let n = data.len() / dim;
        let cap = chunk_capacity(ctx, dim, max_chunk_bytes);
        let bound = data.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
        let chunks = guarded(ctx, "uploading the points", || {
            (0..n)
                .step_by(cap)
                .map(|start| {
                    let len = cap.min(n - start);
                    let xs = storage(
                        ctx,
                        "points",
                        bytemuck::cast_slice(&data[start * dim..(start + len) * dim]),
                        wgpu::BufferUsages::empty(),
                    );
                    let lab = labels.then(|| empty_storage(ctx, "labels", 4 * len as u64));
                    (len, xs, lab)
                })
                .collect()
        })?;
        Ok(ResidentPoints { chunks, bound })
    }

    /// Draws `m` samples of a law on the device (1-D).
    pub(crate) fn generate(
        ctx: &GpuContext,
        law: &crate::law::Law,
        m: usize,
        seed: u64,
        max_chunk_bytes: Option<u64>,
    ) -> Result<Self> {
        Self::generate_points(ctx, law, m, 1, seed, false, max_chunk_bytes)
    }

    /// Draws `m` points of `dim` independent coordinates of a law on the device: value `i`
    /// of the row-major sample is value `i` of the generator's stream for `seed`, however
    /// the points are chunked. With `labels`, each chunk gets a labels buffer (d-D layout).
    pub(crate) fn generate_points(
        ctx: &GpuContext,
        law: &crate::law::Law,
        m: usize,
        dim: usize,
        seed: u64,
        labels: bool,
        max_chunk_bytes: Option<u64>,
    ) -> Result<Self> {
        let bound = law_code(law).3;
        let cap = chunk_capacity(ctx, dim, max_chunk_bytes);
        let chunks = guarded(ctx, "generating the samples", || {
            let mut chunks = Vec::new();
            for start in (0..m).step_by(cap) {
                let len = cap.min(m - start);
                let xs = empty_storage(ctx, "samples", 4 * (len * dim) as u64);
                let lab = labels.then(|| empty_storage(ctx, "labels", 4 * len as u64));
                chunks.push((len, xs, lab));
            }
            chunks
        })?;
        let points = ResidentPoints {
            chunks,
            bound: bound * 1.01,
        };
        let targets: Vec<(usize, &wgpu::Buffer)> = points
            .chunks
            .iter()
            .map(|(len, xs, _)| (*len, xs))
            .collect();
        draw(ctx, &targets, law, dim, seed, 0)?;
        Ok(points)
    }

    /// The first `count` values of the first chunk (1-D), for the starting quantiles.
    pub(crate) fn head(&self, ctx: &GpuContext, count: usize) -> Result<Vec<f32>> {
        let (len, xs, _) = &self.chunks[0];
        let count = count.min(*len);
        let bytes = read_back(ctx, xs, 0, 4 * count as u64)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Every value, in order (tests and small inputs).
    pub(crate) fn download(&self, ctx: &GpuContext) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for (_, xs, _) in &self.chunks {
            let bytes = read_back(ctx, xs, 0, xs.size())?;
            out.extend_from_slice(bytemuck::cast_slice(&bytes));
        }
        Ok(out)
    }
}

/// Workgroups of the generator for `values` values (it loops over what one dispatch cannot
/// cover).
pub(crate) fn generate_workgroups(values: usize) -> u32 {
    values.div_ceil(256 * 4).clamp(1, MAX_WORKGROUPS) as u32
}

/// The generator's step word for a single draw (its `draw` is 0, so the value is unused).
pub(crate) fn no_step(ctx: &GpuContext) -> wgpu::Buffer {
    storage(ctx, "no step", &[0u8; 4], wgpu::BufferUsages::empty())
}

/// Fills `chunks` (points of `dim` coordinates, in order) with the generator's values from
/// `offset` on: value `offset + i` of the stream for `seed` goes to value `i` of the sample,
/// however it is chunked. No read-back.
pub(crate) fn draw(
    ctx: &GpuContext,
    chunks: &[(usize, &wgpu::Buffer)],
    law: &crate::law::Law,
    dim: usize,
    seed: u64,
    offset: u64,
) -> Result<()> {
    let pipeline = ctx.kernel(&GENERATE);
    guarded(ctx, "generating the samples", || {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        let mut keep = Vec::new();
        let step = no_step(ctx);
        let mut start = 0u64;
        for &(len, xs) in chunks {
            let values = len * dim;
            let params = generation_params(law, values, seed, offset + start);
            let pbuf = uniform_buffer(ctx, "generate params", &params);
            let bind = bind_buffers(
                ctx,
                "generate",
                &pipeline,
                &[(0, &pbuf), (1, xs), (2, &step)],
            );
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind, &[]);
                pass.dispatch_workgroups(generate_workgroups(values), 1, 1);
            }
            keep.push(pbuf);
            start += values as u64;
        }
        ctx.queue.submit(Some(enc.finish()));
    })
}
