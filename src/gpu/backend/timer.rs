//! Timestamp queries around each iteration's pass, where the adapter has them.

use super::*;

/// Two timestamp queries around each iteration's pass, resolved into a buffer read back with
/// the stats or the history.
pub(super) struct Timer {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    staging: wgpu::Buffer,
}

impl Timer {
    pub(super) fn new(ctx: &GpuContext) -> Self {
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
        let staging = staging(ctx, "timestamps staging", 16 * MAX_BATCH as u64);
        Timer {
            queries,
            resolved,
            staging,
        }
    }

    /// The timestamps of the pass of iteration `i` of a batch.
    pub(super) fn writes(&self, i: usize) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(2 * i as u32),
            end_of_pass_write_index: Some(2 * i as u32 + 1),
        }
    }

    /// Queues the copy of the first `passes` passes' timestamps to the staging buffer.
    pub(super) fn resolve(&self, enc: &mut wgpu::CommandEncoder, passes: usize) {
        let q = 2 * passes as u32;
        enc.resolve_query_set(&self.queries, 0..q, &self.resolved, 0);
        enc.copy_buffer_to_buffer(&self.resolved, 0, &self.staging, 0, 8 * u64::from(q));
    }

    /// Seconds of each of the first `passes` passes.
    pub(super) fn read(&self, ctx: &GpuContext, passes: usize) -> Result<Vec<f64>> {
        let bytes = map_and_read(ctx, &self.staging, 16 * passes as u64)?;
        let ticks: &[u64] = bytemuck::cast_slice(&bytes);
        let period = f64::from(ctx.queue.get_timestamp_period());
        Ok(ticks
            .chunks_exact(2)
            .map(|t| t[1].saturating_sub(t[0]) as f64 * period * 1e-9)
            .collect())
    }
}
