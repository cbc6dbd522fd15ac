"""lloyd from Python beside its peers, in one run, on the same data.

    python3 benches/python_peers.py [--quick | --all | --shape N,D,K ...] [--no-extras]

K-means (n, d, k): lloyd.KMeans, sklearn.cluster.KMeans and faiss.Kmeans from the same
starting rows, a fixed number of iterations (tol 0), each timed whole from Python (best of
alternating repeats); the inertia each reaches. Then the Python layer's own cost: the wall
time of lloyd.KMeans.fit against the time the Rust fit reports for itself (set-up plus its
iterations), and lloyd.quantize against the seed's numpy randomized Lloyd (per iteration).
Peers that are not installed are skipped, saying so.
"""

from __future__ import annotations

import argparse
import time

import lloyd
import numpy as np


def timed(f, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def seed_numpy(xs, n, iterations):
    """The field's numpy randomized Lloyd (sort once, searchsorted, bincount)."""
    xs = np.sort(xs)
    c = np.quantile(xs, (np.arange(n) + 0.5) / n)
    for _ in range(iterations):
        cells = np.searchsorted((c[1:] + c[:-1]) / 2, xs)
        s = np.bincount(cells, xs, n)
        m = np.bincount(cells, minlength=n)
        c = np.where(m > 0, s / np.maximum(m, 1), c)
    return c


def kmeans_row(n, d, k, iterations, repeats):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(np.float32)
    init = X[rng.choice(n, k, replace=False)].astype(np.float64)
    cells = {}
    t, km = timed(
        lambda: lloyd.KMeans(
            k, init=init, max_iter=iterations, tol=0, device="cpu"
        ).fit(X),
        repeats,
    )
    cells["lloyd"] = (t / iterations, km.inertia_)
    try:
        from sklearn.cluster import KMeans

        t, sk = timed(
            lambda: KMeans(k, init=init, n_init=1, max_iter=iterations, tol=0).fit(X),
            repeats,
        )
        cells["sklearn"] = (t / sk.n_iter_, sk.inertia_)
    except ImportError:
        print("  scikit-learn not installed: skipped")
    try:
        import faiss

        def run_faiss():
            f = faiss.Kmeans(d, k, niter=iterations, max_points_per_centroid=n)
            f.train(X, init_centroids=init.astype(np.float32))
            return f

        t, f = timed(run_faiss, repeats)
        cells["faiss"] = (t / iterations, float(f.obj[-1]))
    except ImportError:
        print("  faiss not installed: skipped")
    line = "  ".join(
        f"{name} {1e3 * s:8.2f} ms/it inertia {e:.6g}" for name, (s, e) in cells.items()
    )
    print(f"n={n:>8} d={d:>4} k={k:>5}  {line}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="small shapes, one repeat")
    p.add_argument(
        "--all",
        action="store_true",
        help="the full grid: n 1e5, 1e6 x d 32, 128 x k 256, 1024",
    )
    p.add_argument("--shape", action="append", default=[], help="N,D,K (repeatable)")
    p.add_argument(
        "--no-extras",
        action="store_true",
        help="K-means rows only (no overhead, no 1-D)",
    )
    a = p.parse_args()
    if a.shape:
        shapes = [tuple(int(v) for v in s.split(",")) for s in a.shape]
    elif a.all:
        shapes = [
            (n, d, k)
            for n in (100_000, 1_000_000)
            for d in (32, 128)
            for k in (256, 1024)
        ]
    elif a.quick:
        shapes = [(100_000, 32, 256)]
    else:
        shapes = [(100_000, 32, 256), (100_000, 128, 1024), (1_000_000, 32, 256)]
    repeats = 1 if a.quick else 3
    print("K-means, CPU, per iteration (whole Python call / iterations), same start:")
    for n, d, k in shapes:
        kmeans_row(n, d, k, 10, repeats)
    if a.no_extras:
        return
    # The Python layer's cost over the Rust fit it wraps.
    n, d, k = 100_000, 32, 256
    X = np.random.default_rng(1).standard_normal((n, d)).astype(np.float32)
    init = X[:k].astype(np.float64)
    walls, overheads = [], []
    for _ in range(5):
        t = time.perf_counter()
        km = lloyd.KMeans(k, init=init, max_iter=10, tol=0, device="cpu").fit(X)
        wall = time.perf_counter() - t
        inside = km.fit_seconds_
        walls.append(wall)
        overheads.append((wall - inside) / wall)
    print(
        f"Python over Rust at n={n}, d={d}, k={k}, 10 iterations: wall {np.median(walls):.3f} s, "
        f"the Python layer adds {100 * np.median(overheads):.2f} % to the Rust call "
        "(validation and conversion)"
    )
    # lloyd.quantize against the seed's numpy code, per iteration.
    for N, M in [(100, 1_000_000), (500, 1_000_000)]:
        xs = np.random.default_rng(2).standard_normal(M)
        t_np, _ = timed(lambda xs=xs, N=N: seed_numpy(xs, N, 20), 1)
        t_l, q = timed(
            lambda xs=xs, N=N: lloyd.quantize(xs, n=N, iterations=100, device="cpu"), 1
        )
        print(
            f"1-D N={N} M={M}: numpy {1e3 * t_np / 20:.2f} ms/it, lloyd.quantize "
            f"{1e3 * t_l / max(q.n_iter, 1):.3f} ms/it (whole call, {q.n_iter} iterations)"
        )


if __name__ == "__main__":
    main()
