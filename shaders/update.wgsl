// After a reduction: `copy_stats` copies each cell's count, mass and squared error out for
// the host (STAT_WORDS a cell); `update` moves each centroid to its cell's mean (cells
// without mass keep theirs) and refreshes ‖c‖²; with a batch > 0 it takes the relaxed CLVQ step
// instead. It also raises the flags of `work` the rest of the iteration reads: an empty cell
// (the extremes passes and `split_empty` have work to do) and a moved centroid (without
// one, and without a split, the fit has reached its fixed point); in 1-D it keeps each
// centroid as it entered in `far_x`, which the policy measures the cell's ends against.
// Empty cells are re-seeded next, on the device, by `split_empty` (empty_cells.wgsl).

@group(0) @binding(0) var<uniform> p: CellParams;
@group(0) @binding(1) var<storage, read> acc: array<u32>;
@group(0) @binding(2) var<storage, read_write> cents: array<f32>;
@group(0) @binding(3) var<storage, read_write> norms: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<u32>;
@group(0) @binding(9) var<storage, read_write> far_x: array<f32>;

// The value of a 96-bit two's-complement integer, rounded to f32.
fn from96(b: u32) -> f32 {
    var w0 = acc[b];
    var w1 = acc[b + 1u];
    var w2 = acc[b + 2u];
    let negative = (w2 & 0x80000000u) != 0u;
    if (negative) {
        let c1 = select(0u, 1u, w0 == 0u);
        w0 = ~w0 + 1u;
        let m = ~w1 + c1;
        let c2 = select(0u, 1u, c1 == 1u && m == 0u);
        w1 = m;
        w2 = ~w2 + c2;
    }
    let v = f32(w2) * 18446744073709551616.0 + f32(w1) * 4294967296.0 + f32(w0);
    return select(v, -v, negative);
}

@compute @workgroup_size(CELL_WORKGROUP)
fn copy_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= p.k) {
        return;
    }
    for (var w = 0u; w < STAT_WORDS; w++) {
        stats[j * STAT_WORDS + w] = acc[j * p.stride + w];
    }
}

@compute @workgroup_size(CELL_WORKGROUP)
fn update(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= p.k) {
        return;
    }
    let b = j * p.stride;
    let count = acc[b + CELL_COUNT];
    var mass = f32(count);
    if (p.weighted == 1u) {
        mass = from96(b + CELL_MASS) / p.scale_w;
    }
    work[WORK_CELL_WORDS * j + WORK_DISTINCT] = 0u;
    if (count == 0u || !(mass > 0.0)) {
        work[WORK_CELL_WORDS * p.k + WORK_ANY_EMPTY] = 1u;
        return;
    }
    if (p.sorted == 1u) {
        far_x[j] = cents[j];
    }
    var norm = 0.0;
    var moved = false;
    for (var t = 0u; t < p.dim; t++) {
        var c = (from96(b + CELL_SUMS + 3u * t) / p.scale_x) / mass;
        let old = cents[j * p.dim + t];
        if (p.batch > 0.0) {
            // CLVQ in mini-batches of `batch` samples with step `step`: move count / batch of a step.
            c = old + p.step * (f32(count) / p.batch) * (c - old);
        }
        moved = moved || c != old;
        cents[j * p.dim + t] = c;
        norm = fma(c, c, norm);
    }
    norms[j] = norm;
    if (moved) {
        work[WORK_CELL_WORDS * p.k + WORK_MOVED] = 1u;
    }
}
