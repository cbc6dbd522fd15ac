//! The empty-cell policy shared by every backend.

use super::CellStats;

/// Re-seeds every empty cell (no mass) by splitting the most populated cell, as faiss does, but
/// deterministically: the donor is the cell with the most points (lowest index on ties), and
/// the two halves sit half a per-coordinate RMS radius either side of the donor's centroid,
/// along the direction (+1, -1, +1, ...). The donor's count, mass and error are halved so the
/// next empty cell picks another donor. A cell stays empty (its centroid unchanged, never NaN)
/// when no cell has two distinct points to split.
///
/// `centroids` holds the updated means (row-major `k x dim`). Returns the number of splits.
pub(crate) fn split_empty_cells(centroids: &mut [f64], dim: usize, stats: &mut CellStats) -> usize {
    let k = stats.counts.len();
    let mut splits = 0;
    for empty in 0..k {
        if stats.mass[empty] > 0.0 {
            continue;
        }
        let donor = (0..k)
            .filter(|&j| stats.counts[j] >= 2 && stats.sse[j] > 0.0 && stats.mass[j] > 0.0)
            .max_by(|&a, &b| stats.counts[a].cmp(&stats.counts[b]).then(b.cmp(&a)));
        let Some(donor) = donor else { continue };
        let radius = (stats.sse[donor] / stats.mass[donor] / dim as f64).sqrt();
        let offset = 0.5 * radius;
        for j in 0..dim {
            let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
            let c = centroids[donor * dim + j];
            centroids[empty * dim + j] = c + sign * offset;
            centroids[donor * dim + j] = c - sign * offset;
        }
        let half = stats.counts[donor] / 2;
        stats.counts[empty] = half;
        stats.counts[donor] -= half;
        stats.mass[donor] *= 0.5;
        stats.mass[empty] = stats.mass[donor];
        stats.sse[donor] *= 0.5;
        stats.sse[empty] = stats.sse[donor];
        splits += 1;
    }
    splits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_most_populated_cell() {
        let mut c = vec![0.0, 0.0, 5.0, 5.0, 9.0, 9.0];
        let mut s = CellStats {
            counts: vec![10, 0, 3],
            mass: vec![10.0, 0.0, 3.0],
            sse: vec![20.0, 0.0, 3.0],
        };
        assert_eq!(split_empty_cells(&mut c, 2, &mut s), 1);
        // radius = sqrt(20 / 10 / 2) = 1, offset 0.5
        assert_eq!(c, vec![-0.5, 0.5, 0.5, -0.5, 9.0, 9.0]);
        assert_eq!(s.counts, vec![5, 5, 3]);
        assert!(c.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn leaves_a_cell_empty_when_nothing_can_be_split() {
        let mut c = vec![1.0, 7.0];
        let mut s = CellStats {
            counts: vec![4, 0],
            mass: vec![4.0, 0.0],
            sse: vec![0.0, 0.0],
        };
        assert_eq!(split_empty_cells(&mut c, 1, &mut s), 0);
        assert_eq!(c, vec![1.0, 7.0]);
    }
}
