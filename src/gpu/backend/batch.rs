//! Recording a batch of iterations into command buffers and reading its history back.

use super::*;

impl GpuLloyd {
    /// Rewrites the stop rule's state before a submission: the tolerance (0 for a single
    /// update), an empty history whose header holds the error before it, and the pristine
    /// indirect arguments.
    pub(super) fn prepare(&self, tolerance: f64, previous: Option<[u32; 3]>) {
        let params = CellParams {
            tolerance: tolerance as f32,
            ..self.cell_params
        };
        let q = &self.ctx.queue;
        q.write_buffer(&self.cell_params_buf, 0, bytemuck::bytes_of(&params));
        let prev = previous.unwrap_or([0, 0, NO_PREVIOUS]);
        let header = [0, prev[0], prev[1], prev[2]];
        q.write_buffer(&self.history, 0, bytemuck::cast_slice(&header));
        q.write_buffer(&self.dispatch, 0, bytemuck::cast_slice(&self.dispatch_args));
    }

    /// Records up to `count` (at most [`MAX_BATCH`]) whole iterations in one command buffer,
    /// runs them and reads back the history of those the device ran (fewer when its stop rule
    /// held).
    pub(super) fn run_batch(&mut self, count: usize, tolerance: f64) -> Result<Vec<StepRecord>> {
        self.prepare(tolerance, self.previous);
        if let Some(f) = &self.fresh {
            // This batch's iteration i draws from (done + i)·M·d; the kernel adds i·M·d.
            for ((buf, p), _) in f.params.iter().zip(&self.chunks) {
                let first = (u64::from(p.first_hi) << 32 | u64::from(p.first_lo)) + f.done * f.draw;
                let moved = DrawParams {
                    first_lo: first as u32,
                    first_hi: (first >> 32) as u32,
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
    pub(super) fn dispatch_in(
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
    pub(super) fn record_assignment(&self, pass: &mut wgpu::ComputePass<'_>, mode: Dispatch) {
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
    pub(super) fn record_update(&self, pass: &mut wgpu::ComputePass<'_>, mode: Dispatch) {
        pass.set_pipeline(&self.update);
        pass.set_bind_group(0, &self.update_bind, &[]);
        let slot = self.chunks.len();
        self.dispatch_in(pass, mode, slot, self.k.div_ceil(CELL_WORKGROUP) as u32);
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
}
