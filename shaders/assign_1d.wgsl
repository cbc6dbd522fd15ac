// 1-D assignment and reduction: each sample finds its cell by binary search over the
// midpoints of the sorted centroids (O(log N)), then adds its count, squared error and value
// to the cell's fixed-point accumulators and widens the cell's range of values; with at most
// LOCAL_CELLS_1D cells these are first gathered in workgroup memory, then flushed to `acc`
// once per workgroup.

@group(0) @binding(0) var<uniform> p: ChunkParams;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> cents: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc: array<atomic<u32>>;

const WG: u32 = 256u;
// Local layout per cell: [count, sse(3), sum(3), largest key, complement of smallest key].
var<workgroup> wacc: array<atomic<u32>, LOCAL_CELLS_1D * LOCAL_STRIDE_1D>;

// The first cell i with x <= (c_i + c_{i+1}) / 2: ties go to the lower cell, as on the CPU.
fn cell_of(x: f32) -> u32 {
    var lo = 0u;
    var hi = p.k - 1u;
    loop {
        if (lo >= hi) {
            break;
        }
        let mid = (lo + hi) / 2u;
        let m = 0.5 * (cents[mid] + cents[mid + 1u]);
        if (x <= m) {
            hi = mid;
        } else {
            lo = mid + 1u;
        }
    }
    return lo;
}

@compute @workgroup_size(256)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let local = p.use_local == 1u;
    if (local) {
        for (var i = lid; i < p.k * LOCAL_STRIDE_1D; i += WG) {
            atomicStore(&wacc[i], 0u);
        }
    }
    workgroupBarrier();
    let threads = nwg.x * WG;
    for (var i = gid.x; i < p.n; i += threads) {
        let x = xs[i];
        let j = cell_of(x);
        let d = x - cents[j];
        let fe = fixed96(d * d * p.scale_e);
        let fx = fixed96(x * p.scale_x);
        let key = key_of(x);
        if (local) {
            let b = j * LOCAL_STRIDE_1D;
            atomicAdd(&wacc[b], 1u);
            wadd96(b + 1u, fe);
            wadd96(b + 4u, fx);
            atomicMax(&wacc[b + 7u], key);
            atomicMax(&wacc[b + 8u], ~key);
        } else {
            let b = j * p.stride;
            atomicAdd(&acc[b + CELL_COUNT], 1u);
            gadd96(b + CELL_SSE, fe);
            gadd96(b + CELL_SUMS, fx);
            let e = b + cell_extremes(1u);
            atomicMax(&acc[e], key);
            atomicMax(&acc[e + 1u], ~key);
        }
    }
    workgroupBarrier();
    if (local) {
        for (var j = lid; j < p.k; j += WG) {
            let b = j * LOCAL_STRIDE_1D;
            let count = atomicLoad(&wacc[b]);
            if (count != 0u) {
                let g = j * p.stride;
                atomicAdd(&acc[g + CELL_COUNT], count);
                gadd96(g + CELL_SSE, vec3<u32>(atomicLoad(&wacc[b + 1u]), atomicLoad(&wacc[b + 2u]), atomicLoad(&wacc[b + 3u])));
                gadd96(g + CELL_SUMS, vec3<u32>(atomicLoad(&wacc[b + 4u]), atomicLoad(&wacc[b + 5u]), atomicLoad(&wacc[b + 6u])));
                let e = g + cell_extremes(1u);
                atomicMax(&acc[e], atomicLoad(&wacc[b + 7u]));
                atomicMax(&acc[e + 1u], atomicLoad(&wacc[b + 8u]));
            }
        }
    }
}
