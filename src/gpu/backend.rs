//! The GPU backend: points resident in device buffers (split into chunks no larger than one
//! storage binding), pipelines and bind groups built once per fit, one submission and one
//! small read-back (the per-cell counts, masses and errors) per iteration.

use std::sync::Arc;

use super::buffers::{
    Params, bind_buffers, empty_storage, guarded, map_and_read, read_back, storage, uniform_buffer,
};
use super::context::GpuContext;
use super::fixed::{scale_for, words_to_f64};
use super::points::{MAX_WORKGROUPS, ResidentPoints, generation_params};
use super::shaders;
use crate::backend::{Backend, CellStats, empty_cells::split_empty_cells};
use crate::error::{Error, Result};

/// Words per cell in the statistics read back: count, mass (3), squared error (3).
const STAT_WORDS: usize = 7;
/// Cells the 1-D kernel can gather in workgroup memory (see `assign_1d.wgsl`).
const LOCAL_CELLS: usize = 512;
/// Points per workgroup of the d-D kernel (see `assign_dense.wgsl`).
const DENSE_POINTS_PER_WORKGROUP: usize = 64;
/// Samples per invocation in the 1-D kernel: fewer workgroups, fewer flushes.
const POINTS_PER_THREAD_1D: usize = 8;

/// Which assignment kernel a backend runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Layout {
    /// Sorted 1-D centroids, binary search.
    OneD,
    /// Any dimension, tiled distances.
    Dense,
}

/// One binding's worth of points with its parameters and bind group.
struct Chunk {
    n: usize,
    xs: wgpu::Buffer,
    labels: Option<wgpu::Buffer>,
    bind: wgpu::BindGroup,
    workgroups: u32,
}

/// Two timestamp queries around a pass, resolved into a buffer read back with the stats.
struct Timer {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    staging: wgpu::Buffer,
}

impl Timer {
    fn new(ctx: &GpuContext) -> Self {
        let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("assignment pass"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolved = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps staging"),
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Timer {
            queries,
            resolved,
            staging,
        }
    }
}

/// Lloyd's per-iteration steps on a GPU.
pub(crate) struct GpuLloyd {
    ctx: Arc<GpuContext>,
    layout: Layout,
    k: usize,
    dim: usize,
    weighted: bool,
    scale_e: f32,
    scale_w: f32,
    chunks: Vec<Chunk>,
    cents: wgpu::Buffer,
    norms: wgpu::Buffer,
    acc: wgpu::Buffer,
    stats: wgpu::Buffer,
    stats_staging: wgpu::Buffer,
    assign: wgpu::ComputePipeline,
    copy_stats: wgpu::ComputePipeline,
    update: wgpu::ComputePipeline,
    copy_stats_bind: wgpu::BindGroup,
    update_bind: wgpu::BindGroup,
    cached: Option<CellStats>,
    /// The fit's parameter block as uploaded (CLVQ rewrites its step fields).
    base_params: Vec<u8>,
    /// Timestamps around the assignment pass, when the adapter has them.
    timer: Option<Timer>,
    device_seconds: Option<f64>,
    // Kept alive for the bind groups.
    _params: Vec<wgpu::Buffer>,
    _weights: Vec<wgpu::Buffer>,
}

fn norms_of(c: &[f64], dim: usize) -> Vec<f32> {
    c.chunks_exact(dim)
        .map(|r| r.iter().map(|&v| (v as f32) * (v as f32)).sum())
        .collect()
}

impl GpuLloyd {
    /// Builds the pipelines and buffers of one fit. `init` is `k x dim`; `weights` (Dense
    /// only) holds one validated weight per point.
    pub(crate) fn new(
        ctx: Arc<GpuContext>,
        layout: Layout,
        points: ResidentPoints,
        dim: usize,
        init: &[f64],
        weights: Option<&[f32]>,
    ) -> Result<Self> {
        let k = init.len() / dim;
        if k > MAX_WORKGROUPS * 64 {
            return Err(Error::Gpu(format!(
                "k = {k} is more than the GPU backend's {} centroids",
                MAX_WORKGROUPS * 64
            )));
        }
        let stride = 7 + 3 * dim;
        let acc_bytes = 4 * (k * stride) as u64;
        let limit = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size);
        if acc_bytes > limit {
            return Err(Error::Gpu(format!(
                "k = {k} cells of dimension {dim} need {acc_bytes} bytes of accumulators, more than \
                 this adapter's {limit}-byte binding: use fewer centroids or dimensions (product \
                 quantization splits d), or --device cpu"
            )));
        }
        let bound_c = init.iter().fold(points.bound, |m, &v| m.max(v.abs()));
        let wmax = weights.map_or(1.0, |w| w.iter().fold(0.0f64, |m, &v| m.max(f64::from(v))));
        let scale_x = scale_for(wmax * points.bound);
        let scale_e = scale_for(wmax * dim as f64 * (points.bound + bound_c).powi(2) * 4.0);
        let scale_w = scale_for(wmax);
        let base = Params {
            k: k as u32,
            dim: dim as u32,
            stride: stride as u32,
            scale_x,
            scale_e,
            scale_w,
            use_local: u32::from(layout == Layout::OneD && k <= LOCAL_CELLS),
            weighted: u32::from(weights.is_some()),
            ..Default::default()
        };
        let ctx2 = ctx.clone();
        let c = &*ctx2;
        guarded(c, "building the GPU pipelines and buffers", || {
            let assign = match layout {
                Layout::OneD => c.pipeline("assign_1d", shaders::ASSIGN_1D, "main"),
                Layout::Dense => c.pipeline("assign_dense", shaders::ASSIGN_DENSE, "main"),
            };
            let copy_stats = c.pipeline("copy_stats", shaders::UPDATE, "copy_stats");
            let update = c.pipeline("update", shaders::UPDATE, "update");
            let init32: Vec<f32> = init.iter().map(|&v| v as f32).collect();
            let cents = storage(
                c,
                "centroids",
                bytemuck::cast_slice(&init32),
                wgpu::BufferUsages::empty(),
            );
            let norms = storage(
                c,
                "norms",
                bytemuck::cast_slice(&norms_of(init, dim)),
                wgpu::BufferUsages::empty(),
            );
            let acc = empty_storage(c, "accumulators", 4 * (k * stride) as u64);
            let stats = empty_storage(c, "stats", 4 * (k * STAT_WORDS) as u64);
            let stats_staging = c.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("stats staging"),
                size: 4 * (k * STAT_WORDS) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut params = vec![uniform_buffer(c, "params", &base)];
            let mut weight_bufs = Vec::new();
            let dummy = storage(c, "no weights", &[0u8; 4], wgpu::BufferUsages::empty());
            let mut chunks = Vec::new();
            let mut start = 0usize;
            for (len, xs, labels) in points.chunks {
                let p = uniform_buffer(
                    c,
                    "params",
                    &Params {
                        n: len as u32,
                        ..base
                    },
                );
                let mut entries: Vec<(u32, &wgpu::Buffer)> =
                    vec![(0, &p), (1, &xs), (2, &cents), (3, &acc)];
                let wbuf = weights.map(|w| {
                    storage(
                        c,
                        "weights",
                        bytemuck::cast_slice(&w[start..start + len]),
                        wgpu::BufferUsages::empty(),
                    )
                });
                let labels = match layout {
                    Layout::Dense => {
                        Some(labels.unwrap_or_else(|| empty_storage(c, "labels", 4 * len as u64)))
                    }
                    Layout::OneD => None,
                };
                if let Some(l) = &labels {
                    entries.extend([(4, &norms), (5, l), (6, wbuf.as_ref().unwrap_or(&dummy))]);
                }
                let bind = bind_buffers(c, "assign", &assign, &entries);
                let workgroups = match layout {
                    Layout::OneD => len.div_ceil(256 * POINTS_PER_THREAD_1D),
                    Layout::Dense => len.div_ceil(DENSE_POINTS_PER_WORKGROUP),
                }
                .clamp(1, MAX_WORKGROUPS) as u32;
                chunks.push(Chunk {
                    n: len,
                    xs,
                    labels,
                    bind,
                    workgroups,
                });
                params.push(p);
                weight_bufs.extend(wbuf);
                start += len;
            }
            weight_bufs.push(dummy);
            let copy_stats_bind = bind_buffers(
                c,
                "copy stats",
                &copy_stats,
                &[(0, &params[0]), (1, &acc), (4, &stats)],
            );
            let update_bind = bind_buffers(
                c,
                "update",
                &update,
                &[(0, &params[0]), (1, &acc), (2, &cents), (3, &norms)],
            );
            GpuLloyd {
                ctx: ctx.clone(),
                layout,
                k,
                dim,
                weighted: weights.is_some(),
                scale_e,
                scale_w,
                chunks,
                cents,
                norms,
                acc,
                stats,
                stats_staging,
                assign,
                copy_stats,
                update,
                copy_stats_bind,
                update_bind,
                cached: None,
                base_params: bytemuck::bytes_of(&base).to_vec(),
                timer: c.timestamps.then(|| Timer::new(c)),
                device_seconds: None,
                _params: params,
                _weights: weight_bufs,
            }
        })
    }

    fn ensure_stats(&mut self) -> Result<&CellStats> {
        if self.cached.is_none() {
            let size = 4 * (self.k * STAT_WORDS) as u64;
            let bytes = map_and_read(&self.ctx, &self.stats_staging, size)?;
            let words: &[u32] = bytemuck::cast_slice(&bytes);
            let mut st = CellStats::zeros(self.k);
            let (se, sw) = (f64::from(self.scale_e), f64::from(self.scale_w));
            for (j, w) in words.chunks_exact(STAT_WORDS).enumerate() {
                st.counts[j] = u64::from(w[0]);
                st.mass[j] = if self.weighted {
                    words_to_f64(&w[1..4]) / sw
                } else {
                    f64::from(w[0])
                };
                st.sse[j] = words_to_f64(&w[4..7]) / se;
            }
            self.cached = Some(st);
            if let Some(t) = &self.timer {
                let ts = map_and_read(&self.ctx, &t.staging, 16)?;
                let ticks: &[u64] = bytemuck::cast_slice(&ts);
                let ns = ticks[1].saturating_sub(ticks[0]) as f64
                    * f64::from(self.ctx.queue.get_timestamp_period());
                self.device_seconds = Some(ns * 1e-9);
            }
        }
        Ok(self.cached.as_ref().expect("filled above"))
    }

    /// Labels of the last assignment, in point order (Dense layout).
    pub(crate) fn labels(&mut self) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        for ch in &self.chunks {
            let l = ch
                .labels
                .as_ref()
                .ok_or_else(|| Error::Gpu("the 1-D kernel keeps no labels".into()))?;
            let bytes = read_back(&self.ctx, l, 0, 4 * ch.n as u64)?;
            out.extend_from_slice(bytemuck::cast_slice(&bytes));
        }
        Ok(out)
    }

    /// CLVQ in mini-batches on the device (1-D layout, one chunk): each step draws a fresh
    /// batch of the chunk's size from `law` into the chunk, assigns and reduces it, and moves
    /// every centroid by `gamma(step) * count / batch` of the way to its batch mean (the
    /// update kernel's relaxed form). No read-back between steps.
    pub(crate) fn clvq(
        &mut self,
        law: &crate::law::Law,
        seed: u64,
        steps: usize,
        gamma: &dyn Fn(usize) -> f64,
    ) -> Result<()> {
        if self.layout != Layout::OneD || self.chunks.len() != 1 {
            return Err(Error::Gpu(
                "CLVQ batches must fit one storage binding".into(),
            ));
        }
        let ctx = self.ctx.clone();
        let batch = self.chunks[0].n;
        let generate = ctx.pipeline("generate", shaders::GENERATE, "main");
        let gen_params = generation_params(law, batch, seed, 0);
        let gbuf = uniform_buffer(&ctx, "clvq generate params", &gen_params);
        let gbind = bind_buffers(
            &ctx,
            "clvq generate",
            &generate,
            &[(0, &gbuf), (1, &self.chunks[0].xs)],
        );
        let update_params = &self._params[0];
        let mut base: Params = *bytemuck::from_bytes(&self.base_params);
        for step in 1..=steps {
            let start = (step - 1) as u64 * batch as u64;
            let g = generation_params(law, batch, seed, start);
            ctx.queue.write_buffer(&gbuf, 0, bytemuck::bytes_of(&g));
            base.p0 = gamma(step) as f32;
            base.p1 = batch as f32;
            ctx.queue
                .write_buffer(update_params, 0, bytemuck::bytes_of(&base));
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&generate);
                pass.set_bind_group(0, &gbind, &[]);
                pass.dispatch_workgroups(
                    batch.div_ceil(256 * 4).clamp(1, MAX_WORKGROUPS) as u32,
                    1,
                    1,
                );
            }
            enc.clear_buffer(&self.acc, 0, None);
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&self.assign);
                pass.set_bind_group(0, &self.chunks[0].bind, &[]);
                pass.dispatch_workgroups(self.chunks[0].workgroups, 1, 1);
                pass.set_pipeline(&self.update);
                pass.set_bind_group(0, &self.update_bind, &[]);
                pass.dispatch_workgroups(self.k.div_ceil(64) as u32, 1, 1);
            }
            ctx.queue.submit(Some(enc.finish()));
            if step % 256 == 0 {
                // Bound the work queued ahead of the device.
                ctx.device
                    .poll(wgpu::PollType::wait_indefinitely())
                    .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
            }
        }
        base.p0 = 0.0;
        base.p1 = 0.0;
        ctx.queue
            .write_buffer(update_params, 0, bytemuck::bytes_of(&base));
        self.cached = None;
        Ok(())
    }

    /// Number of chunks the points were split into.
    pub(crate) fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

impl Backend for GpuLloyd {
    fn device_name(&self) -> String {
        self.ctx.name()
    }

    fn assign_reduce(&mut self) -> Result<()> {
        self.cached = None;
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&self.acc, 0, None);
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("assign and reduce"),
                timestamp_writes: self
                    .timer
                    .as_ref()
                    .map(|t| wgpu::ComputePassTimestampWrites {
                        query_set: &t.queries,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    }),
            });
            pass.set_pipeline(&self.assign);
            for ch in &self.chunks {
                pass.set_bind_group(0, &ch.bind, &[]);
                pass.dispatch_workgroups(ch.workgroups, 1, 1);
            }
            pass.set_pipeline(&self.copy_stats);
            pass.set_bind_group(0, &self.copy_stats_bind, &[]);
            pass.dispatch_workgroups(self.k.div_ceil(64) as u32, 1, 1);
        }
        enc.copy_buffer_to_buffer(
            &self.stats,
            0,
            &self.stats_staging,
            0,
            self.stats_staging.size(),
        );
        if let Some(t) = &self.timer {
            enc.resolve_query_set(&t.queries, 0..2, &t.resolved, 0);
            enc.copy_buffer_to_buffer(&t.resolved, 0, &t.staging, 0, 16);
        }
        self.ctx.queue.submit(Some(enc.finish()));
        Ok(())
    }

    fn device_seconds(&mut self) -> Result<Option<f64>> {
        self.ensure_stats()?;
        Ok(self.device_seconds)
    }

    fn sse(&mut self) -> Result<f64> {
        Ok(self.ensure_stats()?.sse.iter().sum())
    }

    fn update(&mut self) -> Result<usize> {
        let stats = self.ensure_stats()?.clone();
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.update);
            pass.set_bind_group(0, &self.update_bind, &[]);
            pass.dispatch_workgroups(self.k.div_ceil(64) as u32, 1, 1);
        }
        self.ctx.queue.submit(Some(enc.finish()));
        if stats.mass.iter().all(|&m| m > 0.0) {
            return Ok(0);
        }
        // Empty cells: the shared policy, on the host, on the updated means.
        let mut c = self.centroids()?;
        let mut st = stats;
        let splits = split_empty_cells(&mut c, self.dim, &mut st);
        if splits > 0 {
            if self.layout == Layout::OneD {
                c.sort_by(f64::total_cmp);
            }
            let c32: Vec<f32> = c.iter().map(|&v| v as f32).collect();
            self.ctx
                .queue
                .write_buffer(&self.cents, 0, bytemuck::cast_slice(&c32));
            self.ctx.queue.write_buffer(
                &self.norms,
                0,
                bytemuck::cast_slice(&norms_of(&c, self.dim)),
            );
        }
        Ok(splits)
    }

    fn centroids(&mut self) -> Result<Vec<f64>> {
        let bytes = read_back(&self.ctx, &self.cents, 0, self.cents.size())?;
        let v: &[f32] = bytemuck::cast_slice(&bytes);
        Ok(v.iter().map(|&x| f64::from(x)).collect())
    }

    fn cell_stats(&mut self) -> Result<CellStats> {
        Ok(self.ensure_stats()?.clone())
    }
}
