// Greedy k-means++ on the device: the host draws, the device measures.
//
// Each point keeps D², its squared distance to the nearest centroid chosen so far (`d2`).
// `nearest` folds the newest centroid (cands[0..dim]) into D² and sums w · D² over blocks of
// SEED_BLOCK consecutive points; the host draws the candidates from those block sums (reading
// back only the blocks its draws land in). `potentials` sums, for each candidate, what the
// potential Σ w · min(D², ‖x − c‖²) would be if it were chosen; the host keeps the lowest.
// Both sum in a fixed order, so the same points give the same choices run after run.

@group(0) @binding(0) var<uniform> p: SeedParams;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> d2: array<f32>;
@group(0) @binding(4) var<storage, read> cands: array<f32>;
@group(0) @binding(5) var<storage, read_write> block_sums: array<f32>;
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;

var<workgroup> red: array<f32, SEED_WORKGROUP>;
// Each invocation's compensated running sum per candidate: [candidate][invocation].
var<workgroup> pot: array<f32, SEED_WORKGROUP * SEED_MAX_CANDIDATES>;
var<workgroup> comp: array<f32, SEED_WORKGROUP * SEED_MAX_CANDIDATES>;

fn weight_of(i: u32) -> f32 {
    if (p.weighted == 1u) {
        return weights[i];
    }
    return 1.0;
}

// Squared distance from point i to candidate c, by direct differences (no cancellation).
fn distance_to(i: u32, c: u32) -> f32 {
    var s = 0.0;
    for (var j = 0u; j < p.dim; j++) {
        let t = xs[i * p.dim + j] - cands[c * p.dim + j];
        s += t * t;
    }
    return s;
}

@compute @workgroup_size(SEED_WORKGROUP)
fn nearest(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // A two-dimensional grid: more blocks than one dimension's 65 535 workgroups.
    let block = wid.x + wid.y * p.blocks_x;
    let base = block * SEED_BLOCK;
    var s = 0.0;
    if (base < p.n) {
        for (var t = 0u; t < SEED_BLOCK / SEED_WORKGROUP; t++) {
            let i = base + t * SEED_WORKGROUP + lid;
            if (i < p.n) {
                var d = distance_to(i, 0u);
                if (p.reset == 0u) {
                    d = min(d2[i], d);
                }
                d2[i] = d;
                s += weight_of(i) * d;
            }
        }
    }
    red[lid] = s;
    workgroupBarrier();
    for (var h = SEED_WORKGROUP / 2u; h > 0u; h /= 2u) {
        if (lid < h) {
            red[lid] += red[lid + h];
        }
        workgroupBarrier();
    }
    if (lid == 0u && base < p.n) {
        block_sums[block] = red[0];
    }
}

@compute @workgroup_size(SEED_WORKGROUP)
fn potentials(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let count = p.candidates;
    for (var c = 0u; c < count; c++) {
        pot[c * SEED_WORKGROUP + lid] = 0.0;
        comp[c * SEED_WORKGROUP + lid] = 0.0;
    }
    for (var i = wid.x * SEED_WORKGROUP + lid; i < p.n; i += nwg.x * SEED_WORKGROUP) {
        let di = d2[i];
        let w = weight_of(i);
        for (var c = 0u; c < count; c++) {
            // Kahan: a workgroup's invocations each add thousands of terms on a large chunk.
            let slot = c * SEED_WORKGROUP + lid;
            let y = w * min(distance_to(i, c), di) - comp[slot];
            let t = pot[slot] + y;
            comp[slot] = (t - pot[slot]) - y;
            pot[slot] = t;
        }
    }
    workgroupBarrier();
    for (var h = SEED_WORKGROUP / 2u; h > 0u; h /= 2u) {
        if (lid < h) {
            for (var c = 0u; c < count; c++) {
                pot[c * SEED_WORKGROUP + lid] += pot[c * SEED_WORKGROUP + lid + h];
            }
        }
        workgroupBarrier();
    }
    if (lid < count) {
        partials[wid.x * SEED_MAX_CANDIDATES + lid] = pot[lid * SEED_WORKGROUP];
    }
}
