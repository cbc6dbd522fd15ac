#!/usr/bin/env python3
"""lloyd's product quantizer against faiss's ProductQuantizer on the same data.

  python3 benches/pq_faiss.py [--n 100000] [--d 32] [--m 8] [--bits 8] [--device cpu]

Trains both (25 Lloyd iterations per sub-space), encodes and decodes the training data, and
prints one JSON line with each library's reconstruction MSE (mean over vectors of the squared
error, summed over coordinates) and training/encoding times. faiss subsamples the training
set to 256 points per centroid by default; lloyd trains on every point.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--m", type=int, default=8)
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lloyd", default="target/release/lloyd")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    # correlated Gaussian data, so that sub-spaces differ
    x = rng.standard_normal((a.n, a.d)).astype(np.float32)
    x = (x @ rng.standard_normal((a.d, a.d)).astype(np.float32) / np.sqrt(a.d)).astype(
        np.float32
    )
    out = {"n": a.n, "d": a.d, "m": a.m, "bits": a.bits}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.npy")
        np.save(data, x)
        t = time.perf_counter()
        r = subprocess.run(
            [
                a.lloyd,
                "pq",
                "train",
                "--input",
                data,
                "--m",
                str(a.m),
                "--bits",
                str(a.bits),
                "--output",
                os.path.join(tmp, "pq.npy"),
                "--device",
                a.device,
                "--json",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - t
        j = json.loads(r.stdout.strip().splitlines()[-1])
        out["lloyd_mse"] = j["mse"]
        out["lloyd_train_s"] = j["train_ms"] / 1e3
        out["lloyd_wall_s"] = wall
        out["lloyd_device"] = j["device"]
        t = time.perf_counter()
        subprocess.run(
            [
                a.lloyd,
                "pq",
                "encode",
                "--codebook",
                os.path.join(tmp, "pq.npy"),
                "--input",
                data,
                "--output",
                os.path.join(tmp, "codes.npy"),
                "--device",
                a.device,
                "--quiet",
            ],
            capture_output=True,
            check=True,
        )
        out["lloyd_encode_wall_s"] = time.perf_counter() - t
    try:
        import faiss

        pq = faiss.ProductQuantizer(a.d, a.m, a.bits)
        t = time.perf_counter()
        pq.train(x)
        out["faiss_train_s"] = time.perf_counter() - t
        t = time.perf_counter()
        codes = pq.compute_codes(x)
        out["faiss_encode_s"] = time.perf_counter() - t
        rec = pq.decode(codes)
        out["faiss_mse"] = float(((x - rec) ** 2).sum(axis=1).mean())
        out["faiss_version"] = faiss.__version__
    except ImportError:
        out["faiss"] = "not installed (pip install faiss-cpu)"
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
