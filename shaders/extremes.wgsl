// The d-D empty-cell policy's inputs (see `src/backend/empty_cells.rs`): each cell's
// farthest point (largest distance, lowest index on ties) and whether its nearest point
// (smallest distance, highest index on ties) differs from it. The assignment kept each
// cell's extreme distances in its accumulators; three passes over every chunk, run only
// when `update` saw an empty cell, find the rest:
//   `farthest`: the points at those distances record their indices (atomicMax of the
//               complement for the lowest, of the index for the highest);
//   `far_copy`: the farthest points' coordinates go to `far_x`;
//   `near_compare`: each nearest point is compared with its cell's farthest.

@group(0) @binding(0) var<uniform> p: ChunkParams;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read> labels: array<u32>;
@group(0) @binding(7) var<storage, read> dists: array<f32>;
@group(0) @binding(8) var<storage, read_write> work: array<u32>;
@group(0) @binding(9) var<storage, read_write> far_x: array<f32>;

const EXTREMES_WG: u32 = 256u;

fn needed() -> bool {
    return work[WORK_CELL_WORDS * p.k + WORK_ANY_EMPTY] != 0u;
}

@compute @workgroup_size(256)
fn farthest(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (!needed()) {
        return;
    }
    for (var i = gid.x; i < p.n; i += nwg.x * EXTREMES_WG) {
        let e = labels[i] * p.stride + cell_extremes(p.dim);
        let bits = bitcast<u32>(dists[i]);
        let index = p.first + i;
        if (bits == atomicLoad(&acc[e])) {
            atomicMax(&acc[e + 1u], ~index);
        }
        if (~bits == atomicLoad(&acc[e + 2u])) {
            atomicMax(&acc[e + 3u], index);
        }
    }
}

@compute @workgroup_size(256)
fn far_copy(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (!needed()) {
        return;
    }
    for (var q = gid.x; q < p.k * p.dim; q += nwg.x * EXTREMES_WG) {
        let j = q / p.dim;
        let t = q % p.dim;
        let e = j * p.stride + cell_extremes(p.dim);
        let far = ~atomicLoad(&acc[e + 1u]);
        if (atomicLoad(&acc[j * p.stride + CELL_COUNT]) != 0u && far >= p.first
            && far - p.first < p.n) {
            far_x[q] = xs[(far - p.first) * p.dim + t];
        }
    }
}

@compute @workgroup_size(256)
fn near_compare(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (!needed()) {
        return;
    }
    for (var j = gid.x; j < p.k; j += nwg.x * EXTREMES_WG) {
        let e = j * p.stride + cell_extremes(p.dim);
        let near = atomicLoad(&acc[e + 3u]);
        if (atomicLoad(&acc[j * p.stride + CELL_COUNT]) != 0u && near >= p.first
            && near - p.first < p.n) {
            let row = (near - p.first) * p.dim;
            var differ = 0u;
            for (var t = 0u; t < p.dim; t++) {
                if (xs[row + t] != far_x[j * p.dim + t]) {
                    differ = 1u;
                }
            }
            work[WORK_CELL_WORDS * j + WORK_DISTINCT] = differ;
        }
    }
}
