// d-D assignment and reduction, tiled like a matrix product: a workgroup of WG invocations
// takes BP points against BC centroids at a time, both staged through workgroup memory in
// slices of BK coordinates, and each invocation accumulates a TM x TN block of dot products
// in registers (TM points, TN centroids). Each invocation keeps the arg-min of ‖c‖² − 2 x·c
// over its columns (ties to the lowest index); the SPAN partial minima of a point are then
// merged, and one invocation per point writes its label and adds its exact (compensated)
// squared error and weight to the cell's fixed-point accumulators; the whole workgroup then
// adds the points' coordinates.
//
// The tile constants below are this file's default; src/gpu/tiles.rs rewrites the block of
// `const` lines between the two `tile` markers to build the other shapes (a larger TM x TN
// block does more multiply-adds per workgroup-memory read).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> cents: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read> norms: array<f32>;
@group(0) @binding(5) var<storage, read_write> labels: array<u32>;
@group(0) @binding(6) var<storage, read> weights: array<f32>;

// BP points and BC centroids per block, BK coordinates per slice, TM points and TN centroids
// per invocation.
// tile begin
const BP: u32 = 64u;
const BC: u32 = 64u;
const BK: u32 = 8u;
const TM: u32 = 4u;
const TN: u32 = 4u;
// tile end
const SPAN: u32 = BC / TN;             // invocations along the centroid side
const WG: u32 = (BP / TM) * SPAN;      // invocations per workgroup
const BIG: f32 = 3.4028235e38;

var<workgroup> x_tile: array<f32, BK * BP>;   // [BK][BP]
var<workgroup> c_tile: array<f32, BK * BC>;   // [BK][BC]
var<workgroup> red_v: array<f32, BP * SPAN>;  // [BP][SPAN]
var<workgroup> red_i: array<u32, BP * SPAN>;
var<workgroup> point_cell: array<u32, BP>;    // first accumulator word of the point's cell
var<workgroup> point_weight: array<f32, BP>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let dim = p.dim;
    let tx = lid % SPAN; // centroid columns tx*TN .. tx*TN+TN-1 of a block
    let ty = lid / SPAN; // point rows ty*TM .. ty*TM+TM-1 of a block
    for (var base = wid.x * BP; base < p.n; base += nwg.x * BP) {
        var bv: array<f32, TM>;
        var bi: array<u32, TM>;
        for (var i = 0u; i < TM; i++) {
            bv[i] = BIG;
            bi[i] = 0u;
        }
        for (var c0 = 0u; c0 < p.k; c0 += BC) {
            var dots: array<f32, TM * TN>;
            for (var q = 0u; q < TM * TN; q++) {
                dots[q] = 0.0;
            }
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
                    var xr: array<f32, TM>;
                    var cr: array<f32, TN>;
                    for (var i = 0u; i < TM; i++) {
                        xr[i] = x_tile[kk * BP + ty * TM + i];
                    }
                    for (var j = 0u; j < TN; j++) {
                        cr[j] = c_tile[kk * BC + tx * TN + j];
                    }
                    for (var i = 0u; i < TM; i++) {
                        for (var j = 0u; j < TN; j++) {
                            dots[i * TN + j] = fma(xr[i], cr[j], dots[i * TN + j]);
                        }
                    }
                }
                workgroupBarrier();
            }
            for (var j = 0u; j < TN; j++) {
                let c = c0 + tx * TN + j;
                if (c < p.k) {
                    let nrm = norms[c];
                    for (var i = 0u; i < TM; i++) {
                        let v = nrm - 2.0 * dots[i * TN + j];
                        if (v < bv[i]) {
                            bv[i] = v;
                            bi[i] = c;
                        }
                    }
                }
            }
        }
        for (var i = 0u; i < TM; i++) {
            red_v[(ty * TM + i) * SPAN + tx] = bv[i];
            red_i[(ty * TM + i) * SPAN + tx] = bi[i];
        }
        workgroupBarrier();
        if (lid < BP && base + lid < p.n) {
            let i = base + lid;
            var best = red_v[lid * SPAN];
            var label = red_i[lid * SPAN];
            for (var t = 1u; t < SPAN; t++) {
                let v = red_v[lid * SPAN + t];
                let l = red_i[lid * SPAN + t];
                if (v < best || (v == best && l < label)) {
                    best = v;
                    label = l;
                }
            }
            labels[i] = label;
            var w = 1.0;
            if (p.weighted == 1u) {
                w = weights[i];
            }
            let row = i * dim;
            var s = 0.0;
            var comp = 0.0;
            let crow = label * dim;
            for (var t = 0u; t < dim; t++) {
                let d = xs[row + t] - cents[crow + t];
                let y = d * d - comp;
                let u = s + y;
                comp = (u - s) - y;
                s = u;
            }
            let b = label * p.stride;
            atomicAdd(&acc[b + CELL_COUNT], 1u);
            if (p.weighted == 1u) {
                gadd96(b + CELL_MASS, fixed96(w * p.scale_w));
            }
            gadd96(b + CELL_SSE, fixed96(w * s * p.scale_e));
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
            gadd96(point_cell[r] + CELL_SUMS + 3u * t, fixed96(point_weight[r] * x * p.scale_x));
        }
        workgroupBarrier();
    }
}
