// The per-iteration record the host reads once per batch of iterations instead of the
// per-cell statistics every iteration. `history` holds a header of HISTORY_HEADER words
// (word 0: records written; words 1-3: the error of the iteration before the batch, top word
// all ones when there is none) and then one record of HISTORY_RECORD words per iteration:
// the exact total squared error as a 96-bit fixed-point integer, and the empty cells split
// with the top bit set when the update moved a centroid. `split_empty` writes the record,
// applies the stop rule and advances the record count.

@group(0) @binding(6) var<storage, read_write> history: array<u32>;

var<workgroup> red_sse: array<vec3<u32>, 256>;

// a + b for non-negative 96-bit integers whose sum stays below 2^96.
fn add96(a: vec3<u32>, b: vec3<u32>) -> vec3<u32> {
    let lo = a.x + b.x;
    let c0 = select(0u, 1u, lo < a.x);
    let m1 = a.y + b.y;
    let c1 = select(0u, 1u, m1 < a.y);
    let mid = m1 + c0;
    let c2 = select(0u, 1u, mid < m1);
    return vec3<u32>(lo, mid, a.z + b.z + c1 + c2);
}

// The exact sum of the 256 invocations' partial sums `s`, in red_sse[0]. Each cell's error is
// at most the total, which the host's scale keeps below 2^95, so no partial sum overflows.
fn reduce_sse(lid: u32, s: vec3<u32>) {
    red_sse[lid] = s;
    workgroupBarrier();
    for (var h = 128u; h > 0u; h >>= 1u) {
        if (lid < h) {
            red_sse[lid] = add96(red_sse[lid], red_sse[lid + h]);
        }
        workgroupBarrier();
    }
}

fn record_base() -> u32 {
    return HISTORY_HEADER + HISTORY_RECORD * history[0];
}
