// Samples of a law for the randomized Lloyd method, made on the device so they never cross
// the bus. Sample g of seed s is a function of (g, s) alone (Philox4x32-10, a counter-based
// generator), so a chunked run and a single dispatch give the same samples.

@group(0) @binding(0) var<uniform> p: DrawParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
// Word 0: the iteration within a batch (the history's record count), which moves a fresh
// draw on by `draw` values per iteration, so one recorded batch draws new samples each time.
@group(0) @binding(2) var<storage, read> step: array<u32>;

// (high, low) words of the 64-bit product a * b.
fn mul_hi_lo(a: u32, b: u32) -> vec2<u32> {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0u; r < 10u; r++) {
        let m0 = mul_hi_lo(0xD2511F53u, c.x);
        let m1 = mul_hi_lo(0xCD9E8D57u, c.z);
        c = vec4<u32>(m1.x ^ c.y ^ k.x, m1.y, m0.x ^ c.w ^ k.y, m0.y);
        k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let threads = nwg.x * 256u;
    // base + step * draw, in 64 bits.
    let it = step[0];
    let m = mul_hi_lo(it, p.draw_lo);
    let start_lo = p.first_lo + m.y;
    let start_hi = p.first_hi + m.x + it * p.draw_hi + select(0u, 1u, start_lo < m.y);
    for (var i = gid.x; i < p.n; i += threads) {
        let lo = start_lo + i;
        let hi = start_hi + select(0u, 1u, lo < i);
        let r = philox(vec4<u32>(lo, hi, 0u, 0u), vec2<u32>(p.seed_lo, p.seed_hi));
        let u1 = (f32(r.x >> 8u) + 1.0) * 5.9604645e-8; // (0, 1]
        let u2 = f32(r.y >> 8u) * 5.9604645e-8;         // [0, 1)
        var v = 0.0;
        switch p.law {
            case 1u: {
                v = p.a + (p.b - p.a) * u2;
            }
            case 2u: {
                v = -log(u1) / p.a;
            }
            case 3u: {
                v = exp(p.a + p.b * sqrt(-2.0 * log(u1)) * cos(6.2831855 * u2));
            }
            default: {
                v = p.a + p.b * sqrt(-2.0 * log(u1)) * cos(6.2831855 * u2);
            }
        }
        out[i] = v;
    }
}
