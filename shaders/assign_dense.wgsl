// d-D assignment and reduction, tiled like a matrix product: a workgroup of 256 invocations
// takes 64 points against 64 centroids at a time, both staged through workgroup memory in
// slices of 8 coordinates, and each invocation accumulates a 4 x 4 block of dot products in
// registers. Each invocation keeps the arg-min of ‖c‖² − 2 x·c over its columns (ties to the
// lowest index); the 16 partial minima of a point are then merged, and one invocation per
// point writes its label and adds its exact (compensated) squared error and weight to the
// cell's fixed-point accumulators; the whole workgroup then adds the points' coordinates.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> cents: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read> norms: array<f32>;
@group(0) @binding(5) var<storage, read_write> labels: array<u32>;
@group(0) @binding(6) var<storage, read> weights: array<f32>;

const WG: u32 = 256u;
const BP: u32 = 64u;   // points per block
const BC: u32 = 64u;   // centroids per block
const BK: u32 = 8u;    // coordinates per slice
const SPAN: u32 = 16u; // invocations along each side of the 4 x 4 register blocks

var<workgroup> x_tile: array<f32, 512>;  // [BK][BP]
var<workgroup> c_tile: array<f32, 512>;  // [BK][BC]
var<workgroup> red_v: array<f32, 1024>;  // [BP][SPAN]
var<workgroup> red_i: array<u32, 1024>;
var<workgroup> point_cell: array<u32, 64>;   // [BP]: first accumulator word of the point's cell
var<workgroup> point_weight: array<f32, 64>; // [BP]

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let dim = p.dim;
    let tx = lid % SPAN; // centroid columns tx*4 .. tx*4+3
    let ty = lid / SPAN; // point rows ty*4 .. ty*4+3
    for (var base = wid.x * BP; base < p.n; base += nwg.x * BP) {
        var bv = array<f32, 4>(3.4028235e38, 3.4028235e38, 3.4028235e38, 3.4028235e38);
        var bi = array<u32, 4>(0u, 0u, 0u, 0u);
        for (var c0 = 0u; c0 < p.k; c0 += BC) {
            var a00 = 0.0; var a01 = 0.0; var a02 = 0.0; var a03 = 0.0;
            var a10 = 0.0; var a11 = 0.0; var a12 = 0.0; var a13 = 0.0;
            var a20 = 0.0; var a21 = 0.0; var a22 = 0.0; var a23 = 0.0;
            var a30 = 0.0; var a31 = 0.0; var a32 = 0.0; var a33 = 0.0;
            for (var k0 = 0u; k0 < dim; k0 += BK) {
                for (var q = lid; q < BP * BK; q += WG) {
                    let r = q / BK;
                    let kk = q % BK;
                    var xv = 0.0;
                    if (base + r < p.n && k0 + kk < dim) {
                        xv = xs[(base + r) * dim + k0 + kk];
                    }
                    x_tile[kk * BP + r] = xv;
                    var cv = 0.0;
                    if (c0 + r < p.k && k0 + kk < dim) {
                        cv = cents[(c0 + r) * dim + k0 + kk];
                    }
                    c_tile[kk * BC + r] = cv;
                }
                workgroupBarrier();
                for (var kk = 0u; kk < BK; kk++) {
                    let xo = kk * BP + ty * 4u;
                    let co = kk * BC + tx * 4u;
                    let x0 = x_tile[xo]; let x1 = x_tile[xo + 1u]; let x2 = x_tile[xo + 2u]; let x3 = x_tile[xo + 3u];
                    let y0 = c_tile[co]; let y1 = c_tile[co + 1u]; let y2 = c_tile[co + 2u]; let y3 = c_tile[co + 3u];
                    a00 = fma(x0, y0, a00); a01 = fma(x0, y1, a01); a02 = fma(x0, y2, a02); a03 = fma(x0, y3, a03);
                    a10 = fma(x1, y0, a10); a11 = fma(x1, y1, a11); a12 = fma(x1, y2, a12); a13 = fma(x1, y3, a13);
                    a20 = fma(x2, y0, a20); a21 = fma(x2, y1, a21); a22 = fma(x2, y2, a22); a23 = fma(x2, y3, a23);
                    a30 = fma(x3, y0, a30); a31 = fma(x3, y1, a31); a32 = fma(x3, y2, a32); a33 = fma(x3, y3, a33);
                }
                workgroupBarrier();
            }
            let dots = array<array<f32, 4>, 4>(
                array<f32, 4>(a00, a01, a02, a03),
                array<f32, 4>(a10, a11, a12, a13),
                array<f32, 4>(a20, a21, a22, a23),
                array<f32, 4>(a30, a31, a32, a33),
            );
            for (var j = 0u; j < 4u; j++) {
                let c = c0 + tx * 4u + j;
                if (c < p.k) {
                    let nrm = norms[c];
                    for (var i = 0u; i < 4u; i++) {
                        let v = nrm - 2.0 * dots[i][j];
                        if (v < bv[i]) {
                            bv[i] = v;
                            bi[i] = c;
                        }
                    }
                }
            }
        }
        for (var i = 0u; i < 4u; i++) {
            red_v[(ty * 4u + i) * SPAN + tx] = bv[i];
            red_i[(ty * 4u + i) * SPAN + tx] = bi[i];
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
