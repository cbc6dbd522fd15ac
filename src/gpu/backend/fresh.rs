//! Fresh samples every iteration, drawn on the device inside the batch's submissions.

use super::*;

/// The generator's state for fresh samples each iteration.
pub(super) struct Fresh {
    pub(super) pipeline: wgpu::ComputePipeline,
    /// Per chunk: its parameter block (base of the chunk's values at iteration 0) and its
    /// bind group (the chunk, and the history's record count as the iteration).
    pub(super) params: Vec<(wgpu::Buffer, DrawParams)>,
    pub(super) binds: Vec<wgpu::BindGroup>,
    /// Values one iteration draws (M·d).
    pub(super) draw: u64,
    /// Iterations drawn in earlier batches.
    pub(super) done: u64,
}

impl GpuLloyd {
    /// From now on every iteration first replaces the points with fresh draws of `law`:
    /// iteration t takes values t·M·d onwards of the stream for `seed` (M points of `dim`
    /// coordinates), inside the batch's own submissions, so it costs no read-back. Iteration
    /// 0 draws the values the points were generated with.
    pub(crate) fn draw_fresh(&mut self, law: &crate::law::Law, seed: u64) -> Result<()> {
        let ctx = self.ctx.clone();
        let pipeline = ctx.kernel(&kernels::GENERATE);
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
}
