// The empty-cell policy of the CPU backends (src/backend/empty_cells.rs), on the device, so
// that a fit needs no read-back between iterations. One workgroup, after `update`:
//   - the iteration's history record gets the exact total error of the reduction;
//   - every empty cell (no mass), in index order, is re-seeded by splitting the cell with the
//     most points (lowest index on ties) among those with two points or more and a positive
//     error: the two halves sit half a per-coordinate RMS radius either side of the donor's
//     centroid along (+1, -1, +1, ...), and the donor's count, mass and error are halved so
//     the next empty cell picks another donor;
//   - in 1-D (`sorted`), the centroids are sorted again when anything was split;
//   - the number of splits goes into this iteration's history record, and the record count
//     advances;
//   - with a tolerance, the driver's stop rule is applied to this record and the one before:
//     when it holds, the indirect dispatches of the rest of the batch are set to zero
//     workgroups and later calls of this kernel return at once, so the device stops where
//     the host would have (the host still applies the rule itself to what comes back).
// The policy's arithmetic is f32 here and f64 on the CPU; the choices (which cells, which
// donors) depend only on integer counts and on signs, so they are the same.

@group(0) @binding(5) var<storage, read_write> work: array<u32>; // per cell: count, mass, sse
// Word 0: 1 once the batch has stopped; then (x, y, z) of each indirect dispatch of the batch.
@group(0) @binding(7) var<storage, read_write> dispatch: array<u32>;

const NONE: u32 = 0xffffffffu;
const SPLIT_WG: u32 = 256u;

var<workgroup> wg_empties: atomic<u32>;
var<workgroup> wg_next: atomic<u32>;
var<workgroup> wg_pick: u32;
var<workgroup> red_count: array<u32, 256>;
var<workgroup> red_cell: array<u32, 256>;

fn work_count(j: u32) -> u32 {
    return work[3u * j];
}

fn work_mass(j: u32) -> f32 {
    return bitcast<f32>(work[3u * j + 1u]);
}

fn work_sse(j: u32) -> f32 {
    return bitcast<f32>(work[3u * j + 2u]);
}

fn norm_of(j: u32) -> f32 {
    var s = 0.0;
    for (var t = 0u; t < p.dim; t++) {
        let c = cents[j * p.dim + t];
        s = fma(c, c, s);
    }
    return s;
}

// Lower index takes the smaller value: with this orientation, slots past k behave as +inf and
// never move, so the sort needs no padding.
fn order_pair(a: u32, b: u32) {
    if (b < p.k) {
        let x = cents[a];
        let y = cents[b];
        if (x > y) {
            cents[a] = y;
            cents[b] = x;
        }
    }
}

// Bitonic sort of the k 1-D centroids in place (the variant whose merges all sort upwards).
fn sort_centroids(lid: u32) {
    var n2 = 1u;
    while (n2 < p.k) {
        n2 <<= 1u;
    }
    for (var size = 2u; size <= n2; size <<= 1u) {
        let half = size >> 1u;
        for (var i = lid; i < n2 / 2u; i += SPLIT_WG) {
            let start = (i / half) * size;
            let off = i % half;
            order_pair(start + off, start + size - 1u - off);
        }
        storageBarrier();
        for (var s = half >> 1u; s > 0u; s >>= 1u) {
            for (var i = lid; i < n2 / 2u; i += SPLIT_WG) {
                let a = 2u * s * (i / s) + i % s;
                order_pair(a, a + s);
            }
            storageBarrier();
        }
    }
}

fn words_at(b: u32) -> vec3<u32> {
    return vec3<u32>(history[b], history[b + 1u], history[b + 2u]);
}

fn less96(a: vec3<u32>, b: vec3<u32>) -> bool {
    if (a.z != b.z) {
        return a.z < b.z;
    }
    if (a.y != b.y) {
        return a.y < b.y;
    }
    return a.x < b.x;
}

// a - b for a >= b.
fn sub96(a: vec3<u32>, b: vec3<u32>) -> vec3<u32> {
    let lo = a.x - b.x;
    let b0 = select(0u, 1u, a.x < b.x);
    let m1 = a.y - b.y;
    let b1 = select(0u, 1u, a.y < b.y);
    let mid = m1 - b0;
    let b2 = select(0u, 1u, m1 < b0);
    return vec3<u32>(lo, mid, a.z - b.z - b1 - b2);
}

fn f32_of(v: vec3<u32>) -> f32 {
    return f32(v.z) * 18446744073709551616.0 + f32(v.y) * 4294967296.0 + f32(v.x);
}

// The driver's rule: stop when the error fell by no more than `tolerance` of the previous.
fn meets_tolerance(prev: vec3<u32>, cur: vec3<u32>) -> bool {
    if (!less96(cur, prev)) {
        return true;
    }
    return f32_of(sub96(prev, cur)) <= p.tolerance * f32_of(prev);
}

// Thread 0, after this iteration's record is complete: the stop rule.
fn apply_stop_rule(r: u32, splits: u32) {
    if (p.tolerance <= 0.0 || splits != 0u) {
        return;
    }
    var prev = vec3<u32>(history[1], history[2], history[3]);
    if (r > 0u) {
        prev = words_at(HISTORY_HEADER + HISTORY_RECORD * (r - 1u));
    } else if (prev.z == NONE) {
        return;
    }
    if (meets_tolerance(prev, words_at(HISTORY_HEADER + HISTORY_RECORD * r))) {
        dispatch[0] = 1u;
        for (var i = 1u; i < arrayLength(&dispatch); i += 3u) {
            dispatch[i] = 0u;
        }
    }
}

@compute @workgroup_size(256)
fn split_empty(@builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        wg_pick = dispatch[0];
    }
    if (workgroupUniformLoad(&wg_pick) != 0u) {
        return;
    }
    if (lid == 0u) {
        atomicStore(&wg_empties, 0u);
    }
    workgroupBarrier();
    var total = vec3<u32>(0u, 0u, 0u);
    for (var j = lid; j < p.k; j += SPLIT_WG) {
        let b = j * p.stride;
        total = add96(total, vec3<u32>(acc[b + CELL_SSE], acc[b + CELL_SSE + 1u], acc[b + CELL_SSE + 2u]));
        let count = acc[b + CELL_COUNT];
        var mass = f32(count);
        if (p.weighted == 1u) {
            mass = from96(b + CELL_MASS) / p.scale_w;
        }
        work[3u * j] = count;
        work[3u * j + 1u] = bitcast<u32>(mass);
        work[3u * j + 2u] = bitcast<u32>(from96(b + CELL_SSE) / p.scale_e);
        if (!(mass > 0.0)) {
            atomicAdd(&wg_empties, 1u);
        }
    }
    reduce_sse(lid, total);
    storageBarrier();
    if (lid == 0u) {
        let r = record_base();
        history[r] = red_sse[0].x;
        history[r + 1u] = red_sse[0].y;
        history[r + 2u] = red_sse[0].z;
        wg_pick = atomicLoad(&wg_empties);
    }
    let empties = workgroupUniformLoad(&wg_pick);
    var splits = 0u;
    if (empties > 0u) {
        var cursor = 0u;
        loop {
            // The first empty cell at or after the cursor.
            if (lid == 0u) {
                atomicStore(&wg_next, NONE);
            }
            workgroupBarrier();
            for (var j = cursor + lid; j < p.k; j += SPLIT_WG) {
                if (!(work_mass(j) > 0.0)) {
                    atomicMin(&wg_next, j);
                    break;
                }
            }
            workgroupBarrier();
            if (lid == 0u) {
                wg_pick = atomicLoad(&wg_next);
            }
            let empty = workgroupUniformLoad(&wg_pick);
            if (empty == NONE) {
                break;
            }
            // The donor: most points, lowest index on ties.
            var best_count = 0u;
            var best_cell = NONE;
            for (var j = lid; j < p.k; j += SPLIT_WG) {
                let c = work_count(j);
                if (c >= 2u && work_sse(j) > 0.0 && work_mass(j) > 0.0 && c > best_count) {
                    best_count = c;
                    best_cell = j;
                }
            }
            red_count[lid] = best_count;
            red_cell[lid] = best_cell;
            workgroupBarrier();
            for (var h = SPLIT_WG / 2u; h > 0u; h >>= 1u) {
                if (lid < h) {
                    let oc = red_count[lid + h];
                    let oj = red_cell[lid + h];
                    if (oc > red_count[lid] || (oc == red_count[lid] && oj < red_cell[lid])) {
                        red_count[lid] = oc;
                        red_cell[lid] = oj;
                    }
                }
                workgroupBarrier();
            }
            if (lid == 0u) {
                wg_pick = red_cell[0];
            }
            let donor = workgroupUniformLoad(&wg_pick);
            if (donor != NONE) {
                let mass = work_mass(donor);
                let sse = work_sse(donor);
                let offset = 0.5 * sqrt(sse / mass / f32(p.dim));
                for (var t = lid; t < p.dim; t += SPLIT_WG) {
                    let sign = select(-1.0, 1.0, t % 2u == 0u);
                    let c = cents[donor * p.dim + t];
                    cents[empty * p.dim + t] = c + sign * offset;
                    cents[donor * p.dim + t] = c - sign * offset;
                }
                storageBarrier();
                if (lid == 0u) {
                    norms[empty] = norm_of(empty);
                    norms[donor] = norm_of(donor);
                    let count = work_count(donor);
                    let half = count / 2u;
                    work[3u * empty] = half;
                    work[3u * donor] = count - half;
                    work[3u * empty + 1u] = bitcast<u32>(0.5 * mass);
                    work[3u * donor + 1u] = bitcast<u32>(0.5 * mass);
                    work[3u * empty + 2u] = bitcast<u32>(0.5 * sse);
                    work[3u * donor + 2u] = bitcast<u32>(0.5 * sse);
                }
                splits += 1u;
            }
            cursor = empty + 1u;
            storageBarrier();
        }
        if (p.sorted == 1u && splits > 0u) {
            sort_centroids(lid);
        }
    }
    if (lid == 0u) {
        let r = history[0];
        history[record_base() + 3u] = splits;
        apply_stop_rule(r, splits);
        history[0] = r + 1u;
    }
}
