//! The WGSL sources, assembled from `shaders/` at compile time. WGSL has no `#include`, so
//! each kernel is the shared layout constants ([`super::layout::wgsl_prelude`]), the shared
//! prelude file and its own files.

use super::layout::wgsl_prelude;

/// The files every kernel starts with.
const COMMON: &str = include_str!("../../shaders/common.wgsl");

/// The d-D kernel's own text, which `tiles.rs` specialises per tile shape.
const ASSIGN_DENSE_FILE: &str = concat!(
    include_str!("../../shaders/accumulate_global.wgsl"),
    include_str!("../../shaders/accumulate_local.wgsl"),
    include_str!("../../shaders/assign_dense.wgsl"),
);

/// `files` after the prelude and the common file.
fn kernel(files: &str) -> String {
    format!("{}{COMMON}{files}", wgsl_prelude())
}

/// Assignment and reduction in 1-D (binary search over midpoints).
pub(crate) fn assign_1d() -> String {
    kernel(concat!(
        include_str!("../../shaders/accumulate_global.wgsl"),
        include_str!("../../shaders/accumulate_local.wgsl"),
        include_str!("../../shaders/assign_1d.wgsl"),
    ))
}

/// Assignment and reduction in d dimensions, in the shape the file holds.
pub(crate) fn assign_dense() -> String {
    kernel(ASSIGN_DENSE_FILE)
}

/// The d-D empty-cell policy's passes: farthest and nearest points of each cell.
pub(crate) fn extremes() -> String {
    kernel(include_str!("../../shaders/extremes.wgsl"))
}

/// Statistics copy, centroid update, the per-iteration record and the empty-cell policy.
pub(crate) fn update() -> String {
    kernel(concat!(
        include_str!("../../shaders/update.wgsl"),
        include_str!("../../shaders/history.wgsl"),
        include_str!("../../shaders/empty_cells.wgsl"),
    ))
}

/// Sample generation (Philox4x32-10).
pub(crate) fn generate() -> String {
    kernel(include_str!("../../shaders/generate.wgsl"))
}

/// Greedy k-means++: the nearest chosen centroid and the candidates' potentials.
pub(crate) fn seeding() -> String {
    kernel(include_str!("../../shaders/seeding.wgsl"))
}

/// Every kernel, named, for validation.
#[cfg(test)]
pub(crate) fn all() -> [(&'static str, String); 6] {
    [
        ("assign_1d", assign_1d()),
        ("assign_dense", assign_dense()),
        ("extremes", extremes()),
        ("update", update()),
        ("generate", generate()),
        ("seeding", seeding()),
    ]
}

#[cfg(test)]
mod tests {
    /// A broken shader fails `cargo test`, not a user's run: parse and validate each kernel
    /// with naga, as wgpu does, with default capabilities (no f64, no 64-bit atomics).
    #[test]
    fn every_kernel_parses_and_validates() {
        for (name, src) in super::all() {
            let module = naga::front::wgsl::parse_str(&src)
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&src)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&src)));
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
