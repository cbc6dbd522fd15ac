//! Planning and allocation: the kernels, buffers and bind groups of one fit, built once.

use super::*;
use crate::weights::Weights;

/// Smallest positive weight, relative to the largest, that the fixed-point sums resolve to
/// f32 precision: they hold 2⁶¹ units of the largest weight's contribution, so a weight
/// 2⁻³⁷ of it still gets 2²⁴ units.
const WEIGHT_RANGE: f64 = 1.0 / (1u64 << 37) as f64;

/// The power of two 2^t that brings the largest weight into [0.5, 1), and the weights times
/// it, rounded to the device's f32; weights whose range the fixed-point sums cannot hold are
/// refused.
pub(super) fn unit_weights(w: Weights<'_>) -> Result<(f64, Vec<f32>)> {
    let max = w.iter().fold(0.0f64, f64::max);
    let min = w.iter().filter(|&v| v > 0.0).fold(f64::INFINITY, f64::min);
    if min < max * WEIGHT_RANGE {
        return Err(Error::OutOfRange(format!(
            "the weights span {min:e} to {max:e}, more than the GPU's fixed-point sums resolve \
             (a ratio of 2^37): use --device cpu, or give the smallest weights more"
        )));
    }
    let (_, e) = libm::frexp(max);
    let unit = libm::scalbn(1.0, -e);
    Ok((unit, w.iter().map(|v| (v * unit) as f32).collect()))
}

pub(super) fn norms_of(c: &[f64], dim: usize) -> Vec<f32> {
    c.chunks_exact(dim)
        .map(|r| r.iter().map(|&v| (v as f32) * (v as f32)).sum())
        .collect()
}

impl GpuLloyd {
    /// Builds the pipelines and buffers of one fit. `init` is `k x dim`; `weights` (Dense
    /// only) holds one validated weight per point. The d-D kernel runs as
    /// [`DenseKernel::chosen`] says for `options`.
    pub(crate) fn new(
        ctx: Arc<GpuContext>,
        layout: Layout,
        points: ResidentPoints,
        dim: usize,
        init: &[f64],
        weights: Option<Weights<'_>>,
        options: &GpuOptions,
    ) -> Result<Self> {
        let kernel = match layout {
            Layout::Dense => DenseKernel::chosen(&ctx, options)?,
            Layout::OneD => DenseKernel {
                tile: tiles::DEFAULT,
                local_sums: false,
            },
        };
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
        let chunk_base = ChunkParams {
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
            weighted: u32::from(weights.is_some()),
            ..Default::default()
        };
        let cell_base = CellParams {
            k: k as u32,
            dim: dim as u32,
            stride: stride as u32,
            scale_x,
            scale_e,
            scale_w,
            sorted: u32::from(layout == Layout::OneD),
            weighted: u32::from(weights.is_some()),
            ..Default::default()
        };
        let ctx2 = ctx.clone();
        let c = &*ctx2;
        guarded(c, "building the GPU pipelines and buffers", || {
            let assign = match layout {
                Layout::OneD => c.kernel(&kernels::ASSIGN_1D),
                Layout::Dense => {
                    let words = if dense_local { local_budget } else { NO_LOCAL };
                    c.pipeline(&kernels::ASSIGN_DENSE, &tile.pipeline_key(words), || {
                        tile.source(words)
                    })
                }
            };
            let copy_stats = c.kernel(&kernels::COPY_STATS);
            let update = c.kernel(&kernels::UPDATE);
            let split = c.kernel(&kernels::SPLIT_EMPTY);
            // One bind group per chunk serves the three passes (see `extremes.wgsl`).
            let extremes = (layout == Layout::Dense).then(|| ExtremesPasses {
                farthest: c.kernel(&kernels::FARTHEST),
                far_copy: c.kernel(&kernels::FAR_COPY),
                near_compare: c.kernel(&kernels::NEAR_COMPARE),
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
            let history_staging = staging(c, "history staging", history_bytes);
            let stats = empty_storage(c, "stats", 4 * (k * STAT_WORDS) as u64);
            let stats_staging = staging(c, "stats staging", 4 * (k * STAT_WORDS) as u64);
            let cell_params_buf = uniform_buffer(c, "cell params", &cell_base);
            let mut weight_bufs = Vec::new();
            let dummy = storage(c, "no weights", &[0u8; 4], wgpu::BufferUsages::empty());
            let mut chunks = Vec::new();
            let mut start = 0usize;
            for (len, xs, labels) in points.chunks {
                let p = uniform_buffer(
                    c,
                    "chunk params",
                    &ChunkParams {
                        n: len as u32,
                        first: start as u32,
                        ..chunk_base
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
                    first: start,
                    params: p,
                    xs,
                    weights: wbuf.clone(),
                    labels,
                    dists,
                    bind,
                    extremes: extremes_bind,
                    workgroups,
                });
                weight_bufs.extend(wbuf);
                start += len;
            }
            weight_bufs.push(dummy);
            let copy_stats_bind = bind_buffers(
                c,
                "copy stats",
                &copy_stats,
                &[(0, &cell_params_buf), (1, &acc), (4, &stats)],
            );
            // The update and the split share the cells' buffers; the split also writes the
            // history and the indirect arguments.
            let cells: [(u32, &wgpu::Buffer); 6] = [
                (0, &cell_params_buf),
                (1, &acc),
                (2, &cents),
                (3, &norms),
                (5, &work),
                (9, &far_x),
            ];
            let update_bind = bind_buffers(c, "update", &update, &cells);
            let mut dispatch_args = vec![0u32];
            for ch in &chunks {
                dispatch_args.extend([ch.workgroups, 1, 1]);
            }
            dispatch_args.extend([k.div_ceil(CELL_WORKGROUP) as u32, 1, 1]);
            let dispatch = storage(
                c,
                "indirect dispatches",
                bytemuck::cast_slice(&dispatch_args),
                wgpu::BufferUsages::INDIRECT,
            );
            let mut split_entries = cells.to_vec();
            split_entries.extend([(6, &history), (7, &dispatch)]);
            let split_bind = bind_buffers(c, "split empty cells", &split, &split_entries);
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
                cell_params: cell_base,
                cell_params_buf,
                chunk_params: chunk_base,
                timer: c.timestamps.then(|| Timer::new(c)),
                device_seconds: None,
                _kept: weight_bufs,
                work,
                far_x,
                fresh: None,
            }
        })
    }
}
