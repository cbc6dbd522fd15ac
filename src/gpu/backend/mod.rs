//! The GPU backend: points resident in device buffers (split into chunks no larger than one
//! storage binding), pipelines and bind groups built once per fit. A batch of iterations is
//! one submission: the device reduces, updates, re-seeds empty cells and records each
//! iteration's error itself, and the host reads the small history back once per batch.

use std::sync::Arc;

mod batch;
mod fresh;
mod plan;
mod seeding;
mod stochastic;
mod timer;

use self::fresh::Fresh;
use self::plan::norms_of;
use self::timer::Timer;
use super::buffers::{
    CellParams, ChunkParams, DrawParams, bind_buffers, empty_storage, guarded, map_and_read,
    read_back, staging, storage, uniform_buffer,
};
use super::context::GpuContext;
use super::fixed::{scale_for, words_to_f64, words_to_i128};
use super::kernels;
use super::layout::{
    CELL_WORKGROUP, HISTORY_HEADER, HISTORY_RECORD, LOCAL_CELLS_1D, MOVED_BIT, STAT_WORDS,
    WORK_CELL_WORDS, WORK_FLAGS, cell_stride,
};
use super::points::{self, MAX_WORKGROUPS, ResidentPoints, generation_params};
use super::tiles::{self, DenseKernel, NO_LOCAL};
use crate::backend::{Backend, BackendLayout, CellStats, StepRecord, Update};
use crate::device::GpuOptions;
use crate::error::{Error, Result};
use crate::weights::Weights;

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
    /// Index of its first point in the whole.
    first: usize,
    /// Its parameter block.
    params: wgpu::Buffer,
    xs: wgpu::Buffer,
    /// Its points' weights (scaled by the backend's `weight_unit`), when weighted.
    weights: Option<wgpu::Buffer>,
    labels: Option<wgpu::Buffer>,
    /// Each point's squared distance to its centroid (f32, frame units; d-D).
    dists: Option<wgpu::Buffer>,
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
    /// The per-cell passes' parameter block as uploaded (CLVQ rewrites its step fields),
    /// and its buffer.
    cell_params: CellParams,
    cell_params_buf: wgpu::Buffer,
    /// The chunks' parameter block, less each chunk's own fields.
    chunk_params: ChunkParams,
    /// Timestamps around the assignment pass, when the adapter has them.
    timer: Option<Timer>,
    device_seconds: Option<f64>,
    // Kept alive for the bind groups.
    _kept: Vec<wgpu::Buffer>,
    work: wgpu::Buffer,
    far_x: wgpu::Buffer,
    /// Fresh samples each iteration ([`GpuLloyd::draw_fresh`]).
    fresh: Option<Fresh>,
}

impl GpuLloyd {
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

    /// Each point's squared distance (f32 frame units, as the kernel measured it) to its
    /// centroid in the last assignment, in point order (Dense layout).
    pub(crate) fn distances(&mut self) -> Result<Vec<f64>> {
        let d: Vec<f32> = self.per_point(|c| c.dists.as_ref(), "distances")?;
        Ok(d.into_iter().map(f64::from).collect())
    }

    /// One value per point, read back from each chunk's buffer that `pick` names, in point
    /// order; the 1-D kernel keeps no such buffers.
    fn per_point<T: bytemuck::Pod>(
        &self,
        pick: impl Fn(&Chunk) -> Option<&wgpu::Buffer>,
        what: &str,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for ch in &self.chunks {
            let buf = pick(ch)
                .ok_or_else(|| Error::Unsupported(format!("the 1-D kernel keeps no {what}")))?;
            let bytes = read_back(&self.ctx, buf, 0, 4 * ch.n as u64)?;
            out.extend_from_slice(bytemuck::cast_slice::<u8, T>(&bytes));
        }
        Ok(out)
    }

    /// Replaces the points with as many new ones of the same dimension, within the bound the
    /// backend was built for; the labels and statistics are those of the next assignment.
    pub(crate) fn replace_points(&mut self, data: &[f32]) -> Result<()> {
        let total: usize = self.chunks.iter().map(|c| c.n * self.dim).sum();
        if data.len() != total {
            return Err(Error::InvalidArgument(format!(
                "{} values replace {total}",
                data.len()
            )));
        }
        let mut start = 0;
        for ch in &self.chunks {
            let len = ch.n * self.dim;
            self.ctx
                .queue
                .write_buffer(&ch.xs, 0, bytemuck::cast_slice(&data[start..start + len]));
            start += len;
        }
        self.cached = None;
        self.staged = false;
        Ok(())
    }

    /// Turns the fit into an encoder: assignments keep labels, counts and errors but skip the
    /// coordinate sums, which only an update needs.
    pub(crate) fn encode_only(&mut self) {
        self.chunk_params.encode_only = 1;
        for ch in &self.chunks {
            let p = ChunkParams {
                n: ch.n as u32,
                first: ch.first as u32,
                ..self.chunk_params
            };
            self.ctx
                .queue
                .write_buffer(&ch.params, 0, bytemuck::bytes_of(&p));
        }
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
            pass.dispatch_workgroups(self.k.div_ceil(CELL_WORKGROUP) as u32, 1, 1);
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

    /// Labels of the last assignment, in point order (Dense layout).
    fn labels(&mut self) -> Result<Vec<u32>> {
        self.per_point(|c| c.labels.as_ref(), "labels")
    }

    /// CLVQ in mini-batches on the device (see [`GpuLloyd::clvq_steps`]).
    fn stochastic_steps(
        &mut self,
        law: &crate::law::Law,
        seed: u64,
        steps: usize,
        gamma: &dyn Fn(usize) -> f64,
    ) -> Result<()> {
        self.clvq_steps(law, seed, steps, gamma)
    }

    fn kmeans_plus_plus(
        &mut self,
        weights: Option<Weights<'_>>,
        k: usize,
        seed: u64,
        candidates: usize,
    ) -> Result<Option<Vec<usize>>> {
        self.greedy_seeding(weights, k, seed, candidates)
    }

    fn layout(&self) -> BackendLayout {
        BackendLayout {
            chunks: self.chunks.len(),
            local_sums: self.layout == Layout::Dense && self.chunk_params.use_local == 1,
        }
    }
}
