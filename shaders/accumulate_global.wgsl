// Adds a 96-bit value to acc[b..b+3]. Each word's carry is read from the value the atomic
// returned, so it is counted exactly once however the additions interleave.
fn gadd96(b: u32, w: vec3<u32>) {
    var c1 = 0u;
    if (w.x != 0u) {
        let o = atomicAdd(&acc[b], w.x);
        c1 = select(0u, 1u, o + w.x < o);
    }
    var c2 = 0u;
    if (w.y != 0u) {
        let o = atomicAdd(&acc[b + 1u], w.y);
        c2 = select(0u, 1u, o + w.y < o);
    }
    if (c1 != 0u) {
        let o = atomicAdd(&acc[b + 1u], 1u);
        c2 = c2 + select(0u, 1u, o == 0xffffffffu);
    }
    let t = w.z + c2;
    if (t != 0u) {
        atomicAdd(&acc[b + 2u], t);
    }
}
