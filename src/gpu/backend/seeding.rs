//! Greedy k-means++ over the resident points (`seeding.wgsl`): the device keeps each point's
//! squared distance to the nearest centroid chosen so far and measures the candidates; the
//! host draws from the same generator as the CPU's [`crate::init`], so both devices take
//! the same rows unless a draw lands within rounding of a boundary between two points.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{GpuLloyd, Layout};
use crate::error::Result;
use crate::gpu::buffers::{
    SeedParams, bind_buffers, empty_storage, guarded, map_and_read, staging, storage,
    uniform_buffer,
};
use crate::gpu::kernels::{NEAREST, POTENTIALS};
use crate::gpu::layout::{SEED_BLOCK, SEED_MAX_CANDIDATES, SEED_WORKGROUP};
use crate::gpu::points::MAX_WORKGROUPS;
use crate::init::{draw_target, pick_live, pick_weighted};
use crate::weights::Weights;

/// Most workgroups of one chunk's potentials pass: each takes points in strides, so the
/// partial sums read back stay a few thousand whatever the chunk's size.
const POTENTIAL_WORKGROUPS: usize = 1024;

/// One chunk's seeding buffers.
struct SeedChunk {
    n: usize,
    first: usize,
    xs: wgpu::Buffer,
    params: wgpu::Buffer,
    base: SeedParams,
    d2: wgpu::Buffer,
    sums: wgpu::Buffer,
    partials: wgpu::Buffer,
    bind: wgpu::BindGroup,
    blocks: usize,
    grid: (u32, u32),
    potential_workgroups: u32,
}

/// A draw's target located among the blocks: its block (in point order over every chunk)
/// and how far into the block it lands.
struct Landing {
    block: usize,
    residual: f64,
}

impl GpuLloyd {
    /// The rows greedy k-means++ takes with `candidates` draws a step (see
    /// [`crate::init::kmeans_plus_plus`]), measured on the device; None where this backend
    /// leaves seeding to the host (1-D layout, or more candidates than one pass sums).
    /// `weights` are the fit's, as given to the backend.
    pub(crate) fn greedy_seeding(
        &mut self,
        weights: Option<Weights<'_>>,
        k: usize,
        seed: u64,
        candidates: usize,
    ) -> Result<Option<Vec<usize>>> {
        if self.layout != Layout::Dense || candidates == 0 || candidates > SEED_MAX_CANDIDATES {
            return Ok(None);
        }
        let cands = guarded(&self.ctx, "allocating the seeding candidates", || {
            empty_storage(&self.ctx, "candidates", 4 * (candidates * self.dim) as u64)
        })?;
        let chunks = self.seed_chunks(candidates, &cands)?;
        let n: usize = chunks.iter().map(|c| c.n).sum();
        let w = |i: usize| weights.map_or(1.0, |w| w.get(i));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let first = pick_weighted(&mut rng, n, w, w);
        let mut chosen = vec![first];
        let mut sums = self.fold_nearest(&chunks, &cands, first, true)?;
        while chosen.len() < k {
            // Block totals of w · D², in point order; the prefix locates each draw.
            let mut ends = Vec::with_capacity(sums.len());
            let mut total = 0.0f64;
            for &s in &sums {
                total += s;
                ends.push(total);
            }
            let mut picks = vec![usize::MAX; candidates];
            let mut landings = Vec::new();
            for (slot, pick) in picks.iter_mut().enumerate() {
                match draw_target(&mut rng, total) {
                    None => *pick = pick_live(&mut rng, n, w),
                    Some(target) => {
                        let block = ends.partition_point(|&e| e <= target);
                        // Past the last block only through rounding: the last with weight.
                        let block = if block < sums.len() {
                            block
                        } else {
                            sums.iter().rposition(|&s| s > 0.0).unwrap_or(0)
                        };
                        let before = if block == 0 { 0.0 } else { ends[block - 1] };
                        landings.push((
                            slot,
                            Landing {
                                block,
                                residual: target - before,
                            },
                        ));
                    }
                }
            }
            self.resolve_landings(&chunks, &landings, w, &mut picks, &mut rng, n)?;
            // One candidate (plain k-means++) is taken without measuring it.
            let best = if picks.len() == 1 {
                0
            } else {
                let potential = self.potentials_of(&chunks, &cands, &picks)?;
                // The lowest potential, the earliest candidate on ties.
                (0..picks.len())
                    .min_by(|&a, &b| potential[a].total_cmp(&potential[b]).then(a.cmp(&b)))
                    .expect("at least one candidate")
            };
            let next = picks[best];
            chosen.push(next);
            sums = self.fold_nearest(&chunks, &cands, next, false)?;
        }
        Ok(Some(chosen))
    }

    /// Every chunk's parameters, buffers and bind group (one for both passes: one layout).
    fn seed_chunks(&self, candidates: usize, cands: &wgpu::Buffer) -> Result<Vec<SeedChunk>> {
        let ctx = &self.ctx;
        let nearest = ctx.kernel(&NEAREST);
        guarded(ctx, "allocating the seeding buffers", || {
            let dummy = storage(ctx, "no weights", &[0u8; 4], wgpu::BufferUsages::empty());
            self.chunks
                .iter()
                .map(|ch| {
                    let blocks = ch.n.div_ceil(SEED_BLOCK);
                    let x = blocks.clamp(1, MAX_WORKGROUPS);
                    let base = SeedParams {
                        n: ch.n as u32,
                        dim: self.dim as u32,
                        weighted: u32::from(ch.weights.is_some()),
                        candidates: candidates as u32,
                        reset: 1,
                        blocks_x: x as u32,
                        ..Default::default()
                    };
                    let potential_workgroups =
                        ch.n.div_ceil(SEED_WORKGROUP).clamp(1, POTENTIAL_WORKGROUPS);
                    let params = uniform_buffer(ctx, "seeding params", &base);
                    let d2 = empty_storage(ctx, "squared distances", 4 * ch.n as u64);
                    let sums = empty_storage(ctx, "block sums", 4 * blocks as u64);
                    let partials = empty_storage(
                        ctx,
                        "potentials",
                        4 * (potential_workgroups * SEED_MAX_CANDIDATES) as u64,
                    );
                    let bind = bind_buffers(
                        ctx,
                        "seeding",
                        &nearest,
                        &[
                            (0, &params),
                            (1, &ch.xs),
                            (2, ch.weights.as_ref().unwrap_or(&dummy)),
                            (3, &d2),
                            (4, cands),
                            (5, &sums),
                            (6, &partials),
                        ],
                    );
                    SeedChunk {
                        n: ch.n,
                        first: ch.first,
                        xs: ch.xs.clone(),
                        params,
                        base,
                        d2,
                        sums,
                        partials,
                        bind,
                        blocks,
                        grid: (x as u32, blocks.div_ceil(x) as u32),
                        potential_workgroups: potential_workgroups as u32,
                    }
                })
                .collect()
        })
    }

    /// Copies row `row` of the points into candidate slot `slot`.
    fn copy_row(
        &self,
        enc: &mut wgpu::CommandEncoder,
        chunks: &[SeedChunk],
        cands: &wgpu::Buffer,
        row: usize,
        slot: usize,
    ) {
        let c = chunks
            .iter()
            .find(|c| row >= c.first && row < c.first + c.n)
            .expect("a row of the points");
        let bytes = 4 * self.dim as u64;
        enc.copy_buffer_to_buffer(
            &c.xs,
            (row - c.first) as u64 * bytes,
            cands,
            slot as u64 * bytes,
            bytes,
        );
    }

    /// Folds the centroid at `row` into every point's D² (or starts D² from it, `reset`) and
    /// returns the block totals of w · D² in host units, in point order.
    fn fold_nearest(
        &self,
        chunks: &[SeedChunk],
        cands: &wgpu::Buffer,
        row: usize,
        reset: bool,
    ) -> Result<Vec<f64>> {
        let pipeline = self.ctx.kernel(&NEAREST);
        for c in chunks {
            let p = SeedParams {
                reset: u32::from(reset),
                ..c.base
            };
            self.ctx
                .queue
                .write_buffer(&c.params, 0, bytemuck::bytes_of(&p));
        }
        let total_blocks: usize = chunks.iter().map(|c| c.blocks).sum();
        let staging = staging(&self.ctx, "seeding read-back", 4 * total_blocks as u64);
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        self.copy_row(&mut enc, chunks, cands, row, 0);
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            for c in chunks {
                pass.set_bind_group(0, &c.bind, &[]);
                pass.dispatch_workgroups(c.grid.0, c.grid.1, 1);
            }
        }
        let mut at = 0u64;
        for c in chunks {
            enc.copy_buffer_to_buffer(&c.sums, 0, &staging, at, 4 * c.blocks as u64);
            at += 4 * c.blocks as u64;
        }
        self.ctx.queue.submit(Some(enc.finish()));
        let bytes = map_and_read(&self.ctx, &staging, 4 * total_blocks as u64)?;
        // The device's weights are the fit's times `weight_unit`, a power of two.
        Ok(bytemuck::cast_slice::<u8, f32>(&bytes)
            .iter()
            .map(|&s| f64::from(s) / self.weight_unit)
            .collect())
    }

    /// Turns each landing into a row: reads back the blocks the draws landed in and walks
    /// each from its start, as the CPU walks every point.
    fn resolve_landings(
        &self,
        chunks: &[SeedChunk],
        landings: &[(usize, Landing)],
        w: impl Fn(usize) -> f64,
        picks: &mut [usize],
        rng: &mut ChaCha8Rng,
        n: usize,
    ) -> Result<()> {
        if landings.is_empty() {
            return Ok(());
        }
        // Each block as (chunk, first point in the chunk, points).
        let span = |block: usize| {
            let mut b = block;
            for (ci, c) in chunks.iter().enumerate() {
                if b < c.blocks {
                    let start = b * SEED_BLOCK;
                    return (ci, start, SEED_BLOCK.min(c.n - start));
                }
                b -= c.blocks;
            }
            unreachable!("a block of the points")
        };
        let staging = staging(
            &self.ctx,
            "seeding read-back",
            4 * (SEED_BLOCK * landings.len()) as u64,
        );
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        for (j, (_, l)) in landings.iter().enumerate() {
            let (ci, start, len) = span(l.block);
            enc.copy_buffer_to_buffer(
                &chunks[ci].d2,
                4 * start as u64,
                &staging,
                4 * (j * SEED_BLOCK) as u64,
                4 * len as u64,
            );
        }
        self.ctx.queue.submit(Some(enc.finish()));
        let bytes = map_and_read(&self.ctx, &staging, staging.size())?;
        let d2: &[f32] = bytemuck::cast_slice(&bytes);
        for (j, (slot, l)) in landings.iter().enumerate() {
            let (ci, start, len) = span(l.block);
            let first = chunks[ci].first + start;
            let values = &d2[j * SEED_BLOCK..j * SEED_BLOCK + len];
            let mut residual = l.residual;
            let mut found = None;
            let mut last_live = None;
            for (t, &d) in values.iter().enumerate() {
                let v = w(first + t) * f64::from(d);
                if v > 0.0 {
                    last_live = Some(first + t);
                }
                if residual < v {
                    found = Some(first + t);
                    break;
                }
                residual -= v;
            }
            // Past the block's end only through the rounding of its f32 total.
            picks[*slot] = match found.or(last_live) {
                Some(i) => i,
                None => pick_live(rng, n, &w),
            };
        }
        Ok(())
    }

    /// Each candidate's potential Σ w · min(D², ‖x − c‖²), up to the weights' unit.
    fn potentials_of(
        &self,
        chunks: &[SeedChunk],
        cands: &wgpu::Buffer,
        picks: &[usize],
    ) -> Result<Vec<f64>> {
        let pipeline = self.ctx.kernel(&POTENTIALS);
        let words: usize = chunks
            .iter()
            .map(|c| c.potential_workgroups as usize * SEED_MAX_CANDIDATES)
            .sum();
        let staging = staging(&self.ctx, "seeding read-back", 4 * words as u64);
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        for (slot, &row) in picks.iter().enumerate() {
            self.copy_row(&mut enc, chunks, cands, row, slot);
        }
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            for c in chunks {
                pass.set_bind_group(0, &c.bind, &[]);
                pass.dispatch_workgroups(c.potential_workgroups, 1, 1);
            }
        }
        let mut at = 0u64;
        for c in chunks {
            let size = c.partials.size();
            enc.copy_buffer_to_buffer(&c.partials, 0, &staging, at, size);
            at += size;
        }
        self.ctx.queue.submit(Some(enc.finish()));
        let bytes = map_and_read(&self.ctx, &staging, 4 * words as u64)?;
        let partials: &[f32] = bytemuck::cast_slice(&bytes);
        let mut potential = vec![0.0f64; picks.len()];
        for group in partials.chunks_exact(SEED_MAX_CANDIDATES) {
            for (p, &v) in potential.iter_mut().zip(group) {
                *p += f64::from(v);
            }
        }
        Ok(potential)
    }
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::device::{Device, GpuOptions};
    use crate::gpu::context::GpuContext;
    use crate::gpu::points::ResidentPoints;
    use crate::init::{greedy_candidates, kmeans_plus_plus, rows_of};

    /// The shared device, held for reading (see `SHARED_DEVICE`).
    fn context() -> Option<(
        std::sync::Arc<GpuContext>,
        std::sync::RwLockReadGuard<'static, ()>,
    )> {
        let guard = crate::gpu::context::SHARED_DEVICE
            .read()
            .unwrap_or_else(|p| p.into_inner());
        match GpuContext::get(&Device::Gpu).map(|c| (c, guard)) {
            Ok(c) => Some(c),
            Err(e) if std::env::var_os("LLOYD_REQUIRE_GPU").is_none() => {
                eprintln!("GPU test skipped: {e}");
                None
            }
            Err(e) => panic!("LLOYD_REQUIRE_GPU is set: {e}"),
        }
    }

    /// The rows the device's greedy k-means++ takes, as coordinates.
    fn on_device(
        ctx: &std::sync::Arc<GpuContext>,
        data: &[f32],
        weights: Option<Weights<'_>>,
        dim: usize,
        (k, seed, candidates): (usize, u64, usize),
        max_chunk_bytes: Option<u64>,
    ) -> (Vec<f64>, usize) {
        let points = ResidentPoints::upload(ctx, data, dim, true, max_chunk_bytes).unwrap();
        let init = rows_of(data, dim, &(0..k).collect::<Vec<_>>());
        let options = GpuOptions {
            max_chunk_bytes,
            ..GpuOptions::default()
        };
        let mut b = GpuLloyd::new(
            ctx.clone(),
            Layout::Dense,
            points,
            dim,
            &init,
            weights,
            &options,
        )
        .unwrap();
        let chunks = b.chunks.len();
        let rows = b
            .greedy_seeding(weights, k, seed, candidates)
            .unwrap()
            .expect("the dense layout seeds on the device");
        (rows_of(data, dim, &rows), chunks)
    }

    fn uniform(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random::<f32>() * 8.0 - 3.0).collect()
    }

    /// On fresh random points of awkward sizes the device takes the CPU's rows: the same
    /// draws from the same generator, measured by the other device.
    #[test]
    fn the_device_takes_the_cpus_rows() {
        let Some((ctx, _shared)) = context() else {
            return;
        };
        // (points, dim, k, weighted, bytes per chunk)
        let cases = [
            (1usize, 3usize, 1usize, false, None),
            (1000, 5, 10, false, None),
            (777, 3, 7, true, None),
            (3001, 4, 40, false, Some(4096u64)),
            (2500, 17, 300, true, Some(20_000)),
        ];
        for (case, &(n, dim, k, weighted, chunk)) in cases.iter().enumerate() {
            let data = uniform(n * dim, case as u64);
            let weights: Option<Vec<f32>> = weighted.then(|| {
                let mut rng = ChaCha8Rng::seed_from_u64(99 + case as u64);
                // Some rows weigh nothing: never drawn.
                (0..n)
                    .map(|i| {
                        if i % 5 == 1 {
                            0.0
                        } else {
                            rng.random::<f32>() * 3.0
                        }
                    })
                    .collect()
            });
            for seed in [0u64, 7] {
                for candidates in [1, greedy_candidates(k)] {
                    let want = kmeans_plus_plus(
                        &data,
                        weights.as_ref().map(Weights::from),
                        dim,
                        k,
                        seed,
                        candidates,
                    );
                    let (got, chunks) = on_device(
                        &ctx,
                        &data,
                        weights.as_ref().map(Weights::from),
                        dim,
                        (k, seed, candidates),
                        chunk,
                    );
                    assert_eq!(
                        got, want,
                        "case {case}, seed {seed}, {candidates} candidates"
                    );
                    if chunk.is_some() {
                        assert!(chunks > 1, "case {case} is chunked");
                    }
                }
            }
        }
    }

    /// More centroids than distinct points: once every distinct point is chosen the draws
    /// fall back to a uniform choice among the rest, as on the CPU.
    #[test]
    fn duplicates_past_the_distinct_points_follow_the_cpu() {
        let Some((ctx, _shared)) = context() else {
            return;
        };
        let distinct = uniform(5 * 2, 3);
        let data: Vec<f32> = (0..23)
            .flat_map(|i| distinct[(i % 5) * 2..(i % 5) * 2 + 2].to_vec())
            .collect();
        for seed in 0..4 {
            let want = kmeans_plus_plus(&data, None, 2, 9, seed, greedy_candidates(9));
            let (got, _) = on_device(&ctx, &data, None, 2, (9, seed, greedy_candidates(9)), None);
            assert_eq!(got, want, "seed {seed}");
        }
    }

    /// More blocks than one dispatch dimension holds (65 535 workgroups of 256 points).
    #[test]
    fn more_blocks_than_one_dispatch_dimension() {
        let Some((ctx, _shared)) = context() else {
            return;
        };
        let n = MAX_WORKGROUPS * SEED_BLOCK + 1234;
        let data = uniform(n, 11);
        let weights: Vec<f32> = (0..n).map(|i| 1.0 + (i % 3) as f32).collect();
        let want = kmeans_plus_plus(
            &data,
            Some(Weights::from(&weights)),
            1,
            3,
            5,
            greedy_candidates(3),
        );
        let (got, _) = on_device(
            &ctx,
            &data,
            Some(Weights::from(&weights)),
            1,
            (3, 5, greedy_candidates(3)),
            None,
        );
        assert_eq!(got, want);
    }
}
