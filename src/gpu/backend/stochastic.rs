//! CLVQ's relaxed updates in mini-batches drawn on the device.

use super::*;

impl GpuLloyd {
    /// CLVQ in mini-batches on the device (1-D layout, one chunk): each step draws a fresh
    /// batch of the chunk's size from `law` into the chunk, assigns and reduces it, and moves
    /// every centroid by `gamma(step) * count / batch` of the way to its batch mean (the
    /// update kernel's relaxed form). No read-back between steps.
    pub(super) fn clvq_steps(
        &mut self,
        law: &crate::law::Law,
        seed: u64,
        steps: usize,
        gamma: &dyn Fn(usize) -> f64,
    ) -> Result<()> {
        if self.layout != Layout::OneD || self.chunks.len() != 1 {
            return Err(Error::Unsupported(
                "CLVQ batches must fit one storage binding".into(),
            ));
        }
        let ctx = self.ctx.clone();
        let batch = self.chunks[0].n;
        let generate = ctx.kernel(&kernels::GENERATE);
        let no_step = points::no_step(&ctx);
        let base = self.cell_params;
        // A ring of parameter blocks, one per step of a submission: each step's generator
        // offset and step size are written into their own buffers, so CLVQ_RING steps go to
        // the device in one submission instead of one each.
        let ring: Vec<_> = (0..CLVQ_RING)
            .map(|_| {
                let g = uniform_buffer(&ctx, "clvq generate params", &DrawParams::default());
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
                let up = CellParams {
                    step: gamma(step) as f32,
                    batch: batch as f32,
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
                pass.dispatch_workgroups(self.k.div_ceil(CELL_WORKGROUP) as u32, 1, 1);
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
}
