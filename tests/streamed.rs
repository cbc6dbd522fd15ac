//! K-means over data read in chunks (`KMeans::fit_source`): equal to the in-memory fit to
//! the bit on the CPU, whatever the chunk size, in 1-D and d-D, from random rows or given
//! centroids, with restarts; close to it on a GPU; bad requests refused.

mod common;

use lloyd::{Device, Error, Init, KMeans, RowSource};

/// A matrix in memory, read as a source, counting the rows it hands out.
struct Rows {
    data: Vec<f64>,
    dim: usize,
    served: u64,
}

impl RowSource for Rows {
    fn rows(&self) -> u64 {
        (self.data.len() / self.dim) as u64
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn read(&mut self, first: u64, count: usize, out: &mut Vec<f64>) -> lloyd::Result<()> {
        let a = first as usize * self.dim;
        out.clear();
        out.extend_from_slice(&self.data[a..a + count * self.dim]);
        self.served += count as u64;
        Ok(())
    }
}

fn shifted_blobs(n: usize, dim: usize, seed: u64) -> Vec<f64> {
    common::blobs(n, dim, 7, seed)
        .iter()
        .map(|&v| f64::from(v) * 0.5 + 1e4)
        .collect()
}

#[test]
fn a_streamed_fit_equals_the_in_memory_fit_to_the_bit() {
    for (dim, n) in [(5usize, 3001usize), (1, 2500)] {
        let data = shifted_blobs(n, dim, 9);
        for init in [
            Init::RandomPoints,
            Init::kmeans_parallel(),
            Init::Centroids(data[dim * 100..dim * 109].to_vec()),
        ] {
            let params = KMeans::new(9)
                .iterations(20)
                .tolerance(1e-7)
                .restarts(2)
                .init(init)
                .device(Device::Cpu);
            let whole = params.fit(&data, dim).unwrap();
            for chunk_rows in [1, 7, 1000, n] {
                let mut rows = Rows {
                    data: data.clone(),
                    dim,
                    served: 0,
                };
                let fit = params.fit_source(&mut rows, chunk_rows).unwrap();
                let what = format!("d {dim}, chunks of {chunk_rows}");
                assert_eq!(
                    fit.codebook.centroids(),
                    whole.codebook.centroids(),
                    "{what}"
                );
                assert_eq!(fit.counts, whole.counts, "{what}");
                assert_eq!(fit.inertia, whole.inertia, "{what}");
                assert_eq!(
                    fit.summary.iterations_run, whole.summary.iterations_run,
                    "{what}"
                );
                assert!(fit.labels.is_empty());
                // One pass for the frame, one an iteration and one to measure the result
                // (per restart), plus the starts (k-means‖: 11 passes and its rows).
                let passes = rows.served / n as u64;
                assert!(
                    (3..=1 + 2 * (11 + 22)).contains(&passes),
                    "{what}: {passes} passes"
                );
            }
        }
    }
}

#[test]
fn on_a_gpu_the_streamed_fit_agrees_with_the_cpu() {
    let Some(gpu) = common::gpu::gpu() else {
        return;
    };
    let (n, dim) = (20_001, 6);
    let data = shifted_blobs(n, dim, 2);
    let params = KMeans::new(7)
        .iterations(15)
        .init(Init::Centroids(data[..7 * dim].to_vec()));
    let cpu = params
        .clone()
        .device(Device::Cpu)
        .fit_source(
            &mut Rows {
                data: data.clone(),
                dim,
                served: 0,
            },
            4096,
        )
        .unwrap();
    let g = params
        .device(gpu)
        .fit_source(
            &mut Rows {
                data,
                dim,
                served: 0,
            },
            4096,
        )
        .unwrap();
    assert_ne!(g.summary.device, "cpu");
    assert!(
        ((g.mse - cpu.mse) / cpu.mse).abs() < 1e-5,
        "{} vs {}",
        g.mse,
        cpu.mse
    );
    for (a, b) in g.codebook.centroids().iter().zip(cpu.codebook.centroids()) {
        assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn bad_streamed_requests_are_refused() {
    let mut rows = Rows {
        data: shifted_blobs(50, 2, 1),
        dim: 2,
        served: 0,
    };
    let p = KMeans::new(3).device(Device::Cpu);
    assert!(matches!(
        p.fit_source(&mut rows, 0),
        Err(Error::ZeroChunkRows)
    ));
    assert!(matches!(
        p.clone()
            .init(Init::KMeansPlusPlus)
            .fit_source(&mut rows, 10),
        Err(Error::Unsupported(_))
    ));
    assert!(
        KMeans::new(51)
            .device(Device::Cpu)
            .fit_source(&mut rows, 10)
            .is_err()
    );
    rows.data[33] = f64::NAN;
    assert!(p.fit_source(&mut rows, 10).is_err());
}

#[test]
fn a_streamed_spherical_fit_equals_the_in_memory_one() {
    let (n, dim) = (2000, 4);
    let data = shifted_blobs(n, dim, 6);
    let params = KMeans::new(6)
        .spherical(true)
        .init(Init::kmeans_parallel())
        .device(Device::Cpu);
    let whole = params.fit(&data, dim).unwrap();
    let mut rows = Rows {
        data,
        dim,
        served: 0,
    };
    let fit = params.fit_source(&mut rows, 333).unwrap();
    assert_eq!(fit.codebook.centroids(), whole.codebook.centroids());
    assert_eq!(fit.inertia, whole.inertia);
}
