//! Lloyd's method over data read in chunks, for data larger than memory: every iteration
//! reads the source once, chunk by chunk, and merges each chunk's [`LloydStats`]; memory
//! holds the centroids, the statistics and one chunk. Statistics merge exactly, so the fit
//! equals, to the bit, the in-memory CPU fit of the same data from the same start.

use crate::backend::{Backend, CellStats, Update};
use crate::codebook::Encoder;
use crate::error::{Error, Result};
use crate::frame::{Extent, Frame};
use crate::init_parallel::{ChunkVisitor, Passes};
use crate::real::Precision;
use crate::stats::LloydStats;

/// Rows of a matrix that can be read a range at a time (a `.npy` file on disk, say), for
/// [`crate::KMeans::fit_source`].
///
/// ```
/// use lloyd::RowSource;
/// /// A matrix in memory, as a source.
/// struct Rows(Vec<f64>, usize);
/// impl RowSource for Rows {
///     fn rows(&self) -> u64 {
///         (self.0.len() / self.1) as u64
///     }
///     fn dim(&self) -> usize {
///         self.1
///     }
///     fn read(&mut self, first: u64, count: usize, out: &mut Vec<f64>) -> lloyd::Result<()> {
///         let a = first as usize * self.1;
///         out.clear();
///         out.extend_from_slice(&self.0[a..a + count * self.1]);
///         Ok(())
///     }
/// }
/// let mut rows = Rows(vec![0.0, 0.1, 0.2, 5.0, 5.1, 5.3], 1);
/// let fit = lloyd::KMeans::new(2).device(lloyd::Device::Cpu).fit_source(&mut rows, 4)?;
/// assert_eq!(fit.counts, vec![3, 3]);
/// # Ok::<(), lloyd::Error>(())
/// ```
pub trait RowSource {
    /// Number of rows.
    fn rows(&self) -> u64;
    /// Values per row.
    fn dim(&self) -> usize;
    /// Reads rows `first..first + count` into `out` (row-major, f64), replacing what it
    /// held.
    fn read(&mut self, first: u64, count: usize, out: &mut Vec<f64>) -> Result<()>;
    /// The precision the values are stored in (the centroids come back in it).
    fn precision(&self) -> Precision {
        Precision::F64
    }
}

/// Calls `f(first_row, rows)` for each chunk of at most `chunk_rows` rows of `source`, in
/// order, with one buffer for all of them.
pub(crate) fn for_each_chunk(
    source: &mut dyn RowSource,
    chunk_rows: usize,
    buffer: &mut Vec<f64>,
    mut f: impl FnMut(u64, &[f64]) -> Result<()>,
) -> Result<()> {
    let n = source.rows();
    let dim = source.dim();
    let mut first = 0u64;
    while first < n {
        let count = (n - first).min(chunk_rows as u64) as usize;
        source.read(first, count, buffer)?;
        if buffer.len() != count * dim {
            return Err(Error::InvalidArgument(format!(
                "the source gave {} values for {count} rows of {dim}",
                buffer.len()
            )));
        }
        f(first, buffer)?;
        first += count as u64;
    }
    Ok(())
}

/// The source's extent, one pass, merged exactly (the frame every chunk's statistics share).
pub(crate) fn extent_of(
    source: &mut dyn RowSource,
    chunk_rows: usize,
    buffer: &mut Vec<f64>,
) -> Result<Extent> {
    let dim = source.dim();
    let mut extent: Option<Extent> = None;
    for_each_chunk(source, chunk_rows, buffer, |_, rows| {
        let e = Extent::of(rows, dim)?;
        match &mut extent {
            Some(x) => x.merge(&e),
            None => {
                extent = Some(e);
                Ok(())
            }
        }
    })?;
    extent.ok_or(Error::EmptyData)
}

/// Lloyd's steps over a source read in chunks, assignments on `encoder`'s device.
pub(crate) struct StreamedLloyd<'a> {
    source: &'a mut dyn RowSource,
    chunk_rows: usize,
    encoder: &'a mut Encoder,
    frame: Frame,
    /// The centroids in frame units, and in the caller's once an update produced them.
    centroids: Vec<f64>,
    caller: Option<Vec<f64>>,
    stats: Option<LloydStats>,
    buffer: Vec<f64>,
}

impl<'a> StreamedLloyd<'a> {
    /// `init` in frame units.
    pub(crate) fn new(
        source: &'a mut dyn RowSource,
        chunk_rows: usize,
        encoder: &'a mut Encoder,
        frame: Frame,
        init: Vec<f64>,
    ) -> Self {
        StreamedLloyd {
            source,
            chunk_rows,
            encoder,
            frame,
            centroids: init,
            caller: None,
            stats: None,
            buffer: Vec::new(),
        }
    }

    fn stats(&self) -> Result<&LloydStats> {
        self.stats
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("no statistics: assign first".into()))
    }
}

impl Backend for StreamedLloyd<'_> {
    fn device_name(&self) -> String {
        self.encoder.device_name()
    }

    fn assign_reduce(&mut self) -> Result<()> {
        let mut all: Option<LloydStats> = None;
        let (frame, centroids, encoder) = (&self.frame, &self.centroids, &mut *self.encoder);
        for_each_chunk(
            self.source,
            self.chunk_rows,
            &mut self.buffer,
            |first, rows| {
                let s = LloydStats::compute_in_frame(
                    encoder,
                    frame,
                    rows,
                    None,
                    centroids.clone(),
                    first,
                )?;
                match &mut all {
                    Some(a) => a.merge(&s),
                    None => {
                        all = Some(s);
                        Ok(())
                    }
                }
            },
        )?;
        self.stats = all;
        Ok(())
    }

    fn sse(&mut self) -> Result<f64> {
        Ok(self.stats()?.frame_error())
    }

    fn update(&mut self) -> Result<Update> {
        let u = self.stats()?.update()?;
        self.centroids = self.frame.to_device_f64(&u.centroids);
        self.caller = Some(u.centroids);
        Ok(Update {
            splits: u.empty_cells_split,
            moved: u.moved,
        })
    }

    fn centroids(&mut self) -> Result<Vec<f64>> {
        Ok(self.centroids.clone())
    }

    fn caller_centroids(&mut self, frame: &Frame) -> Result<Vec<f64>> {
        Ok(match &self.caller {
            Some(c) if *frame == self.frame => c.clone(),
            _ => frame.to_caller(&self.centroids),
        })
    }

    fn set_centroids(&mut self, centroids: &[f64]) -> Result<()> {
        self.centroids = centroids.to_vec();
        self.caller = None;
        Ok(())
    }

    fn cell_stats(&mut self) -> Result<CellStats> {
        Ok(self.stats()?.frame_cells())
    }
}

/// A source seen in a frame, as the starts read it: chunk by chunk, or a row at a time.
pub(crate) struct Framed<'a> {
    source: &'a mut dyn RowSource,
    frame: &'a Frame,
    chunk_rows: usize,
    buffer: Vec<f64>,
}

impl<'a> Framed<'a> {
    pub(crate) fn new(source: &'a mut dyn RowSource, frame: &'a Frame, chunk_rows: usize) -> Self {
        Framed {
            source,
            frame,
            chunk_rows,
            buffer: Vec::new(),
        }
    }
}

impl Passes for Framed<'_> {
    fn rows(&self) -> usize {
        self.source.rows() as usize
    }

    fn dim(&self) -> usize {
        self.source.dim()
    }

    fn pass(&mut self, f: &mut ChunkVisitor<'_>) -> Result<()> {
        let frame = self.frame;
        for_each_chunk(
            self.source,
            self.chunk_rows,
            &mut self.buffer,
            |first, rows| f(first as usize, &frame.to_device_f32(rows), None),
        )
    }

    fn row(&mut self, i: usize) -> Result<Vec<f32>> {
        let mut row = Vec::new();
        self.source.read(i as u64, 1, &mut row)?;
        Ok(self.frame.to_device_f32(&row))
    }

    fn weights(&self) -> Option<&[f32]> {
        None
    }
}
