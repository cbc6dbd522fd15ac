// The empty-cell policy of the CPU backends (src/backend/empty_cells.rs), on the device, so
// that a fit needs no read-back between iterations. One workgroup, after `update` (and, in
// d-D, the extremes passes of `extremes.wgsl`):
//   - the iteration's history record gets the exact total error of the reduction;
//   - every empty cell (no mass), in index order, takes its own donor among the cells with
//     two distinct points, most points first (lowest index on ties): its centroid moves onto
//     the donor's farthest point (a donor whose farthest point is its centroid is passed
//     over); an empty cell with no donor left stays empty;
//   - in 1-D (`sorted`), the centroids are sorted again when anything was split;
//   - the number of splits, and whether `update` moved a centroid, go into this iteration's
//     history record, and the record count advances;
//   - the driver's stop rule is applied to this record and the one before: when it holds,
//     the indirect dispatches of the rest of the batch are set to zero workgroups and later
//     calls of this kernel return at once, so the device stops where the host would have
//     (the host still applies the rule itself to what comes back).
// The choices (which cells, which donors) depend on integer counts, on comparisons of
// distances and on equality of coordinates, so they are the CPU's wherever the two
// devices' distances order the points alike.

// Per cell (WORK_CELL_WORDS): count, mass, sse, two distinct points (1/0); then the flags of
// `update`: an empty cell, a moved centroid.
@group(0) @binding(5) var<storage, read_write> work: array<u32>;
// Word 0: 1 once the batch has stopped; then (x, y, z) of each indirect dispatch of the batch.
@group(0) @binding(7) var<storage, read_write> dispatch: array<u32>;

const NONE: u32 = 0xffffffffu;
const SPLIT_WG: u32 = 256u;

var<workgroup> wg_empties: atomic<u32>;
var<workgroup> wg_next: atomic<u32>;
var<workgroup> wg_pick: u32;
var<workgroup> wg_same: atomic<u32>;
var<workgroup> red_count: array<u32, 256>;
var<workgroup> red_cell: array<u32, 256>;

fn work_count(j: u32) -> u32 {
    return work[WORK_CELL_WORDS * j];
}

fn work_mass(j: u32) -> f32 {
    return bitcast<f32>(work[WORK_CELL_WORDS * j + 1u]);
}

// Whether cell j may give a split: two distinct points, not used yet this iteration.
fn donor_ok(j: u32) -> bool {
    return work_count(j) >= 2u && work_mass(j) > 0.0 && work[WORK_CELL_WORDS * j + WORK_DISTINCT] != 0u;
}

// Coordinate t of the donor's farthest point: copied by `far_copy` in d-D; in 1-D the end of
// the cell's range farther from the centroid it entered with (kept in far_x by `update`),
// the lower end on ties.
fn far_point(j: u32, t: u32) -> f32 {
    if (p.sorted == 1u) {
        let e = j * p.stride + cell_extremes(1u);
        let lo = value_of(~acc[e + 1u]);
        let hi = value_of(acc[e]);
        let c = far_x[j];
        return select(hi, lo, abs(lo - c) >= abs(hi - c));
    }
    return far_x[j * p.dim + t];
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

// Thread 0, after this iteration's record is complete: the stop rule (`stops` in
// src/backend/mod.rs).
fn apply_stop_rule(r: u32, splits: u32, moved: u32) {
    if (splits != 0u) {
        return;
    }
    if (moved == 0u) {
        stop_batch();
        return;
    }
    if (p.tolerance <= 0.0) {
        return;
    }
    var prev = vec3<u32>(history[1], history[2], history[3]);
    if (r > 0u) {
        prev = words_at(HISTORY_HEADER + HISTORY_RECORD * (r - 1u));
    } else if (prev.z == NONE) {
        return;
    }
    if (meets_tolerance(prev, words_at(HISTORY_HEADER + HISTORY_RECORD * r))) {
        stop_batch();
    }
}

// The rest of the batch does nothing: its indirect dispatches get zero workgroups, and
// later calls of `split_empty` return at once.
fn stop_batch() {
    dispatch[0] = 1u;
    for (var i = 1u; i < arrayLength(&dispatch); i += 3u) {
        dispatch[i] = 0u;
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
        work[WORK_CELL_WORDS * j] = count;
        work[WORK_CELL_WORDS * j + 1u] = bitcast<u32>(mass);
        work[WORK_CELL_WORDS * j + 2u] = bitcast<u32>(from96(b + CELL_SSE) / p.scale_e);
        if (p.sorted == 1u && count != 0u) {
            let e = b + cell_extremes(1u);
            let distinct = value_of(~acc[e + 1u]) < value_of(acc[e]);
            work[WORK_CELL_WORDS * j + WORK_DISTINCT] = select(0u, 1u, distinct);
        }
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
        var exhausted = false;
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
            loop {
                // The donor: most points, lowest index on ties.
                var best_count = 0u;
                var best_cell = NONE;
                for (var j = lid; j < p.k; j += SPLIT_WG) {
                    let c = work_count(j);
                    if (donor_ok(j) && c > best_count) {
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
                    atomicStore(&wg_same, 1u);
                }
                let donor = workgroupUniformLoad(&wg_pick);
                if (donor == NONE) {
                    exhausted = true;
                    break;
                }
                for (var t = lid; t < p.dim; t += SPLIT_WG) {
                    if (far_point(donor, t) != cents[donor * p.dim + t]) {
                        atomicStore(&wg_same, 0u);
                    }
                }
                workgroupBarrier();
                if (lid == 0u) {
                    wg_pick = atomicLoad(&wg_same);
                }
                let same = workgroupUniformLoad(&wg_pick);
                // Each donor gives at most one split.
                if (lid == 0u) {
                    work[WORK_CELL_WORDS * donor] = 0u;
                }
                if (same == 0u) {
                    for (var t = lid; t < p.dim; t += SPLIT_WG) {
                        cents[empty * p.dim + t] = far_point(donor, t);
                    }
                    storageBarrier();
                    if (lid == 0u) {
                        norms[empty] = norm_of(empty);
                    }
                    splits += 1u;
                    break;
                }
                storageBarrier();
            }
            if (exhausted) {
                break;
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
        let flags = WORK_CELL_WORDS * p.k;
        let moved = work[flags + WORK_MOVED];
        history[record_base() + 3u] = splits | (moved << 31u);
        apply_stop_rule(r, splits, moved);
        history[0] = r + 1u;
        work[flags + WORK_ANY_EMPTY] = 0u;
        work[flags + WORK_MOVED] = 0u;
    }
}
