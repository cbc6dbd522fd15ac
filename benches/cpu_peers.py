"""Issue #15's table: each CPU case of lloyd against its peer, in alternating pairs, with
the medians and their ratio (peer / lloyd: above 1 is lloyd faster).

    python3 benches/cpu_peers.py [--repeats R] [--only kmeans,1d,pq,seeding]

Rows:
- K-means per iteration (the median of iterations 2.. of a fit from the same rows) and the
  whole fit, at the issue's four shapes: lloyd.Kmeans.train against faiss.Kmeans.train
  (both return the centroids, with no labels); at n = 10⁶, d = 16, lloyd.KMeans.fit
  against scikit-learn's KMeans.fit, the issue's peer there (both end with the labels of
  the final centroids), timed whole over its iterations;
- 1-D randomized Lloyd (N = 100, 500; M = 10⁶): the median iteration of a 100-iteration fit
  from the quantiles, `lloyd quantize --json` (target/release/lloyd; run `cargo build
  --release` first) against numpy's best formulation (benches/lloyd_numpy.py);
- PQ (d = 128, m = 16, 8 bits): training (25 iterations in every sub-space over the same
  50 000 rows), encoding and decoding rates (decoding also into a buffer the caller reuses),
  lloyd.ProductQuantizer against
  faiss.ProductQuantizer, trained alike;
- k-means++ seeding (n = 10⁵, d = 32, k = 1024, greedy with 2 + ⌊ln k⌋ candidates): lloyd's
  set-up before its first iteration against sklearn.cluster.kmeans_plusplus.
Peers that are not installed are skipped, saying so.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

import lloyd
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches"))
import lloyd_numpy

KMEANS_SHAPES = [
    (100_000, 32, 256, 10),
    (200_000, 128, 1024, 3),
    (1_000_000, 16, 64, 10),
    (50_000, 768, 256, 5),
]


def alternate(cases, repeats):
    """Runs each case in turn, `repeats` rounds; each case returns a dict of figures. The
    median of each figure per case. Each timed run follows an untimed run of the same case:
    the peers' worker threads (OpenMP's, OpenBLAS's) spin for a while after each call and
    would take cores from whatever ran next, and a resting process finds its freed memory
    slow to fault in again on this VM."""
    runs = {name: [] for name in cases}
    for _ in range(repeats):
        for name, run in cases.items():
            run()
            runs[name].append(run())
    return {
        name: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        for name, rs in runs.items()
        if rs
    }


def row(label, figures, lloyd_key, peer, unit, scale=1.0, higher_is_better=False):
    a, b = figures["lloyd"][lloyd_key], figures[peer][lloyd_key]
    ratio = (a / b) if higher_is_better else (b / a)
    print(
        f"| {label} | {a * scale:.4g} {unit} | {peer} {b * scale:.4g} {unit} | {ratio:.2f} |",
        flush=True,
    )


def kmeans_rows(repeats):
    for n, d, k, iters in KMEANS_SHAPES:
        kmeans_row(n, d, k, iters, repeats)


def kmeans_row(n, d, k, iters, repeats):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d)).astype(np.float32)
    init = x[rng.choice(n, k, replace=False)].copy()

    def run_lloyd():
        # Equal work: against faiss, whose train returns centroids, lloyd's faiss-like train
        # (no pass labelling the final centroids); against scikit-learn, whose fit ends
        # with that pass, the estimator.
        t = time.perf_counter()
        if d == 16:
            km = lloyd.KMeans(
                k, init=init.astype(np.float64), max_iter=iters, tol=0, device="cpu"
            ).fit(x)
            history = km.history_
        else:
            km = lloyd.Kmeans(d, k, niter=iters, gpu=False)
            km.train(x, init_centroids=init)
            history = km.iteration_stats
        whole = time.perf_counter() - t
        per = statistics.median(h["seconds"] for h in history[1:])
        return {"iteration": per, "whole": whole}

    cases = {"lloyd": run_lloyd}
    peer = "faiss"
    if d == 16:
        from sklearn.cluster import KMeans

        peer = "sklearn"

        def run_peer():
            t = time.perf_counter()
            km = KMeans(k, init=init, n_init=1, max_iter=iters, tol=0).fit(x)
            whole = time.perf_counter() - t
            return {"iteration": whole / km.n_iter_, "whole": whole}
    else:
        try:
            import faiss
        except ImportError:
            print(f"| K-means {n}×{d}, k={k} | faiss-cpu not installed |")
            return

        def run_peer():
            t = time.perf_counter()
            km = faiss.Kmeans(d, k, niter=iters, max_points_per_centroid=10**9, seed=0)
            km.train(x, init_centroids=init)
            whole = time.perf_counter() - t
            times = np.diff([0.0] + [s["time"] for s in km.iteration_stats])
            return {"iteration": float(np.median(times[1:])), "whole": whole}

    cases[peer] = run_peer
    figures = alternate(cases, repeats)
    row(
        f"K-means n={n}, d={d}, k={k}, per iteration",
        figures,
        "iteration",
        peer,
        "ms",
        1e3,
    )
    row(
        f"K-means n={n}, d={d}, k={k}, {iters}-iteration fit",
        figures,
        "whole",
        peer,
        "s",
    )


def one_d_rows(repeats):
    for n in (100, 500):
        one_d_row(n, 1_000_000, repeats)


def one_d_row(n, m, repeats):
    binary = ROOT / "target" / "release" / "lloyd"

    def run_lloyd():
        out = subprocess.run(
            [
                str(binary),
                "quantize",
                "--n",
                str(n),
                "--samples",
                str(m),
                "--iterations",
                "100",
            ]
            + ["--device", "cpu", "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return {"iteration": json.loads(out)["ms_per_iteration"] / 1e3}

    x = np.random.default_rng(0).standard_normal(m)
    s, p1, p2 = lloyd_numpy.prepare_sorted(x)

    def run_numpy():
        c = lloyd_numpy.quantile_init(s, n)
        per = lloyd_numpy.fit_median_ms(
            lambda c: lloyd_numpy.best_iteration(s, p1, p2, c)[0], c, 100
        )
        return {"iteration": per / 1e3}

    figures = alternate({"lloyd": run_lloyd, "numpy": run_numpy}, repeats)
    row(
        f"1-D N={n}, M=10⁶, per iteration of a 100-iteration fit",
        figures,
        "iteration",
        "numpy",
        "µs",
        1e6,
    )


def pq_rows(repeats):
    try:
        import faiss
    except ImportError:
        print("| PQ | faiss-cpu not installed |")
        return
    d, m, nbits, n = 128, 16, 8, 200_000
    x = np.random.default_rng(1).standard_normal((n, d)).astype(np.float32)
    train = x[:50_000]
    ours = lloyd.ProductQuantizer(d, m, nbits)
    ours.train(train)
    theirs = faiss.ProductQuantizer(d, m, nbits)
    theirs.train(train)
    codes_ours, codes_theirs = ours.compute_codes(x), theirs.compute_codes(x)
    buf_ours, buf_theirs = np.zeros_like(x), np.zeros_like(x)

    def train_seconds(pq):
        t = time.perf_counter()
        pq.train(train)
        return {"seconds": time.perf_counter() - t}

    # Equal work: both run 25 iterations in each of the 16 sub-spaces over the same 50 000
    # rows (faiss samples none away below 256 rows a centroid) from random rows.
    figures = alternate(
        {
            "lloyd": lambda: train_seconds(
                lloyd.ProductQuantizer(d, m, nbits, niter=25)
            ),
            "faiss": lambda: train_seconds(faiss.ProductQuantizer(d, m, nbits)),
        },
        repeats,
    )
    row(
        f"PQ train d={d}, m={m}, {nbits} bits, n={train.shape[0]}, 25 iterations",
        figures,
        "seconds",
        "faiss",
        "s",
    )

    def rate(f):
        t = time.perf_counter()
        f()
        return n / (time.perf_counter() - t)

    for what, lloyd_run, faiss_run in [
        ("encode", lambda: ours.compute_codes(x), lambda: theirs.compute_codes(x)),
        (
            "decode",
            lambda: ours.decode(codes_ours),
            lambda: theirs.decode(codes_theirs),
        ),
        # Into a buffer the caller reuses (faiss's C++ decode through its raw binding): the
        # decoding alone, without the first-touch page faults of a fresh 100 MB output.
        (
            "decode into a reused buffer",
            lambda: ours.decode(codes_ours, out=buf_ours),
            lambda: theirs.decode_c(
                faiss.swig_ptr(codes_theirs), faiss.swig_ptr(buf_theirs), n
            ),
        ),
    ]:
        figures = alternate(
            {
                "lloyd": lambda run=lloyd_run: {"rate": rate(run)},
                "faiss": lambda run=faiss_run: {"rate": rate(run)},
            },
            repeats,
        )
        row(
            f"PQ {what} d={d}, m={m}, {nbits} bits",
            figures,
            "rate",
            "faiss",
            "M vectors/s",
            1e-6,
            True,
        )


def seeding_rows(repeats):
    from sklearn.cluster import kmeans_plusplus

    n, d, k = 100_000, 32, 1024
    x = np.random.default_rng(2).standard_normal((n, d)).astype(np.float32)

    def run_lloyd():
        km = lloyd.KMeans(
            k, init="k-means++", max_iter=1, tol=0, device="cpu", random_state=0
        ).fit(x)
        return {"seconds": km.fit_seconds_ - km.history_[0]["seconds"]}

    def run_sklearn():
        t = time.perf_counter()
        kmeans_plusplus(x, k, random_state=0)
        return {"seconds": time.perf_counter() - t}

    figures = alternate({"lloyd": run_lloyd, "sklearn": run_sklearn}, repeats)
    row(
        f"k-means++ seeding n={n}, d={d}, k={k} (greedy)",
        figures,
        "seconds",
        "sklearn",
        "s",
    )


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", default="kmeans,1d,pq,seeding")
    args = p.parse_args()
    print("| case | lloyd | peer | peer / lloyd |\n| --- | --- | --- | --- |")
    rows = {
        "kmeans": kmeans_rows,
        "1d": one_d_rows,
        "pq": pq_rows,
        "seeding": seeding_rows,
    }
    for name in args.only.split(","):
        rows[name](args.repeats)


if __name__ == "__main__":
    main()
