// d-D assignment and reduction: one invocation per point; the centroids pass through
// workgroup memory in tiles, each invocation keeps the arg-min of ‖c‖² − 2 x·c (ties to the
// lowest index), writes its label, then adds its exact (compensated) squared error, weight
// and coordinates to the cell's fixed-point accumulators.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> cents: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read> norms: array<f32>;
@group(0) @binding(5) var<storage, read_write> labels: array<u32>;
@group(0) @binding(6) var<storage, read> weights: array<f32>;

const WG: u32 = 64u;
const TILE_FLOATS: u32 = 3072u;
var<workgroup> tile: array<f32, 3072>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let dim = p.dim;
    for (var base = wid.x * WG; base < p.n; base += nwg.x * WG) {
        let i = base + lid;
        let live = i < p.n;
        let row = i * dim;
        var best = 3.4028235e38;
        var label = 0u;
        if (p.tile == 0u) {
            if (live) {
                for (var c = 0u; c < p.k; c++) {
                    var dot = 0.0;
                    for (var t = 0u; t < dim; t++) {
                        dot = fma(xs[row + t], cents[c * dim + t], dot);
                    }
                    let v = norms[c] - 2.0 * dot;
                    if (v < best) {
                        best = v;
                        label = c;
                    }
                }
            }
        } else {
            for (var t0 = 0u; t0 < p.k; t0 += p.tile) {
                let nt = min(p.tile, p.k - t0);
                for (var q = lid; q < nt * dim; q += WG) {
                    tile[q] = cents[t0 * dim + q];
                }
                workgroupBarrier();
                if (live) {
                    for (var c = 0u; c < nt; c++) {
                        var dot = 0.0;
                        for (var t = 0u; t < dim; t++) {
                            dot = fma(xs[row + t], tile[c * dim + t], dot);
                        }
                        let v = norms[t0 + c] - 2.0 * dot;
                        if (v < best) {
                            best = v;
                            label = t0 + c;
                        }
                    }
                }
                workgroupBarrier();
            }
        }
        if (live) {
            labels[i] = label;
            var w = 1.0;
            if (p.weighted == 1u) {
                w = weights[i];
            }
            // Kahan summation of the squared error over the coordinates.
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
            for (var t = 0u; t < dim; t++) {
                gadd96(b + CELL_SUMS + 3u * t, fixed96(w * xs[row + t] * p.scale_x));
            }
        }
    }
}
