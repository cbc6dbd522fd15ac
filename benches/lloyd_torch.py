#!/usr/bin/env python3
"""The field's PyTorch code for one Lloyd iteration, timed on whatever device torch has
(CUDA on a lent GPU machine, else the CPU), for a side-by-side with lloyd's GPU backend.

Usage:
  python3 benches/lloyd_torch.py oned [--n 10,20,50,100,200,500] [--m 200000,500000,1000000]
      1-D randomized Lloyd, the field's formulation: an N x M distance matrix per iteration
  python3 benches/lloyd_torch.py kmeans [--n 1000000] [--d 32,128] [--k 256,1024]
                                        [--precision fp32,tf32,fp16,cdist]
      K-means as users write it: distances by matrix product (||c||^2 - 2 x.c^T), argmin,
      index_add_ for the cell sums; `fp32` with TF32 off, `tf32` with it on, `fp16` with
      the points and centroids in half precision, `cdist` through torch.cdist in fp32.
Prints one line per case (device | case | ms per iteration, median of CUDA-event timings)
and, with --csv FILE, appends the same rows as CSV.
"""

import argparse
import csv
import os
import statistics
import time

import torch


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev, repeat, warmup=3):
    """Median milliseconds of `fn`, with CUDA events on a GPU, else a host clock."""
    for _ in range(
        warmup
    ):  # kernels loaded, caches allocated, cuBLAS heuristics chosen
        fn()
    sync(dev)
    times = []
    for _ in range(repeat):
        if dev.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - t))
    return statistics.median(times)


def field_1d(x, c):
    """The seed's code: |x - c| for every pair, argmin, bincount, sort."""
    labels = torch.argmin((x[None, :] - c[:, None]).abs(), dim=0)
    counts = torch.bincount(labels, minlength=c.numel())
    sums = torch.bincount(labels, weights=x, minlength=c.numel())
    err = torch.sum((x - c[labels]) ** 2)
    new = torch.where(counts > 0, sums / counts.clamp(min=1), c)
    return torch.sort(new).values, counts, err


def kmeans_step(x, xh, c, precision, chunk):
    """One iteration in chunks of points, so that the n x k matrix never has to fit at once.
    `xh` is the data in half precision, kept beside `x` as a user of fp16 would keep it."""
    k, d = c.shape
    cm = c.half() if precision == "fp16" else c
    norms = (cm.float() * cm.float()).sum(dim=1)
    sums = torch.zeros((k, d), dtype=torch.float32, device=x.device)
    counts = torch.zeros(k, dtype=torch.int64, device=x.device)
    for s in range(0, x.shape[0], chunk):
        xb = x[s : s + chunk]
        if precision == "cdist":
            labels = torch.argmin(torch.cdist(xb, c), dim=1)
        else:
            xm = xh[s : s + chunk] if precision == "fp16" else xb
            labels = torch.argmin(norms[None, :] - 2.0 * (xm @ cm.T).float(), dim=1)
        sums.index_add_(0, labels, xb)
        counts += torch.bincount(labels, minlength=k)
    new = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], c)
    return new, counts


def ints(v):
    return [int(a) for a in v.split(",")]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--csv", help="append rows to this CSV file")
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("oned")
    o.add_argument("--n", type=ints, default=[10, 20, 50, 100, 200, 500])
    o.add_argument("--m", type=ints, default=[200_000, 500_000, 1_000_000])
    o.add_argument("--repeat", type=int, default=20)
    km = sub.add_parser("kmeans")
    km.add_argument("--n", type=ints, default=[1_000_000])
    km.add_argument("--d", type=ints, default=[32, 128])
    km.add_argument("--k", type=ints, default=[256, 1024])
    km.add_argument(
        "--precision", type=lambda v: v.split(","), default=["fp32", "tf32", "fp16"]
    )
    km.add_argument("--repeat", type=int, default=10)
    km.add_argument("--chunk", type=int, default=1 << 18)
    a = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    g = torch.Generator(device="cpu").manual_seed(0)
    rows = []
    if a.cmd == "oned":
        for m in a.m:
            x = torch.randn(m, generator=g, dtype=torch.float32).to(dev)
            for n in a.n:
                c = torch.sort(x[:n]).values
                ms = timed(lambda x=x, c=c: field_1d(x, c), dev, a.repeat)
                print(
                    f"torch {name} | 1-D field code N={n} M={m} | {ms:.4f} ms/iter",
                    flush=True,
                )
                rows.append(("torch-field-1d", "lloyd1d", n, m, 1, ms, ""))
    else:
        for n in a.n:
            for d in a.d:
                x = torch.randn((n, d), generator=g, dtype=torch.float32).to(dev)
                xh = x.half() if "fp16" in a.precision else None
                for k in a.k:
                    c = x[:k].clone()
                    for prec in a.precision:
                        torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
                        torch.backends.cudnn.allow_tf32 = prec == "tf32"
                        ms = timed(
                            lambda x=x, xh=xh, c=c, prec=prec: kmeans_step(
                                x, xh, c, prec, a.chunk
                            ),
                            dev,
                            a.repeat,
                        )
                        gflops = 2.0 * n * k * d / (ms * 1e-3) / 1e9
                        print(
                            f"torch {name} | k-means {prec} n={n} d={d} k={k} | {ms:.3f} ms/iter"
                            f" | {gflops:.0f} GFLOP/s",
                            flush=True,
                        )
                        rows.append(
                            (
                                f"torch-kmeans-{prec}",
                                "kmeans",
                                k,
                                n,
                                d,
                                ms,
                                f"{gflops:.0f}",
                            )
                        )
        torch.backends.cuda.matmul.allow_tf32 = False
    if a.csv:
        new = not os.path.exists(a.csv)
        with open(a.csv, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(
                    [
                        "method",
                        "kind",
                        "n_or_k",
                        "m_or_n",
                        "d",
                        "ms_per_iter",
                        "gflops",
                        "device",
                    ]
                )
            for r in rows:
                w.writerow([*r, name])


if __name__ == "__main__":
    main()
