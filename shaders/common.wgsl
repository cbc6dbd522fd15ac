// Shared by every kernel: the parameter block and 96-bit fixed-point accumulation.
//
// Per-cell sums are accumulated as 96-bit two's-complement integers (three u32 words) with
// 32-bit integer atomics. Integer addition is associative, so the totals are exact and
// identical from run to run whatever order the invocations run in: no float atomics, no
// f64 and no 64-bit atomics needed, which keeps the kernels portable (Metal, GL, WebGPU).
// A value v is stored as round-toward-zero(v * 2^s), with s chosen on the host so every
// scaled value stays below 2^61: ~2^34 of them fit before the 96 bits could overflow.

// The parameter blocks (`ChunkParams`, `CellParams`, `DrawParams`) and the CELL_* offsets
// come first, from the host's definitions (`src/gpu/buffers.rs`, `src/gpu/layout.rs`).

// Layout of one cell in `acc`: [count, mass(3), sse(3), sum_0(3), ..., sum_{dim-1}(3),
// extremes(EXTREME_WORDS)]. The extremes feed the empty-cell policy (`empty_cells.wgsl`):
//   d-D: the largest squared distance (f32 bits), the complement of the farthest point's
//        index, the complement of the smallest distance's bits, the nearest point's index;
//   1-D: the key of the largest value, the complement of the key of the smallest.
// Every word is kept with atomicMax, so cleared accumulators start them right, and the
// complements turn "smallest" and "lowest index" into maxima.

fn cell_extremes(dim: u32) -> u32 {
    return CELL_SUMS + 3u * dim;
}

// An unsigned key of x that orders as x does.
fn key_of(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// The value of a key made by `key_of`.
fn value_of(k: u32) -> f32 {
    return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}

// The 96-bit two's-complement words (low first) of trunc(v) for |v| < 2^62.
fn fixed96(v: f32) -> vec3<u32> {
    let a = abs(v);
    // Both steps are exact: scaling by a power of two, and removing the high bits of a
    // 24-bit mantissa.
    let hi = floor(a * 2.3283064365386963e-10);
    var lo = u32(a - hi * 4294967296.0);
    var mid = u32(hi);
    var top = 0u;
    if (v < 0.0) {
        let c1 = select(0u, 1u, lo == 0u);
        lo = ~lo + 1u;
        let m = ~mid + c1;
        let c2 = select(0u, 1u, c1 == 1u && m == 0u);
        mid = m;
        top = 0xffffffffu + c2;
    }
    return vec3<u32>(lo, mid, top);
}
