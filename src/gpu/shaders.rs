//! The WGSL sources, assembled from `shaders/` at compile time. WGSL has no `#include`, so
//! each kernel is its shared prelude followed by its own file.

/// Assignment and reduction in 1-D (binary search over midpoints).
pub(crate) const ASSIGN_1D: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/accumulate_global.wgsl"),
    include_str!("../../shaders/accumulate_local.wgsl"),
    include_str!("../../shaders/assign_1d.wgsl"),
);

/// Assignment and reduction in d dimensions (tiled distances, arg-min).
pub(crate) const ASSIGN_DENSE: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/accumulate_global.wgsl"),
    include_str!("../../shaders/accumulate_local.wgsl"),
    include_str!("../../shaders/assign_dense.wgsl"),
);

/// Statistics copy, centroid update, the per-iteration record and the empty-cell policy.
pub(crate) const UPDATE: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/update.wgsl"),
    include_str!("../../shaders/history.wgsl"),
    include_str!("../../shaders/empty_cells.wgsl"),
);

/// Sample generation (Philox4x32-10).
pub(crate) const GENERATE: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/generate.wgsl"),
);

/// Every kernel, named, for validation.
#[cfg(test)]
pub(crate) const ALL: [(&str, &str); 4] = [
    ("assign_1d", ASSIGN_1D),
    ("assign_dense", ASSIGN_DENSE),
    ("update", UPDATE),
    ("generate", GENERATE),
];

#[cfg(test)]
mod tests {
    /// A broken shader fails `cargo test`, not a user's run: parse and validate each kernel
    /// with naga, as wgpu does, with default capabilities (no f64, no 64-bit atomics).
    #[test]
    fn every_kernel_parses_and_validates() {
        for (name, src) in super::ALL {
            let module = naga::front::wgsl::parse_str(src)
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
        }
    }

    /// The cooperative-matrix probe (`benches/gpu_probe.rs`) validates with the capabilities
    /// it asks for: f16 and cooperative matrices.
    #[test]
    fn the_cooperative_matrix_probe_validates() {
        let src = include_str!("../../shaders/probe_coop.wgsl");
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("probe_coop: {}", e.emit_to_string(src)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::SHADER_FLOAT16
                | naga::valid::Capabilities::COOPERATIVE_MATRIX,
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("probe_coop: {}", e.emit_to_string(src)));
    }
}
