//! Device buffers and their plumbing: the parameter block, chunk sizes, bind groups,
//! error scopes and read-backs.

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use super::context::GpuContext;
use crate::error::{Error, Result};

/// A struct shared by the host and the kernels, declared once: the Rust definition, and
/// [`Params::wgsl`], its WGSL declaration, which every kernel gets in its prelude. Fields are
/// `u32` or `f32` (4 bytes each, so both layouts are the plain sequence of fields).
/// A parameter block's WGSL struct name and size in bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParamsBlock {
    pub name: &'static str,
    pub size: u64,
}

macro_rules! shared_struct {
    ($(#[$m:meta])* struct $name:ident { $($(#[$fm:meta])* $field:ident: $ty:ident,)* }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Default, Pod, Zeroable)]
        pub(crate) struct $name {
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl $name {
            /// Its name in WGSL and its size, for the kernels' layouts.
            pub(crate) const BLOCK: ParamsBlock = ParamsBlock {
                name: stringify!($name),
                size: std::mem::size_of::<$name>() as u64,
            };

            /// The WGSL declaration of this struct.
            pub(crate) fn wgsl() -> String {
                let mut s = format!("struct {} {{\n", stringify!($name));
                $(s.push_str(&format!("    {}: {},\n", stringify!($field), stringify!($ty)));)*
                s.push_str("}\n");
                s
            }
        }
    };
}

// Each kernel reads its own block, so a field means one thing. Every block is a multiple of
// 16 bytes, as uniform buffers are laid out.

shared_struct! {
    /// The parameters of the per-chunk passes: assignment (`assign_1d`, `assign_dense`) and
    /// the extreme points (`extremes`).
    struct ChunkParams {
        /// Points in this chunk.
        n: u32,
        /// Centroids.
        k: u32,
        /// Coordinates per point.
        dim: u32,
        /// Words per cell in the accumulators ([`super::layout::cell_stride`]).
        stride: u32,
        /// 2^s for coordinates (times weights) in the fixed-point sums.
        scale_x: f32,
        /// 2^s for squared errors (times weights).
        scale_e: f32,
        /// 2^s for weights.
        scale_w: f32,
        /// 1 when the cells are accumulated in workgroup memory first.
        use_local: u32,
        /// 1 when per-point weights are bound.
        weighted: u32,
        /// d-D: 1 to skip the coordinate sums (labels, counts and errors only).
        encode_only: u32,
        /// Index of this chunk's first point in the whole (the extreme points' rows).
        first: u32,
        pad0: u32,
    }
}

shared_struct! {
    /// The parameters of the per-cell passes (`update.wgsl`, `history.wgsl`,
    /// `empty_cells.wgsl`): the statistics' copy, the update, the record and the splits.
    struct CellParams {
        /// Centroids.
        k: u32,
        /// Coordinates per point.
        dim: u32,
        /// Words per cell in the accumulators.
        stride: u32,
        /// The fixed-point scales of the sums (as in [`ChunkParams`]).
        scale_x: f32,
        scale_e: f32,
        scale_w: f32,
        /// 1-D: 1 when the centroids must stay sorted (re-sorted after a split).
        sorted: u32,
        /// 1 when the points carry weights.
        weighted: u32,
        /// The stop rule of a batch of iterations (0: run them all).
        tolerance: f32,
        /// CLVQ: the step γ of the relaxed update.
        step: f32,
        /// CLVQ: the points of one step (0 for Lloyd's full update).
        batch: f32,
        pad0: u32,
    }
}

shared_struct! {
    /// The parameters of sample generation (`generate.wgsl`).
    struct DrawParams {
        /// Values to draw.
        n: u32,
        /// 0 normal, 1 uniform, 2 exponential, 3 log-normal.
        law: u32,
        /// The law's parameters (mean and std, low and high, rate, μ and σ).
        a: f32,
        b: f32,
        /// The stream's seed.
        seed_lo: u32,
        seed_hi: u32,
        /// Index in the stream of the first value drawn.
        first_lo: u32,
        first_hi: u32,
        /// Values one iteration of a batch moves the stream on by (fresh samples each
        /// iteration; 0 for a single draw).
        draw_lo: u32,
        draw_hi: u32,
        pad0: u32,
        pad1: u32,
    }
}

shared_struct! {
    /// The parameters of greedy k-means++ on the device (`seeding.wgsl`), one block per chunk.
    struct SeedParams {
        /// Points in this chunk.
        n: u32,
        /// Coordinates per point.
        dim: u32,
        /// 1 when per-point weights are bound.
        weighted: u32,
        /// Candidates whose potentials `potentials` sums (at most `SEED_MAX_CANDIDATES`).
        candidates: u32,
        /// `nearest`: 1 to start the distances afresh (the first centroid).
        reset: u32,
        /// `nearest`: workgroups along x of its two-dimensional grid of blocks.
        blocks_x: u32,
        pad0: u32,
        pad1: u32,
    }
}

/// Largest number of points of dimension `dim` one chunk may hold: one storage binding, or
/// `max_bytes` where the options ask for less.
pub(crate) fn chunk_capacity(ctx: &GpuContext, dim: usize, max_bytes: Option<u64>) -> usize {
    let mut bytes = ctx
        .limits
        .max_storage_buffer_binding_size
        .min(ctx.limits.max_buffer_size);
    if let Some(cap) = max_bytes {
        bytes = bytes.min(cap.max(4 * dim as u64));
    }
    let align = u64::from(ctx.limits.min_storage_buffer_offset_alignment).max(4);
    let bytes = bytes / align * align;
    ((bytes / (4 * dim as u64)) as usize).min(u32::MAX as usize)
}

pub(crate) fn storage(
    ctx: &GpuContext,
    label: &str,
    contents: &[u8],
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST
                | extra,
        })
}

pub(crate) fn empty_storage(ctx: &GpuContext, label: &str, bytes: u64) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// A uniform buffer holding `params`, rewritable (CLVQ changes its step sizes).
pub(crate) fn uniform_buffer<P: Pod>(ctx: &GpuContext, label: &str, params: &P) -> wgpu::Buffer {
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
}

/// A bind group for group 0 of `pipeline` from (binding, whole buffer) pairs.
pub(crate) fn bind_buffers(
    ctx: &GpuContext,
    label: &str,
    pipeline: &wgpu::ComputePipeline,
    buffers: &[(u32, &wgpu::Buffer)],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .map(|(binding, buffer)| wgpu::BindGroupEntry {
            binding: *binding,
            resource: buffer.as_entire_binding(),
        })
        .collect();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// Runs `f` inside error scopes so that running out of memory or a validation error comes
/// back as an [`Error`] instead of wgpu's default panic.
pub(crate) fn guarded<T>(ctx: &GpuContext, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    let oom = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let out = f();
    let v = pollster::block_on(validation.pop());
    let o = pollster::block_on(oom.pop());
    if let Some(e) = o {
        return Err(Error::OutOfDeviceMemory(format!("{what} ({e})")));
    }
    if let Some(e) = v {
        return Err(Error::Gpu(format!("{what}: {e}")));
    }
    Ok(out)
}

/// A buffer the host maps to read what copies put in it ([`map_and_read`]).
pub(crate) fn staging(ctx: &GpuContext, label: &str, size: u64) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Copies `size` bytes of `src` from `offset` back to the host.
pub(crate) fn read_back(
    ctx: &GpuContext,
    src: &wgpu::Buffer,
    offset: u64,
    size: u64,
) -> Result<Vec<u8>> {
    let staging = staging(ctx, "lloyd read-back", size);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(src, offset, &staging, 0, size);
    ctx.queue.submit(Some(enc.finish()));
    map_and_read(ctx, &staging, size)
}

thread_local! {
    /// Host round-trips made by this thread, for the tests that hold a fit to a fixed number.
    static READ_BACKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many buffers this thread has mapped back from a device so far.
pub(crate) fn read_backs() -> usize {
    READ_BACKS.with(|c| c.get())
}

/// Maps `size` bytes of a staging buffer and copies them out: one host round-trip.
pub(crate) fn map_and_read(ctx: &GpuContext, staging: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
    READ_BACKS.with(|c| c.set(c.get() + 1));
    let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
    staging.map_async(wgpu::MapMode::Read, 0..size, move |r| {
        let _ = tx.send(r);
    });
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
    pollster::block_on(rx.receive())
        .ok_or_else(|| Error::Gpu("the read-back was dropped".into()))?
        .map_err(|e| Error::Gpu(format!("mapping a read-back buffer: {e}")))?;
    let bytes = staging
        .get_mapped_range(0..size)
        .map_err(|e| Error::Gpu(format!("reading a mapped buffer: {e}")))?
        .to_vec();
    staging.unmap();
    // What the device did before this read-back is only trustworthy if it reported nothing.
    ctx.take_faults()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Device;

    /// wgpu panics on an error outside any error scope unless the device has a handler: with
    /// lloyd's, the error fails the next read-back instead.
    #[test]
    fn an_uncaptured_error_fails_the_next_read_back() {
        let _alone = super::super::context::SHARED_DEVICE
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let ctx = match GpuContext::get(&Device::Gpu) {
            Ok(c) => c,
            Err(e) if std::env::var_os("LLOYD_REQUIRE_GPU").is_none() => {
                eprintln!("GPU test skipped: {e}");
                return;
            }
            Err(e) => panic!("LLOYD_REQUIRE_GPU is set: {e}"),
        };
        let a = empty_storage(&ctx, "a", 16);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        // Out of bounds: a validation error, raised outside any scope.
        enc.copy_buffer_to_buffer(&a, 0, &a, 8, 16);
        ctx.queue.submit(Some(enc.finish()));
        match read_back(&ctx, &a, 0, 16) {
            Err(Error::Gpu(m)) => assert!(m.contains("the GPU reported"), "{m}"),
            other => panic!("expected a GPU error, got {other:?}"),
        }
        // Reported once: the device goes on working.
        assert!(read_back(&ctx, &a, 0, 16).is_ok());
    }
}
