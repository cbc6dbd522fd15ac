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
use crate::weights::Weights;

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
pub trait RowSource: Send {
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

/// The two chunk buffers of a pass: one being read while the other is used.
pub(crate) type ChunkBuffers = [Vec<f64>; 2];

/// Calls `f(first_row, rows)` for each chunk of at most `chunk_rows` rows of `source`, in
/// order. Double-buffered: a reader thread reads the next chunk into one buffer while `f`
/// works on the other, so the disk (or a GPU's work, which `f` waits on) is not idle while
/// the other runs; memory holds two chunks.
pub(crate) fn for_each_chunk(
    source: &mut dyn RowSource,
    chunk_rows: usize,
    buffers: &mut ChunkBuffers,
    mut f: impl FnMut(u64, &[f64]) -> Result<()>,
) -> Result<()> {
    let n = source.rows();
    let dim = source.dim();
    let count_at = |first: u64| (n - first).min(chunk_rows as u64) as usize;
    let checked = |count: usize, rows: &[f64]| {
        if rows.len() == count * dim {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "the source gave {} values for {count} rows of {dim}",
                rows.len()
            )))
        }
    };
    if n <= chunk_rows as u64 {
        // One chunk: nothing to overlap.
        if n > 0 {
            let count = count_at(0);
            source.read(0, count, &mut buffers[0])?;
            checked(count, &buffers[0])?;
            f(0, &buffers[0])?;
        }
        return Ok(());
    }
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Result<(u64, Vec<f64>)>>(1);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<f64>>();
    for b in buffers.iter_mut() {
        let _ = empty_tx.send(std::mem::take(b));
    }
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut first = 0u64;
            // Ends when the pass is done, or when the consumer hangs up (an error).
            while first < n {
                let Ok(mut buffer) = empty_rx.recv() else {
                    return;
                };
                let count = count_at(first);
                let read = source.read(first, count, &mut buffer);
                let sent = full_tx.send(read.map(|()| (first, buffer)));
                if sent.is_err() {
                    return;
                }
                first += count as u64;
            }
        });
        let mut spare = Vec::new();
        let out = (|| {
            let mut first = 0u64;
            while first < n {
                let (at, rows) = full_rx
                    .recv()
                    .map_err(|_| Error::InvalidArgument("the chunk reader stopped".into()))??;
                let count = count_at(at);
                let done = checked(count, &rows).and_then(|()| f(at, &rows));
                first = at + count as u64;
                // The reader takes this buffer for the chunk after next, if there is one;
                // else it is kept for the next pass.
                if first + (chunk_rows as u64) < n {
                    let _ = empty_tx.send(rows);
                } else {
                    spare.push(rows);
                }
                done?;
            }
            Ok(())
        })();
        // Hang up first, so a reader still waiting for a buffer or a slot ends.
        drop(empty_tx);
        drop(full_rx);
        for (b, s) in buffers.iter_mut().zip(spare) {
            *b = s;
        }
        out
    })
}

/// The source's extent, one pass, merged exactly (the frame every chunk's statistics share).
pub(crate) fn extent_of(
    source: &mut dyn RowSource,
    chunk_rows: usize,
    buffer: &mut ChunkBuffers,
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
    buffer: ChunkBuffers,
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
            buffer: ChunkBuffers::default(),
        }
    }

    /// The caller's values of the initial centroids, where the caller gave them.
    pub(crate) fn set_caller_centroids(&mut self, caller: Vec<f64>) {
        self.caller = Some(caller);
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
        let caller = self.caller.as_deref();
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
                    caller,
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
    buffer: ChunkBuffers,
}

impl<'a> Framed<'a> {
    pub(crate) fn new(source: &'a mut dyn RowSource, frame: &'a Frame, chunk_rows: usize) -> Self {
        Framed {
            source,
            frame,
            chunk_rows,
            buffer: ChunkBuffers::default(),
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

    fn weights(&self) -> Option<Weights<'_>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows 0, 1, 2, … of one value each; reading the row `fail_at` fails.
    struct Counting {
        rows: u64,
        fail_at: Option<u64>,
    }

    impl RowSource for Counting {
        fn rows(&self) -> u64 {
            self.rows
        }
        fn dim(&self) -> usize {
            1
        }
        fn read(&mut self, first: u64, count: usize, out: &mut Vec<f64>) -> Result<()> {
            if self
                .fail_at
                .is_some_and(|r| (first..first + count as u64).contains(&r))
            {
                return Err(Error::InvalidArgument(format!("row {first} unreadable")));
            }
            out.clear();
            out.extend((first..first + count as u64).map(|v| v as f64));
            Ok(())
        }
    }

    /// Every chunk comes once, in order, whole; both buffers survive the pass for the next.
    #[test]
    fn chunks_arrive_in_order_and_the_buffers_are_kept() {
        for (rows, chunk) in [
            (0u64, 4usize),
            (1, 4),
            (4, 4),
            (5, 4),
            (17, 3),
            (18, 3),
            (100, 1),
        ] {
            let mut source = Counting {
                rows,
                fail_at: None,
            };
            let mut buffers = ChunkBuffers::default();
            for _ in 0..2 {
                let mut seen = Vec::new();
                for_each_chunk(&mut source, chunk, &mut buffers, |first, values| {
                    assert_eq!(values.first().copied(), Some(first as f64));
                    seen.extend_from_slice(values);
                    Ok(())
                })
                .unwrap();
                let want: Vec<f64> = (0..rows).map(|v| v as f64).collect();
                assert_eq!(seen, want, "{rows} rows in chunks of {chunk}");
                if rows > chunk as u64 {
                    assert!(
                        buffers.iter().all(|b| b.capacity() >= chunk),
                        "{rows}/{chunk}"
                    );
                }
            }
        }
    }

    /// A read that fails mid-pass fails the pass, after the chunks before it.
    #[test]
    fn a_failed_read_ends_the_pass_with_its_error() {
        let mut source = Counting {
            rows: 50,
            fail_at: Some(23),
        };
        let mut seen = 0;
        let out = for_each_chunk(&mut source, 5, &mut ChunkBuffers::default(), |_, v| {
            seen += v.len();
            Ok(())
        });
        assert!(matches!(out, Err(Error::InvalidArgument(m)) if m.contains("unreadable")));
        assert_eq!(seen, 20);
    }

    /// An error from the work on a chunk ends the pass and the reader with it.
    #[test]
    fn an_error_from_the_work_stops_the_reader() {
        let mut source = Counting {
            rows: 1_000_000,
            fail_at: None,
        };
        let mut calls = 0;
        let out = for_each_chunk(&mut source, 10, &mut ChunkBuffers::default(), |first, _| {
            calls += 1;
            if first == 20 {
                return Err(Error::InvalidArgument("stop".into()));
            }
            Ok(())
        });
        assert!(out.is_err());
        assert_eq!(calls, 3);
    }
}
