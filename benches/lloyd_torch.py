#!/usr/bin/env python3
"""The field's PyTorch code for one Lloyd iteration, timed on whatever device torch has
(CUDA on a lent GPU machine, else the CPU), for a side-by-side with lloyd's GPU backend.

Usage:
  python3 benches/lloyd_torch.py oned [--n 10,100,500] [--m 1000000] [--repeat 5]
      1-D randomized Lloyd, the field's formulation: an N x M distance matrix per iteration
  python3 benches/lloyd_torch.py kmeans [--n 1000000] [--d 128] [--k 1024] [--repeat 5]
      K-means: distances by matrix product (x.c^T), argmin, index_add_ for the cell sums
Prints one line per case: device, case, milliseconds per iteration (median).
"""
import argparse
import statistics
import time

import torch


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev, repeat):
    fn()  # warm-up: kernels loaded, caches allocated
    sync(dev)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync(dev)
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def field_1d(x, c):
    """The usual code: |x - c| for every pair, argmin, bincount, sort."""
    labels = torch.argmin((x[None, :] - c[:, None]).abs(), dim=0)
    counts = torch.bincount(labels, minlength=c.numel())
    sums = torch.bincount(labels, weights=x, minlength=c.numel())
    err = torch.sum((x - c[labels]) ** 2)
    new = torch.where(counts > 0, sums / counts.clamp(min=1), c)
    return torch.sort(new).values, counts, err


def kmeans_step(x, c, chunk=1 << 17):
    """Distances as ||c||^2 - 2 x.c (the ||x||^2 term does not change the argmin), in chunks
    of points so the n x k matrix never has to fit at once; then per-cell sums and counts."""
    k, d = c.shape
    norms = (c * c).sum(dim=1)
    sums = torch.zeros((k, d), dtype=torch.float64, device=x.device)
    counts = torch.zeros(k, dtype=torch.int64, device=x.device)
    for s in range(0, x.shape[0], chunk):
        xb = x[s : s + chunk]
        labels = torch.argmin(norms[None, :] - 2.0 * (xb @ c.T), dim=1)
        sums.index_add_(0, labels, xb.double())
        counts += torch.bincount(labels, minlength=k)
    new = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], c.double())
    return new.float(), counts


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("oned")
    o.add_argument("--n", type=lambda v: [int(a) for a in v.split(",")], default=[10, 100, 500])
    o.add_argument("--m", type=int, default=1_000_000)
    o.add_argument("--repeat", type=int, default=5)
    km = sub.add_parser("kmeans")
    km.add_argument("--n", type=int, default=1_000_000)
    km.add_argument("--d", type=int, default=128)
    km.add_argument("--k", type=int, default=1024)
    km.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    g = torch.Generator(device="cpu").manual_seed(0)
    if a.cmd == "oned":
        x = torch.randn(a.m, generator=g, dtype=torch.float32).to(dev)
        for n in a.n:
            c = torch.sort(x[:n]).values
            ms = timed(lambda: field_1d(x, c), dev, a.repeat)
            print(f"torch {name} | 1-D field code N={n} M={a.m} | {ms:.3f} ms/iter")
    else:
        x = torch.randn((a.n, a.d), generator=g, dtype=torch.float32).to(dev)
        c = x[: a.k].clone()
        ms = timed(lambda: kmeans_step(x, c), dev, a.repeat)
        gflops = 2.0 * a.n * a.k * a.d / (ms * 1e-3) / 1e9
        print(
            f"torch {name} | k-means n={a.n} d={a.d} k={a.k} | {ms:.3f} ms/iter"
            f" | {gflops:.0f} GFLOP/s"
        )


if __name__ == "__main__":
    main()
