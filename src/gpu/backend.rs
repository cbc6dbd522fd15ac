//! The GPU backend: points resident in device buffers (split into chunks no larger than one
//! storage binding), pipelines and bind groups built once per fit. A batch of iterations is
//! one submission: the device reduces, updates, re-seeds empty cells and records each
//! iteration's error itself, and the host reads the small history back once per batch.

use std::sync::Arc;

use super::buffers::{
    Params, bind_buffers, empty_storage, guarded, map_and_read, read_back, storage, uniform_buffer,
};
use super::context::GpuContext;
use super::fixed::{scale_for, words_to_f64, words_to_i128};
use super::layout::{
    HISTORY_HEADER, HISTORY_RECORD, LOCAL_CELLS_1D, MOVED_BIT, STAT_WORDS, WORK_CELL_WORDS,
    WORK_FLAGS, cell_stride,
};
use super::points::{self, MAX_WORKGROUPS, ResidentPoints, generation_params};
use super::shaders;
use super::tiles::{self, DenseKernel, NO_LOCAL};
use crate::backend::{Backend, CellStats, StepRecord, Update};
use crate::error::{Error, Result};

/// Most workgroups of a d-D kernel with workgroup accumulators: a few per multiprocessor of
/// a large GPU, each flushing its accumulators once.
const LOCAL_WORKGROUPS: usize = 1024;
/// Samples per invocation in the 1-D kernel: fewer workgroups, fewer flushes.
const POINTS_PER_THREAD_1D: usize = 8;
/// Most iterations in one submission: two timestamps each fill wgpu's largest query set.
const MAX_BATCH: usize = 2048;
/// Distance terms (point x centroid x coordinate) one submission may hold: a few hundred
/// milliseconds on a small GPU, so that a long batch never trips a display driver's watchdog
/// (Windows resets a GPU busy for 2 s). Iterations heavier than this run one per submission,
/// where a read-back costs nothing next to the iteration itself.
const WORK_PER_SUBMISSION: f64 = 2.5e11;
/// Iterations per command buffer within a batch: the device starts on the first ones while
/// the host encodes the rest (about 15 µs of encoding an iteration, measured through wgpu on
/// lavapipe), and no read-back comes between them.
const SUBMIT_EVERY: usize = 16;
/// CLVQ steps per submission (see [`GpuLloyd::clvq`]).
const CLVQ_RING: usize = 64;
/// Iterations between reports when the fit has an observer.
const REPORT_INTERVAL: usize = 10;
/// The top word of "no previous error" in the history header.
const NO_PREVIOUS: u32 = u32::MAX;

/// How a pass issues its dispatches: directly, or from the batch's indirect arguments, which
/// the device's stop rule sets to zero workgroups.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dispatch {
    Direct,
    Indirect,
}

/// Which assignment kernel a backend runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Layout {
    /// Sorted 1-D centroids, binary search.
    OneD,
    /// Any dimension, tiled distances.
    Dense,
}

/// One binding's worth of points with its parameters and bind groups.
struct Chunk {
    n: usize,
    xs: wgpu::Buffer,
    labels: Option<wgpu::Buffer>,
    bind: wgpu::BindGroup,
    /// The d-D empty-cell policy's passes over this chunk (`extremes.wgsl`).
    extremes: Option<wgpu::BindGroup>,
    workgroups: u32,
}

/// The d-D empty-cell policy's passes, run after `update` over every chunk in turn.
struct ExtremesPasses {
    farthest: wgpu::ComputePipeline,
    far_copy: wgpu::ComputePipeline,
    near_compare: wgpu::ComputePipeline,
}

/// Two timestamp queries around each iteration's pass, resolved into a buffer read back with
/// the stats or the history.
struct Timer {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    staging: wgpu::Buffer,
}

impl Timer {
    fn new(ctx: &GpuContext) -> Self {
        let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("iteration passes"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * MAX_BATCH as u32,
        });
        let resolved = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: 16 * MAX_BATCH as u64,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps staging"),
            size: 16 * MAX_BATCH as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Timer {
            queries,
            resolved,
            staging,
        }
    }

    /// The timestamps of the pass of iteration `i` of a batch.
    fn writes(&self, i: usize) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(2 * i as u32),
            end_of_pass_write_index: Some(2 * i as u32 + 1),
        }
    }

    /// Queues the copy of the first `passes` passes' timestamps to the staging buffer.
    fn resolve(&self, enc: &mut wgpu::CommandEncoder, passes: usize) {
        let q = 2 * passes as u32;
        enc.resolve_query_set(&self.queries, 0..q, &self.resolved, 0);
        enc.copy_buffer_to_buffer(&self.resolved, 0, &self.staging, 0, 8 * u64::from(q));
    }

    /// Seconds of each of the first `passes` passes.
    fn read(&self, ctx: &GpuContext, passes: usize) -> Result<Vec<f64>> {
        let bytes = map_and_read(ctx, &self.staging, 16 * passes as u64)?;
        let ticks: &[u64] = bytemuck::cast_slice(&bytes);
        let period = f64::from(ctx.queue.get_timestamp_period());
        Ok(ticks
            .chunks_exact(2)
            .map(|t| t[1].saturating_sub(t[0]) as f64 * period * 1e-9)
            .collect())
    }
}

/// Lloyd's per-iteration steps on a GPU.
pub(crate) struct GpuLloyd {
    ctx: Arc<GpuContext>,
    layout: Layout,
    k: usize,
    dim: usize,
    weighted: bool,
    /// The power of two the weights were multiplied by on upload.
    weight_unit: f64,
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
    split: wgpu::ComputePipeline,
    copy_stats_bind: wgpu::BindGroup,
    update_bind: wgpu::BindGroup,
    split_bind: wgpu::BindGroup,
    extremes: Option<ExtremesPasses>,
    /// The batch's indirect dispatch arguments (see `empty_cells.wgsl`) and their pristine
    /// values: a stop flag, then one (x, 1, 1) per chunk and one for `update`.
    dispatch: wgpu::Buffer,
    dispatch_args: Vec<u32>,
    /// The error of the last iteration of the previous batch, as its 96-bit words.
    previous: Option<[u32; 3]>,
    /// Per-iteration records written on the device (see `history.wgsl`).
    history: wgpu::Buffer,
    history_staging: wgpu::Buffer,
    /// Whether `stats_staging` holds the statistics of the last assignment.
    staged: bool,
    cached: Option<CellStats>,
    /// Exact total of the cached cells' squared errors.
    cached_sse: f64,
    /// The fit's parameter block as uploaded (CLVQ rewrites its step fields).
    base_params: Vec<u8>,
    /// Timestamps around the assignment pass, when the adapter has them.
    timer: Option<Timer>,
    device_seconds: Option<f64>,
    /// The fit's parameter block (first), then each chunk's.
    params: Vec<wgpu::Buffer>,
    // Kept alive for the bind groups.
    _kept: Vec<wgpu::Buffer>,
    work: wgpu::Buffer,
    far_x: wgpu::Buffer,
    /// Fresh samples each iteration ([`GpuLloyd::draw_fresh`]).
    fresh: Option<Fresh>,
}

/// The generator's state for fresh samples each iteration.
struct Fresh {
    pipeline: wgpu::ComputePipeline,
    /// Per chunk: its parameter block (base of the chunk's values at iteration 0) and its
    /// bind group (the chunk, and the history's record count as the iteration).
    params: Vec<(wgpu::Buffer, Params)>,
    binds: Vec<wgpu::BindGroup>,
    /// Values one iteration draws (M·d).
    draw: u64,
    /// Iterations drawn in earlier batches.
    done: u64,
}

/// Smallest positive weight, relative to the largest, that the fixed-point sums resolve to
/// f32 precision: they hold 2⁶¹ units of the largest weight's contribution, so a weight
/// 2⁻³⁷ of it still gets 2²⁴ units.
const WEIGHT_RANGE: f64 = 1.0 / (1u64 << 37) as f64;

/// The power of two 2^t that brings the largest weight into [0.5, 1), and the weights times
/// it; weights whose range the fixed-point sums cannot hold are refused.
fn unit_weights(w: &[f32]) -> Result<(f64, Vec<f32>)> {
    let max = w.iter().fold(0.0f64, |m, &v| m.max(f64::from(v)));
    let min = w
        .iter()
        .filter(|&&v| v > 0.0)
        .fold(f64::INFINITY, |m, &v| m.min(f64::from(v)));
    if min < max * WEIGHT_RANGE {
        return Err(Error::OutOfRange(format!(
            "the weights span {min:e} to {max:e}, more than the GPU's fixed-point sums resolve \
             (a ratio of 2^37): use --device cpu, or give the smallest weights more"
        )));
    }
    let (_, e) = libm::frexp(max);
    let unit = libm::scalbn(1.0, -e);
    Ok((
        unit,
        w.iter().map(|&v| (f64::from(v) * unit) as f32).collect(),
    ))
}

fn norms_of(c: &[f64], dim: usize) -> Vec<f32> {
    c.chunks_exact(dim)
        .map(|r| r.iter().map(|&v| (v as f32) * (v as f32)).sum())
        .collect()
}

impl GpuLloyd {
    /// Builds the pipelines and buffers of one fit. `init` is `k x dim`; `weights` (Dense
    /// only) holds one validated weight per point. The d-D kernel runs as
    /// [`DenseKernel::chosen`] says.
    pub(crate) fn new(
        ctx: Arc<GpuContext>,
        layout: Layout,
        points: ResidentPoints,
        dim: usize,
        init: &[f64],
        weights: Option<&[f32]>,
    ) -> Result<Self> {
        let kernel = match layout {
            Layout::Dense => DenseKernel::chosen(&ctx)?,
            Layout::OneD => DenseKernel {
                tile: tiles::DEFAULT,
                local_sums: false,
            },
        };
        Self::with_kernel(ctx, layout, points, dim, init, weights, kernel)
    }

    /// [`GpuLloyd::new`] with the d-D kernel given.
    pub(crate) fn with_kernel(
        ctx: Arc<GpuContext>,
        layout: Layout,
        points: ResidentPoints,
        dim: usize,
        init: &[f64],
        weights: Option<&[f32]>,
        kernel: DenseKernel,
    ) -> Result<Self> {
        let tile = kernel.tile;
        tile.check(&ctx)?;
        let k = init.len() / dim;
        if k > MAX_WORKGROUPS * 64 {
            return Err(Error::Gpu(format!(
                "k = {k} is more than the GPU backend's {} centroids",
                MAX_WORKGROUPS * 64
            )));
        }
        let stride = cell_stride(dim);
        // Workgroup accumulators pay off when a block's points share cells: with k at most
        // the block's BP points, a flush of k cells never adds more than the block would have
        // added directly, and when k is small, far less, on far fewer contended addresses.
        let local_budget = kernel.tile.local_budget(&ctx);
        let dense_local = layout == Layout::Dense
            && kernel.local_sums
            && k <= kernel.tile.bp as usize
            && (k * stride) as u64 <= u64::from(local_budget);
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
        // Weights are scaled by a power of two so that the largest is about 1 (exact); the
        // reported masses and errors are scaled back.
        let (weights, weight_unit) = match weights {
            Some(w) => {
                let (unit, scaled) = unit_weights(w)?;
                (Some(scaled), unit)
            }
            None => (None, 1.0),
        };
        let weights = weights.as_deref();
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
            use_local: u32::from(match layout {
                Layout::OneD => k <= LOCAL_CELLS_1D,
                Layout::Dense => dense_local,
            }),
            sorted: u32::from(layout == Layout::OneD),
            weighted: u32::from(weights.is_some()),
            ..Default::default()
        };
        let ctx2 = ctx.clone();
        let c = &*ctx2;
        guarded(c, "building the GPU pipelines and buffers", || {
            let assign = match layout {
                Layout::OneD => c.pipeline("assign_1d", shaders::assign_1d, "main"),
                Layout::Dense => {
                    let words = if dense_local { local_budget } else { NO_LOCAL };
                    c.pipeline(&tile.pipeline_key(words), || tile.source(words), "main")
                }
            };
            let copy_stats = c.pipeline("copy_stats", shaders::update, "copy_stats");
            let update = c.pipeline("update", shaders::update, "update");
            let split = c.pipeline("split_empty", shaders::update, "split_empty");
            // One bind group per chunk serves the three passes (see `extremes.wgsl`).
            let group: &[(u32, bool)] = &[
                (0, true),
                (1, true),
                (3, false),
                (5, true),
                (7, true),
                (8, false),
                (9, false),
            ];
            let pass = |entry: &str| c.pipeline_with(entry, shaders::extremes, entry, Some(group));
            let extremes = (layout == Layout::Dense).then(|| ExtremesPasses {
                farthest: pass("farthest"),
                far_copy: pass("far_copy"),
                near_compare: pass("near_compare"),
            });
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
            let work = empty_storage(
                c,
                "empty-cell work",
                4 * (WORK_CELL_WORDS * k + WORK_FLAGS) as u64,
            );
            let far_x = empty_storage(c, "farthest points", 4 * (k * dim) as u64);
            let history_bytes = 4 * (HISTORY_HEADER + HISTORY_RECORD * MAX_BATCH) as u64;
            let history = empty_storage(c, "history", history_bytes);
            let history_staging = c.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("history staging"),
                size: history_bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
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
                        base_lo: start as u32,
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
                let dists = labels
                    .as_ref()
                    .map(|_| empty_storage(c, "distances", 4 * len as u64));
                if let (Some(l), Some(d)) = (&labels, &dists) {
                    entries.extend([
                        (4, &norms),
                        (5, l),
                        (6, wbuf.as_ref().unwrap_or(&dummy)),
                        (7, d),
                    ]);
                }
                let bind = bind_buffers(c, "assign", &assign, &entries);
                let extremes_bind = match (&extremes, &labels, &dists) {
                    (Some(e), Some(l), Some(d)) => Some(bind_buffers(
                        c,
                        "extremes",
                        &e.farthest,
                        &[
                            (0, &p),
                            (1, &xs),
                            (3, &acc),
                            (5, l),
                            (7, d),
                            (8, &work),
                            (9, &far_x),
                        ],
                    )),
                    _ => None,
                };
                let workgroups = match layout {
                    Layout::OneD => len.div_ceil(256 * POINTS_PER_THREAD_1D),
                    // Workgroups with their own accumulators each flush them once: fewer of
                    // them, each taking more blocks, flush less.
                    Layout::Dense if dense_local => {
                        len.div_ceil(tile.bp as usize).min(LOCAL_WORKGROUPS)
                    }
                    Layout::Dense => len.div_ceil(tile.bp as usize),
                }
                .clamp(1, MAX_WORKGROUPS) as u32;
                chunks.push(Chunk {
                    n: len,
                    xs,
                    labels,
                    bind,
                    extremes: extremes_bind,
                    workgroups,
                });
                params.push(p);
                weight_bufs.extend(wbuf);
                weight_bufs.extend(dists);
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
                &[
                    (0, &params[0]),
                    (1, &acc),
                    (2, &cents),
                    (3, &norms),
                    (5, &work),
                    (9, &far_x),
                ],
            );
            let mut dispatch_args = vec![0u32];
            for ch in &chunks {
                dispatch_args.extend([ch.workgroups, 1, 1]);
            }
            dispatch_args.extend([k.div_ceil(64) as u32, 1, 1]);
            let dispatch = storage(
                c,
                "indirect dispatches",
                bytemuck::cast_slice(&dispatch_args),
                wgpu::BufferUsages::INDIRECT,
            );
            let split_bind = bind_buffers(
                c,
                "split empty cells",
                &split,
                &[
                    (0, &params[0]),
                    (1, &acc),
                    (2, &cents),
                    (3, &norms),
                    (5, &work),
                    (6, &history),
                    (7, &dispatch),
                    (9, &far_x),
                ],
            );
            GpuLloyd {
                ctx: ctx.clone(),
                layout,
                k,
                dim,
                weighted: weights.is_some(),
                weight_unit,
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
                split,
                copy_stats_bind,
                update_bind,
                split_bind,
                extremes,
                dispatch,
                dispatch_args,
                previous: None,
                history,
                history_staging,
                staged: false,
                cached: None,
                cached_sse: 0.0,
                base_params: bytemuck::bytes_of(&base).to_vec(),
                timer: c.timestamps.then(|| Timer::new(c)),
                device_seconds: None,
                params,
                _kept: weight_bufs,
                work,
                far_x,
                fresh: None,
            }
        })
    }

    fn ensure_stats(&mut self) -> Result<&CellStats> {
        if self.cached.is_none() {
            if !self.staged {
                return Err(Error::Gpu(
                    "no cell statistics since the centroids last moved: assign first".into(),
                ));
            }
            let size = 4 * (self.k * STAT_WORDS) as u64;
            let bytes = map_and_read(&self.ctx, &self.stats_staging, size)?;
            let words: &[u32] = bytemuck::cast_slice(&bytes);
            let mut st = CellStats::zeros(self.k);
            let (se, sw) = (f64::from(self.scale_e), f64::from(self.scale_w));
            // The total as `split_empty` forms it on the device: exact, then rounded once.
            let mut total = 0i128;
            for (j, w) in words.chunks_exact(STAT_WORDS).enumerate() {
                st.counts[j] = u64::from(w[0]);
                st.mass[j] = if self.weighted {
                    words_to_f64(&w[1..4]) / sw / self.weight_unit
                } else {
                    f64::from(w[0])
                };
                st.sse[j] = words_to_f64(&w[4..7]) / se / self.weight_unit;
                total += words_to_i128(&w[4..7]);
            }
            self.cached = Some(st);
            self.cached_sse = total as f64 / se / self.weight_unit;
            if let Some(t) = &self.timer {
                self.device_seconds = t.read(&self.ctx, 1)?.first().copied();
            }
        }
        Ok(self.cached.as_ref().expect("filled above"))
    }

    /// Rewrites the stop rule's state before a submission: the tolerance (0 for a single
    /// update), an empty history whose header holds the error before it, and the pristine
    /// indirect arguments.
    fn prepare(&self, tolerance: f64, previous: Option<[u32; 3]>) {
        let mut params: Params = *bytemuck::from_bytes(&self.base_params);
        params.tolerance = tolerance as f32;
        let q = &self.ctx.queue;
        q.write_buffer(&self.params[0], 0, bytemuck::bytes_of(&params));
        let prev = previous.unwrap_or([0, 0, NO_PREVIOUS]);
        let header = [0, prev[0], prev[1], prev[2]];
        q.write_buffer(&self.history, 0, bytemuck::cast_slice(&header));
        q.write_buffer(&self.dispatch, 0, bytemuck::cast_slice(&self.dispatch_args));
    }

    /// Records up to `count` (at most [`MAX_BATCH`]) whole iterations in one command buffer,
    /// runs them and reads back the history of those the device ran (fewer when its stop rule
    /// held).
    fn run_batch(&mut self, count: usize, tolerance: f64) -> Result<Vec<StepRecord>> {
        self.prepare(tolerance, self.previous);
        if let Some(f) = &self.fresh {
            // This batch's iteration i draws from (done + i)·M·d; the kernel adds i·M·d.
            for ((buf, p), _) in f.params.iter().zip(&self.chunks) {
                let base = (u64::from(p.base_hi) << 32 | u64::from(p.base_lo)) + f.done * f.draw;
                let moved = Params {
                    base_lo: base as u32,
                    base_hi: (base >> 32) as u32,
                    ..*p
                };
                self.ctx
                    .queue
                    .write_buffer(buf, 0, bytemuck::bytes_of(&moved));
            }
        }
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        for i in 0..count {
            if i > 0 && i % SUBMIT_EVERY == 0 {
                // Hand the device what is encoded so far: it runs while the rest is encoded.
                let done = std::mem::replace(
                    &mut enc,
                    self.ctx.device.create_command_encoder(&Default::default()),
                );
                self.ctx.queue.submit(Some(done.finish()));
            }
            enc.clear_buffer(&self.acc, 0, None);
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("lloyd iteration"),
                timestamp_writes: self.timer.as_ref().map(|t| t.writes(i)),
            });
            if let Some(f) = &self.fresh {
                pass.set_pipeline(&f.pipeline);
                for (bind, ch) in f.binds.iter().zip(&self.chunks) {
                    let values = ch.n * self.dim;
                    pass.set_bind_group(0, bind, &[]);
                    pass.dispatch_workgroups(points::generate_workgroups(values), 1, 1);
                }
            }
            self.record_assignment(&mut pass, Dispatch::Indirect);
            self.record_update(&mut pass, Dispatch::Indirect);
        }
        let bytes = 4 * (HISTORY_HEADER + HISTORY_RECORD * count) as u64;
        enc.copy_buffer_to_buffer(&self.history, 0, &self.history_staging, 0, bytes);
        if let Some(t) = &self.timer {
            t.resolve(&mut enc, count);
        }
        self.ctx.queue.submit(Some(enc.finish()));
        let raw = map_and_read(&self.ctx, &self.history_staging, bytes)?;
        let words: &[u32] = bytemuck::cast_slice(&raw);
        let ran = words[0] as usize;
        if ran == 0 || ran > count {
            return Err(Error::Gpu(format!(
                "the device recorded {ran} of {count} iterations"
            )));
        }
        let times = match &self.timer {
            Some(t) => t.read(&self.ctx, ran)?.into_iter().map(Some).collect(),
            None => vec![None; ran],
        };
        if let Some(f) = &mut self.fresh {
            f.done += ran as u64;
        }
        let records = &words[HISTORY_HEADER..HISTORY_HEADER + HISTORY_RECORD * ran];
        let last = &records[HISTORY_RECORD * (ran - 1)..];
        self.previous = Some([last[0], last[1], last[2]]);
        let se = f64::from(self.scale_e) * self.weight_unit;
        Ok(records
            .chunks_exact(HISTORY_RECORD)
            .zip(times)
            .map(|(r, device_seconds)| StepRecord {
                sse: words_to_f64(&r[0..3]) / se,
                empty_cells_split: (r[3] & !MOVED_BIT) as usize,
                moved: r[3] & MOVED_BIT != 0,
                device_seconds,
                seconds: None,
            })
            .collect())
    }

    /// Dispatches the bound pipeline with `workgroups` workgroups, or with the batch's
    /// indirect arguments of `slot` (which hold the same count until the stop rule holds).
    fn dispatch_in(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        mode: Dispatch,
        slot: usize,
        workgroups: u32,
    ) {
        match mode {
            Dispatch::Direct => pass.dispatch_workgroups(workgroups, 1, 1),
            Dispatch::Indirect => {
                pass.dispatch_workgroups_indirect(&self.dispatch, 4 * (1 + 3 * slot) as u64)
            }
        }
    }

    /// Queues the assignment and reduction of every chunk into `pass`.
    fn record_assignment(&self, pass: &mut wgpu::ComputePass<'_>, mode: Dispatch) {
        pass.set_pipeline(&self.assign);
        for (i, ch) in self.chunks.iter().enumerate() {
            pass.set_bind_group(0, &ch.bind, &[]);
            self.dispatch_in(pass, mode, i, ch.workgroups);
        }
    }

    /// Queues the centroid update and the empty-cell policy into `pass`; the policy writes
    /// its splits into the current history record and advances the record count. The policy
    /// is always dispatched directly: it reads the indirect arguments, so it cannot also be
    /// dispatched from them, and it returns at once after the batch has stopped. In d-D the
    /// passes that find each cell's farthest point come between (they do nothing unless a
    /// cell is empty), each over every chunk before the next begins.
    fn record_update(&self, pass: &mut wgpu::ComputePass<'_>, mode: Dispatch) {
        pass.set_pipeline(&self.update);
        pass.set_bind_group(0, &self.update_bind, &[]);
        let slot = self.chunks.len();
        self.dispatch_in(pass, mode, slot, self.k.div_ceil(64) as u32);
        if let Some(e) = &self.extremes {
            for pipeline in [&e.farthest, &e.far_copy, &e.near_compare] {
                pass.set_pipeline(pipeline);
                for (i, ch) in self.chunks.iter().enumerate() {
                    if let Some(b) = &ch.extremes {
                        pass.set_bind_group(0, b, &[]);
                        self.dispatch_in(pass, mode, i, ch.workgroups);
                    }
                }
            }
        }
        pass.set_pipeline(&self.split);
        pass.set_bind_group(0, &self.split_bind, &[]);
        pass.dispatch_workgroups(1, 1, 1);
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
        let generate = ctx.pipeline("generate", shaders::generate, "main");
        let no_step = points::no_step(&ctx);
        let base: Params = *bytemuck::from_bytes(&self.base_params);
        // A ring of parameter blocks, one per step of a submission: each step's generator
        // offset and step size are written into their own buffers, so CLVQ_RING steps go to
        // the device in one submission instead of one each.
        let ring: Vec<_> = (0..CLVQ_RING)
            .map(|_| {
                let g = uniform_buffer(&ctx, "clvq generate params", &base);
                let gb = bind_buffers(
                    &ctx,
                    "clvq generate",
                    &generate,
                    &[(0, &g), (1, &self.chunks[0].xs), (2, &no_step)],
                );
                let u = uniform_buffer(&ctx, "clvq update params", &base);
                let ub = bind_buffers(
                    &ctx,
                    "clvq update",
                    &self.update,
                    &[
                        (0, &u),
                        (1, &self.acc),
                        (2, &self.cents),
                        (3, &self.norms),
                        (5, &self.work),
                        (9, &self.far_x),
                    ],
                );
                (g, gb, u, ub)
            })
            .collect();
        let mut first = 1;
        while first <= steps {
            let count = CLVQ_RING.min(steps + 1 - first);
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            for (j, (g, gb, u, ub)) in ring.iter().take(count).enumerate() {
                let step = first + j;
                let start = (step - 1) as u64 * batch as u64;
                let gp = generation_params(law, batch, seed, start);
                ctx.queue.write_buffer(g, 0, bytemuck::bytes_of(&gp));
                let up = Params {
                    p0: gamma(step) as f32,
                    p1: batch as f32,
                    ..base
                };
                ctx.queue.write_buffer(u, 0, bytemuck::bytes_of(&up));
                {
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    pass.set_pipeline(&generate);
                    pass.set_bind_group(0, gb, &[]);
                    pass.dispatch_workgroups(points::generate_workgroups(batch), 1, 1);
                }
                enc.clear_buffer(&self.acc, 0, None);
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&self.assign);
                pass.set_bind_group(0, &self.chunks[0].bind, &[]);
                pass.dispatch_workgroups(self.chunks[0].workgroups, 1, 1);
                pass.set_pipeline(&self.update);
                pass.set_bind_group(0, ub, &[]);
                pass.dispatch_workgroups(self.k.div_ceil(64) as u32, 1, 1);
            }
            ctx.queue.submit(Some(enc.finish()));
            first += count;
            // Rewriting the ring for the next submission is safe without waiting: a queued
            // write lands after the submissions before it. Waiting every few submissions
            // only bounds the work queued ahead of the device.
            if (first / CLVQ_RING).is_multiple_of(4) {
                ctx.device
                    .poll(wgpu::PollType::wait_indefinitely())
                    .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
            }
        }
        self.cached = None;
        self.staged = false;
        Ok(())
    }

    /// Turns the fit into an encoder: assignments keep labels, counts and errors but skip the
    /// coordinate sums, which only an update needs.
    pub(crate) fn encode_only(&mut self) {
        let mut base: Params = *bytemuck::from_bytes(&self.base_params);
        base.encode_only = 1;
        for (ch, buf) in self.chunks.iter().zip(&self.params[1..]) {
            let p = Params {
                n: ch.n as u32,
                ..base
            };
            self.ctx.queue.write_buffer(buf, 0, bytemuck::bytes_of(&p));
        }
    }

    /// From now on every iteration first replaces the points with fresh draws of `law`:
    /// iteration t takes values t·M·d onwards of the stream for `seed` (M points of `dim`
    /// coordinates), inside the batch's own submissions, so it costs no read-back. Iteration
    /// 0 draws the values the points were generated with.
    pub(crate) fn draw_fresh(&mut self, law: &crate::law::Law, seed: u64) -> Result<()> {
        let ctx = self.ctx.clone();
        let pipeline = ctx.pipeline("generate", shaders::generate, "main");
        let draw = self.chunks.iter().map(|c| c.n * self.dim).sum::<usize>() as u64;
        let mut params = Vec::new();
        let mut binds = Vec::new();
        let mut start = 0u64;
        for ch in &self.chunks {
            let values = ch.n * self.dim;
            let mut p = generation_params(law, values, seed, start);
            p.draw_lo = draw as u32;
            p.draw_hi = (draw >> 32) as u32;
            let buf = uniform_buffer(&ctx, "fresh draw params", &p);
            binds.push(bind_buffers(
                &ctx,
                "fresh draw",
                &pipeline,
                &[(0, &buf), (1, &ch.xs), (2, &self.history)],
            ));
            params.push((buf, p));
            start += values as u64;
        }
        self.fresh = Some(Fresh {
            pipeline,
            params,
            binds,
            draw,
            done: 0,
        });
        self.cached = None;
        self.staged = false;
        Ok(())
    }

    /// Whether the d-D kernel accumulates in workgroup memory first.
    pub(crate) fn local_sums(&self) -> bool {
        let p: &Params = bytemuck::from_bytes(&self.base_params);
        self.layout == Layout::Dense && p.use_local == 1
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
                timestamp_writes: self.timer.as_ref().map(|t| t.writes(0)),
            });
            self.record_assignment(&mut pass, Dispatch::Direct);
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
            t.resolve(&mut enc, 1);
        }
        self.ctx.queue.submit(Some(enc.finish()));
        self.staged = true;
        Ok(())
    }

    fn device_seconds(&mut self) -> Result<Option<f64>> {
        self.ensure_stats()?;
        Ok(self.device_seconds)
    }

    fn sse(&mut self) -> Result<f64> {
        self.ensure_stats()?;
        Ok(self.cached_sse)
    }

    /// The update and the empty-cell policy, on the device; one word read back (the splits
    /// and whether a centroid moved).
    fn update(&mut self) -> Result<Update> {
        self.prepare(0.0, None);
        self.previous = None;
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            self.record_update(&mut pass, Dispatch::Direct);
        }
        let splits_at = 4 * (HISTORY_HEADER + 3) as u64;
        enc.copy_buffer_to_buffer(&self.history, splits_at, &self.history_staging, 0, 4);
        self.ctx.queue.submit(Some(enc.finish()));
        let raw = map_and_read(&self.ctx, &self.history_staging, 4)?;
        self.staged = false;
        let word = bytemuck::cast_slice::<u8, u32>(&raw)[0];
        Ok(Update {
            splits: (word & !MOVED_BIT) as usize,
            moved: word & MOVED_BIT != 0,
        })
    }

    fn report_interval(&self) -> usize {
        REPORT_INTERVAL
    }

    fn iterate(&mut self, count: usize, tolerance: f64) -> Result<Vec<StepRecord>> {
        self.cached = None;
        self.staged = false;
        let mut out = Vec::new();
        let n: usize = self.chunks.iter().map(|c| c.n).sum();
        let per_point = match self.layout {
            Layout::OneD => (self.k as f64).log2() + 1.0,
            Layout::Dense => (self.k * self.dim) as f64,
        };
        let limit = (WORK_PER_SUBMISSION / (n as f64 * per_point)).clamp(1.0, MAX_BATCH as f64);
        while out.len() < count {
            let batch = (count - out.len()).min(limit as usize);
            let records = self.run_batch(batch, tolerance)?;
            let stopped = records.len() < batch;
            out.extend(records);
            if stopped {
                break;
            }
        }
        Ok(out)
    }

    fn set_centroids(&mut self, centroids: &[f64]) -> Result<()> {
        let mut c = centroids.to_vec();
        if self.layout == Layout::OneD {
            c.sort_by(f64::total_cmp);
        }
        let c32: Vec<f32> = c.iter().map(|&v| v as f32).collect();
        let q = &self.ctx.queue;
        q.write_buffer(&self.cents, 0, bytemuck::cast_slice(&c32));
        q.write_buffer(
            &self.norms,
            0,
            bytemuck::cast_slice(&norms_of(&c, self.dim)),
        );
        self.cached = None;
        self.staged = false;
        self.previous = None;
        Ok(())
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
