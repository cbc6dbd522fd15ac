//! Centroids transposed into panels of sixteen, the layout of the fused x86 kernels
//! ([`super::avx512_fused`], [`super::avx2_fused`]): one 16-lane register, or two 8-lane ones, of
//! centroid values per coordinate, so a kernel walks a panel's coordinates in order.

use super::rank::{LANES, finish_lanes};

/// Centroids transposed into panels: panel `t` holds `dim` rows of 16 values, value `l` of
/// row `j` being coordinate `j` of centroid `16 t + l`. Padding lanes get norm +inf so they
/// never win.
pub(crate) struct Packed {
    pub k: usize,
    pub panels: usize,
    pub data: Vec<f32>,
    pub norms: Vec<f32>,
}

pub(crate) fn pack(centroids: &[f32], norms: &[f32], dim: usize) -> Packed {
    let k = norms.len();
    let panels = k.div_ceil(LANES);
    let mut data = vec![0.0f32; panels * dim * LANES];
    let mut pn = vec![f32::INFINITY; panels * LANES];
    for c in 0..k {
        let (t, l) = (c / LANES, c % LANES);
        for j in 0..dim {
            data[(t * dim + j) * LANES + l] = centroids[c * dim + j];
        }
        pn[c] = norms[c];
    }
    Packed {
        k,
        panels,
        data,
        norms: pn,
    }
}

/// A point's label and gap from its lanes' running state: lane `l` holds its best value, its
/// runner-up and the panel the best came from. A lane that never won (+inf) or a padding lane
/// names no centroid; with no finite lane at all (only overflowing data) the label is 0.
pub(crate) fn merge_lanes(
    best: &[f32; LANES],
    second: &[f32; LANES],
    panel: &[u32; LANES],
    k: usize,
) -> (u32, f32) {
    let mut idx = [u32::MAX; LANES];
    for l in 0..LANES {
        let i = panel[l] as usize * LANES + l;
        if best[l] != f32::INFINITY && i < k {
            idx[l] = i as u32;
        }
    }
    let (j, v, s) = finish_lanes(best, &idx, second);
    (if j < k { j as u32 } else { 0 }, s - v)
}

/// The running state of a kernel that visits the panels in blocks, kept per point between
/// blocks: each lane's best value, runner-up and the panel of its best, `LANES` entries a
/// point.
#[derive(Default)]
pub(crate) struct LaneState {
    pub best: Vec<f32>,
    pub second: Vec<f32>,
    pub panel: Vec<u32>,
}

impl LaneState {
    /// `rows` points with no value seen yet.
    pub(crate) fn reset(&mut self, rows: usize) {
        for v in [&mut self.best, &mut self.second] {
            v.clear();
            v.resize(rows * LANES, f32::INFINITY);
        }
        self.panel.clear();
        self.panel.resize(rows * LANES, 0);
    }

    /// Point `r`'s label and gap ([`merge_lanes`]).
    pub(crate) fn merge(&self, r: usize, k: usize) -> (u32, f32) {
        let lanes = r * LANES..(r + 1) * LANES;
        let array = |v: &[f32]| -> [f32; LANES] { v.try_into().expect("LANES entries") };
        merge_lanes(
            &array(&self.best[lanes.clone()]),
            &array(&self.second[lanes.clone()]),
            &self.panel[lanes].try_into().expect("LANES entries"),
            k,
        )
    }
}
