//! The layout of the buffers the host and the kernels share, written once: the kernels get
//! these values as WGSL constants ([`wgsl_prelude`]), so a change on one side cannot
//! silently break the other.

/// Words per cell in the statistics copied out for the host: count, mass (3), error (3).
pub(crate) const STAT_WORDS: usize = 7;
/// Offsets of a cell's words in the accumulators: count, mass (3), sse (3), then the
/// coordinate sums (3 each), then the extremes.
pub(crate) const CELL_COUNT: usize = 0;
pub(crate) const CELL_MASS: usize = 1;
pub(crate) const CELL_SSE: usize = 4;
pub(crate) const CELL_SUMS: usize = 7;
/// Words per cell after the sums: the extreme points the empty-cell policy needs.
pub(crate) const EXTREME_WORDS: usize = 4;
/// Cells the 1-D kernel gathers in workgroup memory, and the words each takes there
/// (count, error (3), sum (3), largest and smallest value keys): 16 128 bytes, within the
/// 16 KiB every adapter offers.
pub(crate) const LOCAL_CELLS_1D: usize = 448;
pub(crate) const LOCAL_STRIDE_1D: usize = 9;
/// Words per cell of the empty-cell policy's work buffer (count, mass, error, two distinct
/// points), followed by two flags: an empty cell, a moved centroid.
pub(crate) const WORK_CELL_WORDS: usize = 4;
pub(crate) const WORK_DISTINCT: usize = 3;
pub(crate) const WORK_ANY_EMPTY: usize = 0;
pub(crate) const WORK_MOVED: usize = 1;
pub(crate) const WORK_FLAGS: usize = 2;
/// Words of the history's header and of each record (see `history.wgsl`).
pub(crate) const HISTORY_HEADER: usize = 4;
pub(crate) const HISTORY_RECORD: usize = 4;
/// The bit of a record's split word that says the update moved a centroid.
pub(crate) const MOVED_BIT: u32 = 1 << 31;

/// Invocations per workgroup of the per-cell kernels (`update.wgsl`): one cell each.
pub(crate) const CELL_WORKGROUP: usize = 64;

/// Greedy k-means++ on the device (`seeding.wgsl`): points per block of the draws' block
/// sums, invocations per workgroup, and the most candidates one potentials pass sums
/// (2 + ⌊ln k⌋ stays below it for every k below 2³²; their sums fill 12 KiB of workgroup
/// memory).
pub(crate) const SEED_BLOCK: usize = 256;
pub(crate) const SEED_WORKGROUP: usize = 64;
pub(crate) const SEED_MAX_CANDIDATES: usize = 24;

/// Words per cell of the accumulators in dimension `dim`.
pub(crate) fn cell_stride(dim: usize) -> usize {
    CELL_SUMS + 3 * dim + EXTREME_WORDS
}

/// These constants as WGSL, prepended to every kernel.
pub(crate) fn wgsl_prelude() -> String {
    let u = |name: &str, v: usize| format!("const {name}: u32 = {v}u;\n");
    [
        super::buffers::ChunkParams::wgsl(),
        super::buffers::CellParams::wgsl(),
        super::buffers::DrawParams::wgsl(),
        super::buffers::SeedParams::wgsl(),
        u("CELL_COUNT", CELL_COUNT),
        u("CELL_MASS", CELL_MASS),
        u("CELL_SSE", CELL_SSE),
        u("CELL_SUMS", CELL_SUMS),
        u("STAT_WORDS", STAT_WORDS),
        u("CELL_WORKGROUP", CELL_WORKGROUP),
        u("EXTREME_WORDS", EXTREME_WORDS),
        u("LOCAL_CELLS_1D", LOCAL_CELLS_1D),
        u("LOCAL_STRIDE_1D", LOCAL_STRIDE_1D),
        u("WORK_CELL_WORDS", WORK_CELL_WORDS),
        u("WORK_DISTINCT", WORK_DISTINCT),
        u("WORK_ANY_EMPTY", WORK_ANY_EMPTY),
        u("WORK_MOVED", WORK_MOVED),
        u("HISTORY_HEADER", HISTORY_HEADER),
        u("HISTORY_RECORD", HISTORY_RECORD),
        u("SEED_BLOCK", SEED_BLOCK),
        u("SEED_WORKGROUP", SEED_WORKGROUP),
        u("SEED_MAX_CANDIDATES", SEED_MAX_CANDIDATES),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prelude declares each parameter block field by field as the host lays it out: 4
    /// bytes a field, in order, so the WGSL struct and the Rust one have the same size (a
    /// multiple of 16, as a uniform buffer's must be).
    #[test]
    fn the_parameter_blocks_are_declared_from_the_host_structs() {
        use super::super::buffers::{CellParams, ChunkParams, DrawParams, SeedParams};
        let p = wgsl_prelude();
        for (name, size) in [
            ("ChunkParams", std::mem::size_of::<ChunkParams>()),
            ("CellParams", std::mem::size_of::<CellParams>()),
            ("DrawParams", std::mem::size_of::<DrawParams>()),
            ("SeedParams", std::mem::size_of::<SeedParams>()),
        ] {
            let fields = p
                .split(&format!("struct {name} {{"))
                .nth(1)
                .and_then(|rest| rest.split('}').next())
                .unwrap_or_else(|| panic!("{name} in the prelude"));
            let count = fields.lines().filter(|l| l.contains(':')).count();
            assert_eq!(4 * count, size, "{name}");
            assert_eq!(size % 16, 0, "{name}");
            // Nothing in the shader files declares them a second time.
            for (kernel, src) in super::super::shaders::all() {
                assert_eq!(
                    src.matches(&format!("struct {name} ")).count(),
                    1,
                    "{kernel}"
                );
            }
        }
        assert!(p.contains("const CELL_SUMS: u32 = 7u;"));
        for (kernel, src) in super::super::shaders::all() {
            assert_eq!(src.matches("const CELL_SUMS").count(), 1, "{kernel}");
        }
    }
}
