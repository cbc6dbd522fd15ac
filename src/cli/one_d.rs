//! `lloyd quantize` and `lloyd quantize-nd`: quantizers of laws.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use lloyd::{Deterministic1d, Error, FitSummary, IterationStats, Lloyd1d, LloydNd, Observer, npy};

use super::args::{Method1d, QuantizeArgs, QuantizeNdArgs};

/// `out` (a JSON object) with the keys every fitting command reports about its run, in one
/// shape.
pub fn with_summary(mut out: serde_json::Value, s: &FitSummary) -> serde_json::Value {
    let run = json!({
        "iterations": s.iterations_run,
        "converged": s.converged,
        "empty_cells_split": s.empty_cells_split,
        "device": s.device,
        "ms_per_iteration": s.ms_per_iteration(),
        "setup_ms": s.setup_seconds * 1e3,
        "history": s.history,
    });
    if let (Some(o), serde_json::Value::Object(r)) = (out.as_object_mut(), run) {
        o.extend(r);
    }
    out
}

/// A progress bar on standard error and the observer that moves it; both hidden when
/// standard error is not a terminal or with --quiet, and then no observer at all, since a
/// GPU fit with an observer reads its error back every few iterations to feed it.
pub fn progress(total: usize, quiet: bool) -> (ProgressBar, Option<Observer>) {
    if quiet || !std::io::stderr().is_terminal() {
        return (ProgressBar::hidden(), None);
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} iterations  {msg}  [{elapsed}]")
            .expect("static template"),
    );
    let b = bar.clone();
    let observer: Observer = Arc::new(move |s: &IterationStats| {
        b.inc(1);
        b.set_message(format!("mse {:.6e}", s.mse));
        Ok(())
    });
    (bar, Some(observer))
}

pub fn quantize(a: &QuantizeArgs) -> Result<(), Error> {
    if a.samples == 0 && a.input.is_none() && !matches!(a.method, Method1d::Exact) {
        return Err(Error::InvalidArgument(
            "--samples must be at least 1 (the number of samples M, or of CLVQ steps)".into(),
        ));
    }
    let (bar, observer) = progress(a.iterations, a.common.quiet);
    let mut params = Lloyd1d::new(a.n)
        .gpu_options(a.common.gpu_options()?)
        .samples(a.samples)
        .iterations(a.iterations)
        .tolerance(a.tolerance)
        .seed(a.seed)
        .device(a.common.device.clone());
    if let Some(o) = observer {
        params = params.on_iteration(o);
    }
    let (q, source, samples_used) = match (&a.input, a.method) {
        (None, Method1d::Exact) => (
            Deterministic1d::new(a.n)
                .iterations(a.iterations.max(1000))
                .fit(a.law())?,
            format!("{:?}", a.law()),
            0,
        ),
        (None, Method1d::Clvq) => (
            a.clvq()
                .steps(a.samples)
                .seed(a.seed)
                .device(a.common.device.clone())
                .fit_law(a.law())?,
            format!("{:?}", a.law()),
            a.samples,
        ),
        (Some(_), Method1d::Exact | Method1d::Clvq) => {
            return Err(Error::InvalidLaw(
                "--method exact and clvq quantize a law, not --input samples".into(),
            ));
        }
        _ => match &a.input {
            Some(path) => {
                let (shape, samples) = npy::read_f64(path)?;
                if !matches!(shape.as_slice(), [_] | [_, 1]) {
                    return Err(Error::Npy {
                        path: path.clone(),
                        reason: format!(
                            "--input takes 1-D samples, shape (n,) or (n, 1), found {shape:?}: \
                             use `lloyd quantize-nd` or `lloyd kmeans` for vectors"
                        ),
                    });
                }
                (
                    params.fit_samples(&samples)?,
                    path.display().to_string(),
                    samples.len(),
                )
            }
            None => (
                params.fit_law(a.law())?,
                format!("{:?}", a.law()),
                a.samples,
            ),
        },
    };
    bar.finish_and_clear();
    if a.common.json {
        let fields = json!({
            "law": source,
            "n": q.len(),
            "samples": samples_used,
            "seed": a.seed,
            "centroids": q.centroids,
            "probabilities": q.probabilities,
            "distortion": q.distortion,
            "mse": q.mse,
        });
        println!("{}", with_summary(fields, &q.summary));
    } else {
        println!("Optimal {}-point quantizer of {source}", q.len());
        println!("{:>5}  {:>14}  {:>12}", "i", "centroid", "probability");
        for (i, (c, p)) in q.centroids.iter().zip(&q.probabilities).enumerate() {
            println!("{:>5}  {:>14}  {:>12.8}", i + 1, fixed_or_scientific(*c), p);
        }
        println!(
            "distortion (1/2M)Σ|x-x̂|² = {:.8e}   mse = {:.8e}",
            q.distortion, q.mse
        );
        println!(
            "{} iterations on {}, {:.3} ms per iteration (median), setup {:.1} ms",
            q.summary.iterations_run,
            q.summary.device,
            q.summary.ms_per_iteration(),
            q.summary.setup_seconds * 1e3
        );
    }
    Ok(())
}

/// A centroid for the table: eight decimals where they show it to at least six significant
/// digits, else scientific notation (a law scaled by 10⁻¹⁰ would print as zeros, one scaled
/// by 10¹⁵⁰ as 150 digits).
fn fixed_or_scientific(c: f64) -> String {
    if c == 0.0 || (1e-3..1e9).contains(&c.abs()) {
        format!("{c:.8}")
    } else {
        format!("{c:.8e}")
    }
}

pub fn quantize_nd(a: &QuantizeNdArgs) -> Result<(), Error> {
    if a.svg.is_some() && a.d != 2 {
        return Err(Error::InvalidArgument(format!(
            "--svg draws the cells in the plane: it needs --d 2, not --d {}",
            a.d
        )));
    }
    let law = QuantizeArgs::parse_default_with(a.law).law();
    let q = LloydNd::new(a.n, a.d)
        .gpu_options(a.common.gpu_options()?)
        .samples(a.samples)
        .iterations(a.iterations)
        .fresh_samples(a.fresh)
        .seed(a.seed)
        .device(a.common.device.clone())
        .fit_law(law)?;
    if let Some(path) = &a.svg {
        q.save_svg(path)?;
    }
    if a.common.json {
        // The keys and shapes of the other commands: centroids as rows, `d` the dimension.
        let rows: Vec<&[f64]> = (0..a.n).map(|i| q.centroid(i)).collect();
        let fields = json!({
            "law": format!("{law:?}"),
            "n": a.n,
            "d": a.d,
            "samples": a.samples,
            "seed": a.seed,
            "centroids": rows,
            "probabilities": q.probabilities,
            "distortion": q.distortion,
            "mse": q.mse,
        });
        println!("{}", with_summary(fields, &q.summary));
    } else {
        println!(
            "Optimal {}-point quantizer of {:?} in dimension {}",
            a.n, law, a.d
        );
        for i in 0..a.n {
            let c: Vec<String> = q.centroid(i).iter().map(|v| format!("{v:>10.6}")).collect();
            println!(
                "{:>5}  {}  p = {:.6}",
                i + 1,
                c.join(" "),
                q.probabilities[i]
            );
        }
        println!(
            "distortion {:.8e}   mse {:.8e}   {} iterations on {}{}",
            q.distortion,
            q.mse,
            q.summary.iterations_run,
            q.summary.device,
            a.svg
                .as_ref()
                .map(|p| format!("; cells in {}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}
