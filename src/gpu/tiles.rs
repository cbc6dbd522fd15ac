//! Shapes of the d-D assignment kernel's tiles: the kernel (`shaders/assign_dense.wgsl`) is
//! written once over the constants BP, BC, BK, TM, TN, and each shape is that text with its
//! own constants. Which shape is fastest depends on the GPU, so a shape can be named at run
//! time ([`crate::GpuOptions::tile`]; `LLOYD_GPU_TILE=128x128x8x8` to the binaries: BP x BC x TM
//! x TN) and timed with `lloyd-bench`.

use super::context::GpuContext;
use super::shaders;
use crate::device::GpuOptions;
use crate::error::{Error, Result};

/// One shape of the d-D kernel's tiles (its parsing and printing live with the public
/// type).
pub(crate) use crate::device::GpuTile as Tile;

/// Coordinates per slice staged through workgroup memory (every shape).
const BK: u32 = 8;

/// The workgroup accumulators of a kernel that does not use them: WGSL wants a size.
pub(crate) const NO_LOCAL: u32 = 4;

/// How the d-D kernel runs: its tile shape, and whether a fit whose cells fit workgroup
/// memory accumulates there first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DenseKernel {
    pub tile: Tile,
    pub local_sums: bool,
}

impl DenseKernel {
    /// The options' tile, or the preferred shape ([`Tile::chosen`]), and their choice of
    /// workgroup accumulators.
    pub(crate) fn chosen(ctx: &GpuContext, options: &GpuOptions) -> Result<Self> {
        Ok(DenseKernel {
            tile: Tile::chosen(ctx, options.tile)?,
            local_sums: options.local_sums,
        })
    }
}

pub(crate) use crate::device::{DEFAULT, PREFERRED};

impl Tile {
    /// Invocations per workgroup.
    pub(crate) fn threads(&self) -> u32 {
        (self.bp / self.tm) * (self.bc / self.tn)
    }

    /// Bytes of workgroup memory the kernel declares, with `local_words` of its own
    /// accumulators.
    pub(crate) fn workgroup_bytes(&self, local_words: u32) -> u64 {
        // Tiles, partial minima, five per-point arrays and two words.
        let words = BK * (self.bp + self.bc) + 2 * self.bp * (self.bc / self.tn) + 5 * self.bp + 2;
        4 * u64::from(words + local_words)
    }

    /// Words of workgroup accumulators this shape can have on `ctx`'s adapter besides its
    /// tiles (at most 8 192, a multiple of 256); 0 when there is no room for them.
    pub(crate) fn local_budget(&self, ctx: &GpuContext) -> u32 {
        let limit = u64::from(ctx.limits.max_compute_workgroup_storage_size);
        let spare = limit.saturating_sub(self.workgroup_bytes(0)) / 4;
        (spare.min(8192) as u32) / 256 * 256
    }

    /// Whether `ctx`'s adapter can run this shape: one invocation per point merges the
    /// partial minima, so a workgroup needs at least BP of them.
    pub(crate) fn check(&self, ctx: &GpuContext) -> Result<()> {
        self.fits(&ctx.limits)
    }

    /// [`Tile::check`] against given limits.
    fn fits(&self, l: &wgpu::Limits) -> Result<()> {
        let threads = self.threads();
        let bytes = self.workgroup_bytes(NO_LOCAL);
        if threads < self.bp
            || threads > l.max_compute_invocations_per_workgroup
            || threads > l.max_compute_workgroup_size_x
            || bytes > u64::from(l.max_compute_workgroup_storage_size)
        {
            return Err(Error::Gpu(format!(
                "tile {self}: {threads} invocations and {bytes} bytes of workgroup memory do not \
                 fit this adapter (at most {} invocations, {} bytes), or are fewer than its {} \
                 points",
                l.max_compute_invocations_per_workgroup,
                l.max_compute_workgroup_storage_size,
                self.bp
            )));
        }
        Ok(())
    }

    /// The shape asked for (an error if the adapter cannot run it), else [`PREFERRED`]
    /// where the adapter can run it, else [`DEFAULT`].
    pub(crate) fn chosen(ctx: &GpuContext, asked: Option<Tile>) -> Result<Tile> {
        if let Some(tile) = asked {
            tile.check(ctx)?;
            return Ok(tile);
        }
        Ok(Self::preferred_for(&ctx.limits))
    }

    /// [`PREFERRED`] if `limits` allow it, else [`DEFAULT`].
    fn preferred_for(limits: &wgpu::Limits) -> Tile {
        if PREFERRED.fits(limits).is_ok() {
            PREFERRED
        } else {
            DEFAULT
        }
    }

    /// The kernel's WGSL for this shape with `local_words` words of workgroup accumulators
    /// ([`NO_LOCAL`] for a kernel that adds to the global ones directly).
    pub(crate) fn source(&self, local_words: u32) -> String {
        let consts = format!(
            "const BP: u32 = {}u;\nconst BC: u32 = {}u;\nconst BK: u32 = {BK}u;\n\
             const TM: u32 = {}u;\nconst TN: u32 = {}u;\nconst LOCAL_WORDS: u32 = {local_words}u;",
            self.bp, self.bc, self.tm, self.tn
        );
        let mut src = replace_region(&shaders::assign_dense(), "// tile", &[consts]);
        for name in ["best", "zero", "product", "argmin", "store", "runner"] {
            src = replace_region(&src, &format!("// gen {name}"), &self.generate(name));
        }
        src
    }

    /// The lines of region `name` of the kernel for this shape (see `assign_dense.wgsl`).
    fn generate(&self, name: &str) -> Vec<String> {
        let (tm, tn) = (self.tm, self.tn);
        let rows = 0..tm;
        let mut out = Vec::new();
        match name {
            "best" => {
                for i in rows {
                    out.push(format!("var bv{i} = BIG;"));
                    out.push(format!("var bi{i} = 0u;"));
                    out.push(format!("var sv{i} = BIG;"));
                }
            }
            "zero" => {
                for i in rows {
                    let line: Vec<String> =
                        (0..tn).map(|j| format!("var d{i}_{j} = 0.0;")).collect();
                    out.push(line.join(" "));
                }
            }
            "product" => {
                // x{i}: coordinate of point i; y{j}: coordinate of centroid j.
                let at = |v: &str, tile: &str, base: &str, o: u32| match o {
                    0 => format!("let {v}{o} = {tile}[{base}];"),
                    _ => format!("let {v}{o} = {tile}[{base} + {o}u];"),
                };
                let xs: Vec<String> = (0..tm).map(|i| at("x", "x_tile", "xo", i)).collect();
                let ys: Vec<String> = (0..tn).map(|j| at("y", "c_tile", "co", j)).collect();
                out.push(xs.join(" "));
                out.push(ys.join(" "));
                for i in rows {
                    let line: Vec<String> = (0..tn)
                        .map(|j| format!("d{i}_{j} = fma(x{i}, y{j}, d{i}_{j});"))
                        .collect();
                    out.push(line.join(" "));
                }
            }
            "argmin" => {
                // Centroids in increasing order and a strict `<`: ties go to the lowest index.
                for j in 0..tn {
                    out.push(format!("if (c0 + tx * TN + {j}u < p.k) {{"));
                    out.push(format!("    let c = c0 + tx * TN + {j}u;"));
                    out.push("    let nrm = norms[c];".to_string());
                    for i in 0..tm {
                        out.push(format!("    let v{i} = nrm - 2.0 * d{i}_{j};"));
                        out.push(format!(
                            "    if (v{i} < bv{i}) {{ sv{i} = bv{i}; bv{i} = v{i}; bi{i} = c; }} \
                             else {{ sv{i} = min(sv{i}, v{i}); }}"
                        ));
                    }
                    out.push("}".to_string());
                }
            }
            "store" => {
                for i in rows {
                    out.push(format!("red_v[(ty * TM + {i}u) * SPAN + tx] = bv{i};"));
                    out.push(format!("red_i[(ty * TM + {i}u) * SPAN + tx] = bi{i};"));
                }
            }
            "runner" => {
                for i in rows {
                    out.push(format!(
                        "red_v[(ty * TM + {i}u) * SPAN + tx] = \
                         select(bv{i}, sv{i}, bi{i} == point_cell[ty * TM + {i}u]);"
                    ));
                }
            }
            _ => unreachable!("no region {name}"),
        }
        out
    }

    /// The key of this shape's pipeline in the context's cache.
    pub(crate) fn pipeline_key(&self, local_words: u32) -> String {
        format!("assign_dense {self} local {local_words}")
    }
}

/// `src` with the lines between the `{marker} begin` and `{marker} end` lines replaced by
/// `lines`, indented as the begin marker is.
fn replace_region(src: &str, marker: &str, lines: &[String]) -> String {
    let begin = format!("{marker} begin");
    let end = format!("{marker} end");
    let mut out = String::with_capacity(src.len() + 4096);
    let mut skipping = false;
    for line in src.lines() {
        let trimmed = line.trim_start();
        if trimmed == end {
            skipping = false;
        } else if skipping {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if trimmed == begin {
            let indent = &line[..line.len() - trimmed.len()];
            for l in lines.iter().flat_map(|l| l.lines()) {
                out.push_str(indent);
                out.push_str(l);
                out.push('\n');
            }
            skipping = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::CANDIDATES;

    #[test]
    fn names_round_trip_and_bad_ones_are_refused() {
        for t in CANDIDATES {
            assert_eq!(t.to_string().parse::<Tile>().unwrap(), t);
        }
        for bad in [
            "",
            "64x64x4",
            "64x64x3x4",
            "64x64x0x4",
            "axbxcxd",
            "64x64x4x4x4",
        ] {
            assert!(bad.parse::<Tile>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_large_shape_only_where_the_adapter_has_room() {
        let webgpu = wgpu::Limits::default();
        assert_eq!(Tile::preferred_for(&webgpu), DEFAULT);
        assert!(DEFAULT.fits(&webgpu).is_ok());
        let roomy = wgpu::Limits {
            max_compute_workgroup_storage_size: 32 << 10,
            ..wgpu::Limits::default()
        };
        assert_eq!(Tile::preferred_for(&roomy), PREFERRED);
    }

    #[test]
    fn the_default_shape_is_the_file_itself() {
        assert_eq!(DEFAULT.source(NO_LOCAL), shaders::assign_dense());
    }

    /// Every candidate shape parses and validates with naga, as wgpu does.
    #[test]
    fn every_candidate_shape_validates() {
        for (t, local) in CANDIDATES.iter().flat_map(|t| [(*t, NO_LOCAL), (*t, 1024)]) {
            let src = t.source(local);
            let module = naga::front::wgsl::parse_str(&src)
                .unwrap_or_else(|e| panic!("{t}: {}", e.emit_to_string(&src)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{t}: {}", e.emit_to_string(&src)));
            assert!(t.threads() >= t.bp && t.threads() <= 256, "{t}");
        }
    }
}
