"""PQ decoding from Python: lloyd.ProductQuantizer.decode against faiss's, same codebooks.

Run:  python3 benches/pq_decode.py [--n 1000000] [--d 128] [--m 16] [--nbits 8]

Both quantizers hold the same centroids (lloyd's, trained on 20 000 rows, copied into faiss);
the codes are random. Three ways a caller decodes: all n codes into a fresh array; all of
them into a buffer reused from call to call (lloyd's ``out=``, faiss's ``decode_c``); and
batch after batch of 4096 codes into one reused buffer. Alternating pairs, median of 7 each;
millions of vectors per second.
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
    buf_ours = np.empty((a.n, a.d), dtype=np.float32)
    buf_theirs = np.empty((a.n, a.d), dtype=np.float32)
    batch = 4096
    small_ours = np.empty((batch, a.d), dtype=np.float32)
    small_theirs = np.empty((batch, a.d), dtype=np.float32)
    starts = range(0, a.n - batch + 1, batch)

    def faiss_into(c, out, n):
        theirs.decode_c(faiss.swig_ptr(c), faiss.swig_ptr(out), n)

    ways = {
        "into a fresh array": (
            lambda: ours.decode(codes),
            lambda: theirs.decode(codes),
            a.n,
        ),
        "into a reused buffer": (
            lambda: ours.decode(codes, out=buf_ours),
            lambda: faiss_into(codes, buf_theirs, a.n),
            a.n,
        ),
        f"in batches of {batch} into one buffer": (
            lambda: [ours.decode(codes[i : i + batch], out=small_ours) for i in starts],
            lambda: [
                faiss_into(codes[i : i + batch], small_theirs, batch) for i in starts
            ],
            batch * len(starts),
        ),
    }
    print(f"n={a.n} d={a.d} m={a.m} nbits={a.nbits}, faiss {faiss.__version__}")
    for way, (lloyd_run, faiss_run, count) in ways.items():
        times = {"lloyd": [], "faiss": []}
        for _ in range(7):
            for name, f in (("lloyd", lloyd_run), ("faiss", faiss_run)):
                t = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t)
        rate = {k: count / np.median(v) / 1e6 for k, v in times.items()}
        print(
            f"{way}: lloyd {rate['lloyd']:.1f} M vectors/s, faiss {rate['faiss']:.1f} M "
            f"vectors/s, lloyd / faiss {rate['lloyd'] / rate['faiss']:.2f}"
        )
    np.testing.assert_array_equal(buf_ours, buf_theirs)


if __name__ == "__main__":
    main()
