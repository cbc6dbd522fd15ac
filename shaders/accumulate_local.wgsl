// Adds a 96-bit value to wacc[b..b+3], the workgroup-memory accumulators a kernel declares
// (`var<workgroup> wacc: array<atomic<u32>, N>`): `gadd96` for workgroup memory. A WGSL
// function cannot take a pointer that may point into either address space, so the carry
// logic is written once per space.
fn wadd96(b: u32, w: vec3<u32>) {
    var c1 = 0u;
    if (w.x != 0u) {
        let o = atomicAdd(&wacc[b], w.x);
        c1 = select(0u, 1u, o + w.x < o);
    }
    var c2 = 0u;
    if (w.y != 0u) {
        let o = atomicAdd(&wacc[b + 1u], w.y);
        c2 = select(0u, 1u, o + w.y < o);
    }
    if (c1 != 0u) {
        let o = atomicAdd(&wacc[b + 1u], 1u);
        c2 = c2 + select(0u, 1u, o == 0xffffffffu);
    }
    let t = w.z + c2;
    if (t != 0u) {
        atomicAdd(&wacc[b + 2u], t);
    }
}

