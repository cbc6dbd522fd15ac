"""PQ decoding from Python: lloyd.ProductQuantizer.decode against faiss's, same codebooks.

Run:  python3 benches/pq_decode.py [--n 1000000] [--d 128] [--m 16] [--nbits 8]

Both quantizers hold the same centroids (lloyd's, trained on 20 000 rows, copied into faiss);
the codes are random. Alternating pairs, median of 7 each; millions of vectors per second.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--nbits", type=int, default=8)
    a = p.parse_args()
    import faiss
    import lloyd

    rng = np.random.default_rng(0)
    train = rng.normal(size=(20_000, a.d)).astype(np.float32)
    ours = lloyd.ProductQuantizer(a.d, a.m, a.nbits, niter=5)
    ours.train(train)
    theirs = faiss.ProductQuantizer(a.d, a.m, a.nbits)
    faiss.copy_array_to_vector(ours.centroids.ravel(), theirs.centroids)
    codes = rng.integers(0, 1 << a.nbits, size=(a.n, a.m)).astype(np.uint8)
    assert np.array_equal(ours.decode(codes[:1000]), theirs.decode(codes[:1000]))
    times = {"lloyd": [], "faiss": []}
    for _ in range(7):
        for name, f in (("lloyd", ours.decode), ("faiss", theirs.decode)):
            t = time.perf_counter()
            f(codes)
            times[name].append(time.perf_counter() - t)
    rate = {k: a.n / np.median(v) / 1e6 for k, v in times.items()}
    print(f"n={a.n} d={a.d} m={a.m} nbits={a.nbits}, faiss {faiss.__version__}")
    print(
        f"lloyd {rate['lloyd']:.1f} M vectors/s, faiss {rate['faiss']:.1f} M vectors/s, "
        f"lloyd / faiss {rate['lloyd'] / rate['faiss']:.2f}"
    )


if __name__ == "__main__":
    main()
