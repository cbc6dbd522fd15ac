//! Every kernel's entry point, parameter block and group-0 layout, declared once. Pipelines
//! are built with these layouts (never inferred from the shader), so wgpu checks each bind
//! group against them, and a test checks them against what each entry point of the WGSL
//! declares and uses.

use super::buffers::{CellParams, ChunkParams, DrawParams, ParamsBlock, SeedParams};
use super::shaders;

/// What a binding of group 0 holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The kernel's parameter block (a uniform buffer).
    Params,
    /// A storage buffer the kernel only reads.
    Read,
    /// A storage buffer the kernel writes (or updates atomically).
    ReadWrite,
}

use Slot::{Params, Read, ReadWrite};

/// One entry point of one kernel.
pub(crate) struct Kernel {
    /// The pipeline's name (its cache key, unless the source is specialised).
    pub name: &'static str,
    /// The WGSL source it comes from (the d-D kernel's is specialised per tile shape).
    pub source: fn() -> String,
    pub entry: &'static str,
    /// Its parameter block at binding 0 (the bound buffer must hold at least its size).
    pub params: ParamsBlock,
    /// Group 0, binding by binding.
    pub bindings: &'static [(u32, Slot)],
}

/// Assignment and reduction in 1-D: points, centroids, accumulators.
pub(crate) const ASSIGN_1D: Kernel = Kernel {
    name: "assign_1d",
    source: shaders::assign_1d,
    entry: "main",
    params: ChunkParams::BLOCK,
    bindings: &[(0, Params), (1, Read), (2, Read), (3, ReadWrite)],
};

/// Assignment and reduction in d-D: points, centroids, accumulators, norms, labels,
/// weights, distances.
pub(crate) const ASSIGN_DENSE: Kernel = Kernel {
    name: "assign_dense",
    source: shaders::assign_dense,
    entry: "main",
    params: ChunkParams::BLOCK,
    bindings: &[
        (0, Params),
        (1, Read),
        (2, Read),
        (3, ReadWrite),
        (4, Read),
        (5, ReadWrite),
        (6, Read),
        (7, ReadWrite),
    ],
};

/// The three extremes passes share one bind group per chunk, so one layout: points,
/// accumulators, labels, distances, the empty-cell work and the farthest points.
const EXTREMES_GROUP: &[(u32, Slot)] = &[
    (0, Params),
    (1, Read),
    (3, ReadWrite),
    (5, Read),
    (7, Read),
    (8, ReadWrite),
    (9, ReadWrite),
];

/// An entry point named after itself that shares its module's bind group with others.
const fn sharing(
    entry: &'static str,
    source: fn() -> String,
    params: ParamsBlock,
    bindings: &'static [(u32, Slot)],
) -> Kernel {
    Kernel {
        name: entry,
        source,
        entry,
        params,
        bindings,
    }
}

const fn extremes(entry: &'static str) -> Kernel {
    sharing(entry, shaders::extremes, ChunkParams::BLOCK, EXTREMES_GROUP)
}

pub(crate) const FARTHEST: Kernel = extremes("farthest");
pub(crate) const FAR_COPY: Kernel = extremes("far_copy");
pub(crate) const NEAR_COMPARE: Kernel = extremes("near_compare");

/// The statistics' copy for the host: accumulators, statistics.
pub(crate) const COPY_STATS: Kernel = Kernel {
    name: "copy_stats",
    source: shaders::update,
    entry: "copy_stats",
    params: CellParams::BLOCK,
    bindings: &[(0, Params), (1, Read), (4, ReadWrite)],
};

/// The update's buffers: accumulators, centroids, norms, the empty-cell work, the
/// centroids as they entered.
const CELLS_GROUP: &[(u32, Slot)] = &[
    (0, Params),
    (1, Read),
    (2, ReadWrite),
    (3, ReadWrite),
    (5, ReadWrite),
    (9, ReadWrite),
];

pub(crate) const UPDATE: Kernel = Kernel {
    name: "update",
    source: shaders::update,
    entry: "update",
    params: CellParams::BLOCK,
    bindings: CELLS_GROUP,
};

/// The update's buffers, the history and the indirect dispatch arguments.
pub(crate) const SPLIT_EMPTY: Kernel = Kernel {
    name: "split_empty",
    source: shaders::update,
    entry: "split_empty",
    params: CellParams::BLOCK,
    bindings: &[
        (0, Params),
        (1, Read),
        (2, ReadWrite),
        (3, ReadWrite),
        (5, ReadWrite),
        (6, ReadWrite),
        (7, ReadWrite),
        (9, ReadWrite),
    ],
};

/// Sample generation: the output, and the history's record count (the iteration).
pub(crate) const GENERATE: Kernel = Kernel {
    name: "generate",
    source: shaders::generate,
    entry: "main",
    params: DrawParams::BLOCK,
    bindings: &[(0, Params), (1, ReadWrite), (2, Read)],
};

/// Greedy k-means++'s two passes share one bind group per chunk: points, weights, the
/// distances to the nearest chosen centroid, the candidates, the block sums and the
/// potentials' partial sums.
const SEEDING_GROUP: &[(u32, Slot)] = &[
    (0, Params),
    (1, Read),
    (2, Read),
    (3, ReadWrite),
    (4, Read),
    (5, ReadWrite),
    (6, ReadWrite),
];

pub(crate) const NEAREST: Kernel = sharing(
    "nearest",
    shaders::seeding,
    SeedParams::BLOCK,
    SEEDING_GROUP,
);
pub(crate) const POTENTIALS: Kernel = sharing(
    "potentials",
    shaders::seeding,
    SeedParams::BLOCK,
    SEEDING_GROUP,
);

#[cfg(test)]
pub(crate) const ALL: [&Kernel; 11] = [
    &ASSIGN_1D,
    &ASSIGN_DENSE,
    &FARTHEST,
    &FAR_COPY,
    &NEAR_COMPARE,
    &COPY_STATS,
    &UPDATE,
    &SPLIT_EMPTY,
    &GENERATE,
    &NEAREST,
    &POTENTIALS,
];

#[cfg(test)]
mod tests {
    use super::*;
    use naga::{AddressSpace, StorageAccess, TypeInner};

    /// Each kernel's layout matches its WGSL: every binding its entry point uses is in the
    /// layout with the access the shader declares (a read-only layout for a writable buffer
    /// fails pipeline creation), binding 0 is the named parameter block, and the layout
    /// names no binding the module lacks.
    #[test]
    fn every_layout_matches_its_entry_point() {
        for kernel in ALL {
            let src = (kernel.source)();
            let module = naga::front::wgsl::parse_str(&src).expect("parses");
            let info = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            )
            .validate(&module)
            .expect("validates");
            let index = module
                .entry_points
                .iter()
                .position(|e| e.name == kernel.entry)
                .unwrap_or_else(|| panic!("{}: no entry point {}", kernel.name, kernel.entry));
            let uses = info.get_entry_point(index);
            let mut declared = Vec::new();
            for (handle, var) in module.global_variables.iter() {
                let Some(binding) = &var.binding else {
                    continue;
                };
                assert_eq!(binding.group, 0, "{}", kernel.name);
                declared.push(binding.binding);
                let slot = kernel
                    .bindings
                    .iter()
                    .find(|(b, _)| *b == binding.binding)
                    .map(|&(_, s)| s);
                if uses[handle].is_empty() {
                    continue;
                }
                let want = match var.space {
                    AddressSpace::Uniform => {
                        let TypeInner::Struct { .. } = module.types[var.ty].inner else {
                            panic!("{}: a uniform that is not a struct", kernel.name);
                        };
                        assert_eq!(
                            module.types[var.ty].name.as_deref(),
                            Some(kernel.params.name),
                            "{}",
                            kernel.name
                        );
                        Params
                    }
                    AddressSpace::Storage { access } if access.contains(StorageAccess::STORE) => {
                        ReadWrite
                    }
                    AddressSpace::Storage { .. } => Read,
                    other => panic!("{}: unexpected space {other:?}", kernel.name),
                };
                assert_eq!(
                    slot,
                    Some(want),
                    "{}: binding {} is used as {want:?}",
                    kernel.name,
                    binding.binding
                );
            }
            for (b, _) in kernel.bindings {
                assert!(
                    declared.contains(b),
                    "{}: binding {b} undeclared",
                    kernel.name
                );
            }
        }
    }
}
