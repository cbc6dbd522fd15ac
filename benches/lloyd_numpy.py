#!/usr/bin/env python3
"""The field's numpy code for one randomized-Lloyd iteration in 1-D, and the best numpy
formulation, timed side by side; optionally faiss-cpu's K-means iteration.

Usage:
  python3 benches/lloyd_numpy.py table [--n 10,100,500] [--m 200000,1000000] [--repeat 5]
  python3 benches/lloyd_numpy.py quantize --n 500 --samples 1000000 --iterations 10 --seed 0
      (prints the same JSON fields as `lloyd quantize --json`, for `lloyd-bench --compare`)
  python3 benches/lloyd_numpy.py faiss [--n 100000 --d 32 --k 256 --iterations 20]
"""

import argparse
import json
import sys
import time

import numpy as np


def field_iteration(x, c):
    """The usual numpy code of the field: an N x M distance matrix, O(N M) per iteration."""
    labels = np.argmin(np.abs(x[None, :] - c[:, None]), axis=0)
    counts = np.bincount(labels, minlength=c.size)
    sums = np.bincount(labels, weights=x, minlength=c.size)
    err = np.sum((x - c[labels]) ** 2)
    new = np.where(counts > 0, sums / np.maximum(counts, 1), c)
    return np.sort(new), counts, err


def prepare_sorted(x):
    s = np.sort(x)
    p1 = np.concatenate(([0.0], np.cumsum(s)))
    p2 = np.concatenate(([0.0], np.cumsum(s * s)))
    return s, p1, p2


def best_iteration(s, p1, p2, c):
    """Sort once, prefix sums, searchsorted of the N-1 midpoints: O(N log M) per iteration."""
    mids = 0.5 * (c[1:] + c[:-1])
    b = np.concatenate(([0], np.searchsorted(s, mids, side="right"), [s.size]))
    counts = np.diff(b)
    sums = p1[b[1:]] - p1[b[:-1]]
    sq = p2[b[1:]] - p2[b[:-1]]
    err = np.sum(sq - 2 * c * sums + counts * c * c)
    new = np.where(counts > 0, sums / np.maximum(counts, 1), c)
    return new, counts, err


def quantile_init(s, n):
    m = s.size
    return s[np.minimum((2 * np.arange(n) + 1) * m // (2 * n), m - 1)].copy()


def time_per_iteration(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def fit_median_ms(step, c, iterations):
    """Median time of iterations 2.. of a fit from `c`, as a user's fit runs them (repeating
    one iteration at fixed centroids would time a warm cache the fit never has)."""
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        c = step(c)
        times.append(time.perf_counter() - t)
    return float(np.median(times[1:])) * 1e3


def table(args):
    rows = []
    for m in args.m:
        x = np.random.default_rng(0).standard_normal(m)
        s, p1, p2 = prepare_sorted(x)
        for n in args.n:
            c = quantile_init(s, n)
            field_ms = time_per_iteration(
                lambda x=x, c=c: field_iteration(x, c), max(1, args.repeat // 2)
            )
            best_ms = fit_median_ms(
                lambda c, s=s, p1=p1, p2=p2: best_iteration(s, p1, p2, c)[0], c, 100
            )
            rows.append(
                {"n": n, "m": m, "numpy_field_ms": field_ms, "numpy_best_ms": best_ms}
            )
            print(json.dumps(rows[-1]), flush=True)


def quantize(args):
    x = np.random.default_rng(args.seed).standard_normal(args.samples)
    t0 = time.perf_counter()
    s, p1, p2 = prepare_sorted(x)
    c = quantile_init(s, args.n)
    setup_ms = (time.perf_counter() - t0) * 1e3
    step = (
        (lambda c: best_iteration(s, p1, p2, c))
        if args.method == "best"
        else (lambda c: field_iteration(x, c))
    )
    times = []
    for _ in range(args.iterations):
        t = time.perf_counter()
        c, counts, err = step(c)
        times.append((time.perf_counter() - t) * 1e3)
    c, counts, err = step(c)
    mse = float(err) / args.samples
    print(
        json.dumps(
            {
                "centroids": c.tolist(),
                "probabilities": (counts / args.samples).tolist(),
                "distortion": mse / 2,
                "mse": mse,
                "iterations": args.iterations,
                "device": f"numpy-{args.method}",
                "ms_per_iteration": float(np.median(times[1:] or times)),
                "setup_ms": setup_ms,
            }
        )
    )


def faiss_kmeans(args):
    try:
        import faiss
    except ImportError:
        print(
            json.dumps(
                {"skipped": "faiss-cpu is not installed (pip install faiss-cpu)"}
            )
        )
        return
    x = np.random.default_rng(1).standard_normal((args.n, args.d)).astype(np.float32)
    km = faiss.Kmeans(
        args.d,
        args.k,
        niter=args.iterations,
        seed=0,
        verbose=False,
        max_points_per_centroid=10**9,
    )
    km.train(x)
    cumulative = [s["time"] for s in km.iteration_stats]
    per = np.diff([0.0] + cumulative) * 1e3
    print(
        json.dumps(
            {
                "faiss_version": faiss.__version__,
                "n": args.n,
                "d": args.d,
                "k": args.k,
                "faiss_ms_per_iteration": float(np.median(per)),
            }
        )
    )


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table")
    t.add_argument(
        "--n", type=lambda v: [int(a) for a in v.split(",")], default=[10, 100, 500]
    )
    t.add_argument(
        "--m", type=lambda v: [int(a) for a in v.split(",")], default=[200000, 1000000]
    )
    t.add_argument("--repeat", type=int, default=5)
    q = sub.add_parser("quantize")
    q.add_argument("--n", type=int, default=10)
    q.add_argument("--samples", type=int, default=1000000)
    q.add_argument("--iterations", type=int, default=10)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--method", choices=["field", "best"], default="field")
    q.add_argument("--law", default="normal")
    q.add_argument("--device", default="cpu")
    q.add_argument("--json", action="store_true")
    f = sub.add_parser("faiss")
    f.add_argument("--n", type=int, default=100000)
    f.add_argument("--d", type=int, default=32)
    f.add_argument("--k", type=int, default=256)
    f.add_argument("--iterations", type=int, default=20)
    args = ap.parse_args()
    {"table": table, "quantize": quantize, "faiss": faiss_kmeans}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
