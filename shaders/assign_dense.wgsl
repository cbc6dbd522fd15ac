// d-D assignment and reduction, tiled like a matrix product: a workgroup of WG invocations
// takes BP points against BC centroids at a time, both staged through workgroup memory in
// slices of BK coordinates, and each invocation accumulates a TM x TN block of dot products
// in registers (TM points, TN centroids). Each invocation keeps the arg-min of ‖c‖² − 2 x·c
// over its columns (ties to the lowest index) and the runner-up; the SPAN partial minima of
// a point are then merged into its best and second-best values.
//
// Labels are certified (as `src/backend/exact.rs` does on the CPU): f32 rounding of the
// expanded form can misorder centroids whose distances are close, so a point whose best and
// second-best values are closer than the expansion's rounding bound is decided again by
// direct differences Σ(x − c)² over every centroid, the whole workgroup sharing the scan.
// Then one invocation per point writes its label and adds its exact (compensated) squared
// error and weight to the cell's fixed-point accumulators; the whole workgroup then adds the
// points' coordinates.
//
// The tile constants below are this file's default shape. src/gpu/tiles.rs builds the other
// shapes from this text: it rewrites the `const` lines between the `tile` markers and the
// lines between each pair of `gen` markers, which spell the TM x TN register block out in
// scalars (d{i}_{j} the dot product of point i and centroid j; bv{i}, bi{i} point i's best
// value and cell) so that no compiler has to unroll loops to keep the block in registers.
// For this file's shape those lines are exactly what the generator writes (a test checks).

@group(0) @binding(0) var<uniform> p: ChunkParams;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> cents: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read> norms: array<f32>;
@group(0) @binding(5) var<storage, read_write> labels: array<u32>;
@group(0) @binding(6) var<storage, read> weights: array<f32>;
@group(0) @binding(7) var<storage, read_write> dists: array<f32>;

// BP points and BC centroids per block, BK coordinates per slice, TM points and TN centroids
// per invocation.
// tile begin
const BP: u32 = 64u;
const BC: u32 = 64u;
const BK: u32 = 8u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const LOCAL_WORDS: u32 = 4u;
// tile end
const SPAN: u32 = BC / TN;             // invocations along the centroid side
const WG: u32 = (BP / TM) * SPAN;      // invocations per workgroup
const BIG: f32 = 3.4028235e38;

var<workgroup> x_tile: array<f32, BK * BP>;   // [BK][BP]
var<workgroup> c_tile: array<f32, BK * BC>;   // [BK][BC]
var<workgroup> red_v: array<f32, BP * SPAN>;  // [BP][SPAN]
var<workgroup> red_i: array<u32, BP * SPAN>;
var<workgroup> point_cell: array<u32, BP>;    // the point's cell, then its first accumulator word
var<workgroup> point_weight: array<f32, BP>;  // the point's best value, then its weight
var<workgroup> point_sse: array<f32, BP>;     // squared distance to the point's centroid
var<workgroup> pending: array<u32, BP>;       // rows of the block the f32 ranking cannot decide
var<workgroup> pending_count: atomic<u32>;
var<workgroup> pending_total: u32;
// With `use_local`, the workgroup's own accumulators (same layout as `acc`, k * stride words):
// its points add to them, and they go to `acc` once at the end. Few cells means many points
// per cell, and global atomics on one address serialise; workgroup atomics are cheap.
var<workgroup> wacc: array<atomic<u32>, LOCAL_WORDS>;

struct Minimum {
    value: f32,
    label: u32,
}

// The smallest of `count` partial minima in red_v/red_i from `start`, lowest label on ties.
fn best_of(start: u32, count: u32) -> Minimum {
    var m = Minimum(red_v[start], red_i[start]);
    for (var t = 1u; t < count; t++) {
        let v = red_v[start + t];
        let l = red_i[start + t];
        if (v < m.value || (v == m.value && l < m.label)) {
            m = Minimum(v, l);
        }
    }
    return m;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let dim = p.dim;
    let tx = lid % SPAN; // centroid columns tx*TN .. tx*TN+TN-1 of a block
    let ty = lid / SPAN; // point rows ty*TM .. ty*TM+TM-1 of a block
    let local = p.use_local == 1u;
    if (local) {
        for (var q = lid; q < p.k * p.stride; q += WG) {
            atomicStore(&wacc[q], 0u);
        }
    }
    workgroupBarrier();
    for (var base = wid.x * BP; base < p.n; base += nwg.x * BP) {
        // gen best begin
        var bv0 = BIG;
        var bi0 = 0u;
        var sv0 = BIG;
        var bv1 = BIG;
        var bi1 = 0u;
        var sv1 = BIG;
        var bv2 = BIG;
        var bi2 = 0u;
        var sv2 = BIG;
        var bv3 = BIG;
        var bi3 = 0u;
        var sv3 = BIG;
        // gen best end
        for (var c0 = 0u; c0 < p.k; c0 += BC) {
            // gen zero begin
            var d0_0 = 0.0; var d0_1 = 0.0; var d0_2 = 0.0; var d0_3 = 0.0;
            var d1_0 = 0.0; var d1_1 = 0.0; var d1_2 = 0.0; var d1_3 = 0.0;
            var d2_0 = 0.0; var d2_1 = 0.0; var d2_2 = 0.0; var d2_3 = 0.0;
            var d3_0 = 0.0; var d3_1 = 0.0; var d3_2 = 0.0; var d3_3 = 0.0;
            // gen zero end
            for (var k0 = 0u; k0 < dim; k0 += BK) {
                for (var q = lid; q < BP * BK; q += WG) {
                    let r = q / BK;
                    let kk = q % BK;
                    var v = 0.0;
                    if (base + r < p.n && k0 + kk < dim) {
                        v = xs[(base + r) * dim + k0 + kk];
                    }
                    x_tile[kk * BP + r] = v;
                }
                for (var q = lid; q < BC * BK; q += WG) {
                    let r = q / BK;
                    let kk = q % BK;
                    var v = 0.0;
                    if (c0 + r < p.k && k0 + kk < dim) {
                        v = cents[(c0 + r) * dim + k0 + kk];
                    }
                    c_tile[kk * BC + r] = v;
                }
                workgroupBarrier();
                for (var kk = 0u; kk < BK; kk++) {
                    let xo = kk * BP + ty * TM;
                    let co = kk * BC + tx * TN;
                    // gen product begin
                    let x0 = x_tile[xo]; let x1 = x_tile[xo + 1u]; let x2 = x_tile[xo + 2u]; let x3 = x_tile[xo + 3u];
                    let y0 = c_tile[co]; let y1 = c_tile[co + 1u]; let y2 = c_tile[co + 2u]; let y3 = c_tile[co + 3u];
                    d0_0 = fma(x0, y0, d0_0); d0_1 = fma(x0, y1, d0_1); d0_2 = fma(x0, y2, d0_2); d0_3 = fma(x0, y3, d0_3);
                    d1_0 = fma(x1, y0, d1_0); d1_1 = fma(x1, y1, d1_1); d1_2 = fma(x1, y2, d1_2); d1_3 = fma(x1, y3, d1_3);
                    d2_0 = fma(x2, y0, d2_0); d2_1 = fma(x2, y1, d2_1); d2_2 = fma(x2, y2, d2_2); d2_3 = fma(x2, y3, d2_3);
                    d3_0 = fma(x3, y0, d3_0); d3_1 = fma(x3, y1, d3_1); d3_2 = fma(x3, y2, d3_2); d3_3 = fma(x3, y3, d3_3);
                    // gen product end
                }
                workgroupBarrier();
            }
            // gen argmin begin
            if (c0 + tx * TN + 0u < p.k) {
                let c = c0 + tx * TN + 0u;
                let nrm = norms[c];
                let v0 = nrm - 2.0 * d0_0;
                if (v0 < bv0) { sv0 = bv0; bv0 = v0; bi0 = c; } else { sv0 = min(sv0, v0); }
                let v1 = nrm - 2.0 * d1_0;
                if (v1 < bv1) { sv1 = bv1; bv1 = v1; bi1 = c; } else { sv1 = min(sv1, v1); }
                let v2 = nrm - 2.0 * d2_0;
                if (v2 < bv2) { sv2 = bv2; bv2 = v2; bi2 = c; } else { sv2 = min(sv2, v2); }
                let v3 = nrm - 2.0 * d3_0;
                if (v3 < bv3) { sv3 = bv3; bv3 = v3; bi3 = c; } else { sv3 = min(sv3, v3); }
            }
            if (c0 + tx * TN + 1u < p.k) {
                let c = c0 + tx * TN + 1u;
                let nrm = norms[c];
                let v0 = nrm - 2.0 * d0_1;
                if (v0 < bv0) { sv0 = bv0; bv0 = v0; bi0 = c; } else { sv0 = min(sv0, v0); }
                let v1 = nrm - 2.0 * d1_1;
                if (v1 < bv1) { sv1 = bv1; bv1 = v1; bi1 = c; } else { sv1 = min(sv1, v1); }
                let v2 = nrm - 2.0 * d2_1;
                if (v2 < bv2) { sv2 = bv2; bv2 = v2; bi2 = c; } else { sv2 = min(sv2, v2); }
                let v3 = nrm - 2.0 * d3_1;
                if (v3 < bv3) { sv3 = bv3; bv3 = v3; bi3 = c; } else { sv3 = min(sv3, v3); }
            }
            if (c0 + tx * TN + 2u < p.k) {
                let c = c0 + tx * TN + 2u;
                let nrm = norms[c];
                let v0 = nrm - 2.0 * d0_2;
                if (v0 < bv0) { sv0 = bv0; bv0 = v0; bi0 = c; } else { sv0 = min(sv0, v0); }
                let v1 = nrm - 2.0 * d1_2;
                if (v1 < bv1) { sv1 = bv1; bv1 = v1; bi1 = c; } else { sv1 = min(sv1, v1); }
                let v2 = nrm - 2.0 * d2_2;
                if (v2 < bv2) { sv2 = bv2; bv2 = v2; bi2 = c; } else { sv2 = min(sv2, v2); }
                let v3 = nrm - 2.0 * d3_2;
                if (v3 < bv3) { sv3 = bv3; bv3 = v3; bi3 = c; } else { sv3 = min(sv3, v3); }
            }
            if (c0 + tx * TN + 3u < p.k) {
                let c = c0 + tx * TN + 3u;
                let nrm = norms[c];
                let v0 = nrm - 2.0 * d0_3;
                if (v0 < bv0) { sv0 = bv0; bv0 = v0; bi0 = c; } else { sv0 = min(sv0, v0); }
                let v1 = nrm - 2.0 * d1_3;
                if (v1 < bv1) { sv1 = bv1; bv1 = v1; bi1 = c; } else { sv1 = min(sv1, v1); }
                let v2 = nrm - 2.0 * d2_3;
                if (v2 < bv2) { sv2 = bv2; bv2 = v2; bi2 = c; } else { sv2 = min(sv2, v2); }
                let v3 = nrm - 2.0 * d3_3;
                if (v3 < bv3) { sv3 = bv3; bv3 = v3; bi3 = c; } else { sv3 = min(sv3, v3); }
            }
            // gen argmin end
        }
        // gen store begin
        red_v[(ty * TM + 0u) * SPAN + tx] = bv0;
        red_i[(ty * TM + 0u) * SPAN + tx] = bi0;
        red_v[(ty * TM + 1u) * SPAN + tx] = bv1;
        red_i[(ty * TM + 1u) * SPAN + tx] = bi1;
        red_v[(ty * TM + 2u) * SPAN + tx] = bv2;
        red_i[(ty * TM + 2u) * SPAN + tx] = bi2;
        red_v[(ty * TM + 3u) * SPAN + tx] = bv3;
        red_i[(ty * TM + 3u) * SPAN + tx] = bi3;
        // gen store end
        if (lid == 0u) {
            atomicStore(&pending_count, 0u);
        }
        workgroupBarrier();
        // Each point's best over the SPAN partial minima, lowest index on ties.
        if (lid < BP) {
            let m = best_of(lid * SPAN, SPAN);
            point_cell[lid] = m.label;
            point_weight[lid] = m.value;
        }
        workgroupBarrier();
        // Each invocation's candidate for the runner-up: its best, or its own runner-up
        // where its best is the point's best.
        // gen runner begin
        red_v[(ty * TM + 0u) * SPAN + tx] = select(bv0, sv0, bi0 == point_cell[ty * TM + 0u]);
        red_v[(ty * TM + 1u) * SPAN + tx] = select(bv1, sv1, bi1 == point_cell[ty * TM + 1u]);
        red_v[(ty * TM + 2u) * SPAN + tx] = select(bv2, sv2, bi2 == point_cell[ty * TM + 2u]);
        red_v[(ty * TM + 3u) * SPAN + tx] = select(bv3, sv3, bi3 == point_cell[ty * TM + 3u]);
        // gen runner end
        workgroupBarrier();
        if (lid < BP && base + lid < p.n) {
            var second = red_v[lid * SPAN];
            for (var t = 1u; t < SPAN; t++) {
                second = min(second, red_v[lid * SPAN + t]);
            }
            let row = (base + lid) * dim;
            let crow = point_cell[lid] * dim;
            var s = 0.0;
            var comp = 0.0;
            var xx = 0.0;
            for (var t = 0u; t < dim; t++) {
                let x = xs[row + t];
                xx = fma(x, x, xx);
                let d = x - cents[crow + t];
                let y = d * d - comp;
                let u = s + y;
                comp = (u - s) - y;
                s = u;
            }
            point_sse[lid] = s;
            // The bound of `src/backend/exact.rs`, with a margin for its own rounding.
            let gamma = (f32(dim) + 6.0) * 5.9604645e-8 * 1.02;
            let nx = sqrt(xx);
            let r = nx + sqrt(max(s, 0.0)) * 1.000001;
            let e = gamma * (r * r + 2.0 * nx * r);
            if (!(second - point_weight[lid] > 2.0 * e)) {
                pending[atomicAdd(&pending_count, 1u)] = lid;
            }
        }
        workgroupBarrier();
        if (lid == 0u) {
            pending_total = atomicLoad(&pending_count);
        }
        let undecided = workgroupUniformLoad(&pending_total);
        // Undecided points: every centroid by direct differences, the scan shared by the
        // workgroup, then the nearest (lowest index on ties) chosen by one invocation.
        for (var q = 0u; q < undecided; q++) {
            let r = pending[q];
            let row = (base + r) * dim;
            var dv = BIG;
            var di = 0u;
            for (var c = lid; c < p.k; c += WG) {
                var s = 0.0;
                var comp = 0.0;
                for (var t = 0u; t < dim; t++) {
                    let d = xs[row + t] - cents[c * dim + t];
                    let y = d * d - comp;
                    let u = s + y;
                    comp = (u - s) - y;
                    s = u;
                }
                if (s < dv) {
                    dv = s;
                    di = c;
                }
            }
            red_v[lid] = dv;
            red_i[lid] = di;
            workgroupBarrier();
            if (lid == 0u) {
                let m = best_of(0u, WG);
                point_cell[r] = m.label;
                point_sse[r] = m.value;
            }
            workgroupBarrier();
        }
        if (lid < BP && base + lid < p.n) {
            let i = base + lid;
            let label = point_cell[lid];
            labels[i] = label;
            var w = 1.0;
            if (p.weighted == 1u) {
                w = weights[i];
            }
            let s = point_sse[lid];
            let b = label * p.stride;
            // The cell's farthest and nearest points: distances here, indices in `farthest`.
            let e = b + cell_extremes(dim);
            let bits = bitcast<u32>(s);
            if (local) {
                atomicAdd(&wacc[b + CELL_COUNT], 1u);
                if (p.weighted == 1u) {
                    wadd96(b + CELL_MASS, fixed96(w * p.scale_w));
                }
                wadd96(b + CELL_SSE, fixed96(w * s * p.scale_e));
                if (p.encode_only == 0u) {
                    atomicMax(&wacc[e], bits);
                    atomicMax(&wacc[e + 2u], ~bits);
                }
            } else {
                atomicAdd(&acc[b + CELL_COUNT], 1u);
                if (p.weighted == 1u) {
                    gadd96(b + CELL_MASS, fixed96(w * p.scale_w));
                }
                gadd96(b + CELL_SSE, fixed96(w * s * p.scale_e));
                if (p.encode_only == 0u) {
                    atomicMax(&acc[e], bits);
                    atomicMax(&acc[e + 2u], ~bits);
                }
            }
            dists[i] = s;
            point_cell[lid] = b;
            point_weight[lid] = w;
        }
        workgroupBarrier();
        // The coordinate sums, spread over the whole workgroup (a point's coordinates go to
        // neighbouring invocations, which read neighbouring words), rather than one invocation
        // walking all d coordinates of its point while the others wait.
        let rows = select(min(BP, p.n - base), 0u, p.encode_only == 1u);
        for (var q = lid; q < rows * dim; q += WG) {
            let r = q / dim;
            let t = q % dim;
            let x = xs[(base + r) * dim + t];
            let f = fixed96(point_weight[r] * x * p.scale_x);
            if (local) {
                wadd96(point_cell[r] + CELL_SUMS + 3u * t, f);
            } else {
                gadd96(point_cell[r] + CELL_SUMS + 3u * t, f);
            }
        }
        workgroupBarrier();
    }
    if (local) {
        // Per cell: the count, then its triples (mass, error, each coordinate's sum), then
        // its extremes.
        let per_cell = 4u + dim;
        for (var q = lid; q < p.k * per_cell; q += WG) {
            let g = (q / per_cell) * p.stride;
            let s = q % per_cell;
            if (s == 0u) {
                let c = atomicLoad(&wacc[g + CELL_COUNT]);
                if (c != 0u) {
                    atomicAdd(&acc[g + CELL_COUNT], c);
                }
            } else if (s == per_cell - 1u) {
                let e = g + cell_extremes(dim);
                for (var w = 0u; w < EXTREME_WORDS; w++) {
                    let v = atomicLoad(&wacc[e + w]);
                    if (v != 0u) {
                        atomicMax(&acc[e + w], v);
                    }
                }
            } else {
                let o = g + 1u + 3u * (s - 1u);
                let v = vec3<u32>(atomicLoad(&wacc[o]), atomicLoad(&wacc[o + 1u]), atomicLoad(&wacc[o + 2u]));
                if (any(v != vec3<u32>(0u, 0u, 0u))) {
                    gadd96(o, v);
                }
            }
        }
    }
}
