// Probes of what the adapter's matrix units and plain f32 arithmetic can do, run by
// `benches/gpu_probe.rs`: one 16x16x16 f16 product with f32 accumulation in each load
// layout (to pin down the layout convention on a real driver), and two throughput loops.
enable f16;
enable wgpu_cooperative_matrix;

@group(0) @binding(0) var<storage, read> a: array<f16>;
@group(0) @binding(1) var<storage, read> b: array<f16>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;

// C = A B + C with every matrix loaded and stored column-major (stride 16).
@compute @workgroup_size(32)
fn tile_col() {
    let ma = coopLoad<coop_mat16x16<f16, A>>(&a[0], 16u);
    let mb = coopLoad<coop_mat16x16<f16, B>>(&b[0], 16u);
    let mc = coopLoad<coop_mat16x16<f32, C>>(&c[0], 16u);
    coopStore(coopMultiplyAdd(ma, mb, mc), &c[0], 16u);
}

// The same, row-major.
@compute @workgroup_size(32)
fn tile_row() {
    let ma = coopLoadT<coop_mat16x16<f16, A>>(&a[0], 16u);
    let mb = coopLoadT<coop_mat16x16<f16, B>>(&b[0], 16u);
    let mc = coopLoadT<coop_mat16x16<f32, C>>(&c[0], 16u);
    coopStoreT(coopMultiplyAdd(ma, mb, mc), &c[0], 16u);
}

const STEPS: u32 = 4096u;

// Throughput: each subgroup of 32 multiplies its tiles STEPS times into four independent
// accumulators (16x16x16x2 flops each), then stores them.
@compute @workgroup_size(128)
fn mma_loop(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let s = wg.x * 4u + li / 32u;
    let ma = coopLoad<coop_mat16x16<f16, A>>(&a[(s % 64u) * 256u], 16u);
    let mb = coopLoad<coop_mat16x16<f16, B>>(&b[(s % 64u) * 256u], 16u);
    var c0 = coopLoad<coop_mat16x16<f32, C>>(&c[0], 16u);
    var c1 = c0;
    var c2 = c0;
    var c3 = c0;
    for (var i = 0u; i < STEPS; i++) {
        c0 = coopMultiplyAdd(ma, mb, c0);
        c1 = coopMultiplyAdd(ma, mb, c1);
        c2 = coopMultiplyAdd(ma, mb, c2);
        c3 = coopMultiplyAdd(ma, mb, c3);
    }
    let base = 1024u + (s % 4096u) * 1024u;
    coopStore(c0, &c[base], 16u);
    coopStore(c1, &c[base + 256u], 16u);
    coopStore(c2, &c[base + 512u], 16u);
    coopStore(c3, &c[base + 768u], 16u);
}

// Throughput of plain f32 fused multiply-adds: eight independent vec4 chains per invocation.
@compute @workgroup_size(256)
fn fma_loop(@builtin(global_invocation_id) g: vec3<u32>) {
    let x = vec4<f32>(f32(g.x & 7u) * 1e-3);
    var r0 = vec4<f32>(1.0);
    var r1 = r0 * 1.01;
    var r2 = r0 * 1.02;
    var r3 = r0 * 1.03;
    var r4 = r0 * 1.04;
    var r5 = r0 * 1.05;
    var r6 = r0 * 1.06;
    var r7 = r0 * 1.07;
    for (var i = 0u; i < STEPS; i++) {
        r0 = fma(r0, x, r1);
        r1 = fma(r1, x, r2);
        r2 = fma(r2, x, r3);
        r3 = fma(r3, x, r4);
        r4 = fma(r4, x, r5);
        r5 = fma(r5, x, r6);
        r6 = fma(r6, x, r7);
        r7 = fma(r7, x, r0);
    }
    let v = r0 + r1 + r2 + r3 + r4 + r5 + r6 + r7;
    c[1024u + (g.x % 4096u)] = v.x + v.y + v.z + v.w;
}
