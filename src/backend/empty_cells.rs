//! The empty-cell policy shared by every backend (`shaders/empty_cells.wgsl` runs it on the
//! device).
//!
//! Each empty cell (no mass), in index order, takes its own donor: the populated cells that
//! can be split, most points first (lowest index on ties), each giving at most one split per
//! iteration. The empty cell's centroid moves onto the donor's farthest point (the point with
//! the largest error, lowest index on ties), which then lies nearer to it than to anything
//! else, so the split takes: the new cell gets at least that point. The donor keeps its mean.
//!
//! A cell can be split when its points are not all one point: its farthest point (lowest
//! index on ties) differs from its nearest one (highest index on ties). Splitting a cell of
//! identical copies only moves them back and forth between two centroids (3 861 splits in 100
//! iterations where the CPU stopped after 2), so such cells are never donors, and an empty
//! cell with no donor left stays empty (its centroid unchanged, never NaN).

use super::CellStats;

/// Where a cell's extreme points are, for the split policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Extremes {
    /// Whether each cell has two distinct points.
    pub splittable: Vec<bool>,
    /// Each cell's farthest point, row-major `k x dim` (unspecified where not splittable).
    pub far: Vec<f64>,
}

/// Re-seeds the empty cells of `stats` on the farthest points of their donors; `extremes`
/// must be filled whenever a cell is empty.
/// `centroids` holds the updated means (row-major `k x dim`). Returns the number of splits.
pub(crate) fn split_empty_cells(
    centroids: &mut [f64],
    dim: usize,
    stats: &CellStats,
    extremes: &Extremes,
) -> usize {
    let k = stats.counts.len();
    // Without an empty cell there is nothing to do (and `extremes` may be left empty).
    if stats.mass.iter().all(|&m| m > 0.0) {
        return 0;
    }
    let mut donors: Vec<usize> = (0..k)
        .filter(|&j| stats.counts[j] >= 2 && stats.mass[j] > 0.0 && extremes.splittable[j])
        .collect();
    donors.sort_by(|&a, &b| stats.counts[b].cmp(&stats.counts[a]).then(a.cmp(&b)));
    let mut donors = donors.into_iter();
    let mut splits = 0;
    for empty in (0..k).filter(|&j| stats.mass[j] <= 0.0) {
        // A farthest point that already is the donor's centroid would tie with it.
        let far = |d: usize| &extremes.far[d * dim..(d + 1) * dim];
        let Some(donor) = donors.find(|&d| far(d) != &centroids[d * dim..(d + 1) * dim]) else {
            break;
        };
        let point = far(donor).to_vec();
        centroids[empty * dim..(empty + 1) * dim].copy_from_slice(&point);
        splits += 1;
    }
    splits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(counts: &[u64]) -> CellStats {
        CellStats {
            counts: counts.to_vec(),
            mass: counts.iter().map(|&c| c as f64).collect(),
            sse: counts.iter().map(|&c| c as f64).collect(),
        }
    }

    #[test]
    fn each_empty_cell_takes_the_next_donors_farthest_point() {
        let mut c = vec![0.0, 0.0, 5.0, 5.0, 9.0, 9.0, 1.0, 1.0];
        let s = stats(&[10, 0, 3, 0]);
        let e = Extremes {
            splittable: vec![true, false, true, false],
            far: vec![2.0, -1.0, 0.0, 0.0, 8.0, 7.0, 0.0, 0.0],
        };
        assert_eq!(split_empty_cells(&mut c, 2, &s, &e), 2);
        assert_eq!(c, vec![0.0, 0.0, 2.0, -1.0, 9.0, 9.0, 8.0, 7.0]);
    }

    #[test]
    fn cells_of_identical_points_are_never_donors() {
        let mut c = vec![1.0, 7.0];
        let s = stats(&[4, 0]);
        let e = Extremes {
            splittable: vec![false, false],
            far: vec![1.0, 0.0],
        };
        assert_eq!(split_empty_cells(&mut c, 1, &s, &e), 0);
        assert_eq!(c, vec![1.0, 7.0]);
    }

    #[test]
    fn a_farthest_point_on_the_centroid_is_skipped() {
        let mut c = vec![1.0, 7.0, 3.0];
        let s = stats(&[5, 0, 2]);
        let e = Extremes {
            splittable: vec![true, false, true],
            far: vec![1.0, 0.0, 4.0],
        };
        assert_eq!(split_empty_cells(&mut c, 1, &s, &e), 1);
        assert_eq!(c, vec![1.0, 4.0, 3.0]);
    }
}
