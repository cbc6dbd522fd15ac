"""lloyd on a Dask cluster: K-means and product quantization of a ``dask.array`` of rows.

Each Lloyd iteration sends the centroids to the workers, computes every block's statistics
with lloyd where the block lives (the GIL released, float32 C-contiguous blocks read in
place), merges them and updates on the client: on a ``distributed`` cluster, one task per
worker thread over the blocks it holds; with other schedulers, one task per block merged in
a tree. The statistics are exact sums in a
frame every block agrees on, so from the same initial centroids a fit equals
:class:`lloyd.KMeans` on the whole array in memory, bit for bit, whatever the chunking and
the number of workers.

Works with any Dask scheduler; on a ``distributed`` cluster, create the ``Client`` first::

    from distributed import Client, LocalCluster
    client = Client(LocalCluster(n_workers=2, threads_per_worker=1))
    km = lloyd.dask.KMeans(n_clusters=256, random_state=0).fit(X)   # X: a dask.array
"""

from __future__ import annotations

import functools
import time

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed

from . import _lloyd
from ._arrays import INITS, as_rows, weight_dtype, weight_vector
from ._base import BaseEstimator, ClusterMixin, TransformerMixin, check_is_fitted
from ._faiss import ProductQuantizer as _LocalProductQuantizer
from ._kmeans import KMeans as _LocalKMeans

__all__ = ["KMeans", "ProductQuantizer"]

# k-means‖: rounds, and points drawn per round as a multiple of k (Bahmani et al.; lloyd's
# single-machine k-means‖ uses the same).
ROUNDS, OVERSAMPLING = 5, 2.0


# --- work done on the workers, one block at a time -------------------------------------------


def _weights_of(w):
    return None if w is None else weight_vector(w)


def _extent(block, w):
    return _lloyd.Extent.of(as_rows(block, name="X"), _weights_of(w))


def _weight_range(block, w):
    w = _weights_of(w)
    return (float(w.min()), float(w.max()), int(np.count_nonzero(w > 0)), w.size)


def _stats(frame, block, w, centroids, first_row, device):
    rows = as_rows(block, name="X")
    return _lloyd.LloydStats.compute(frame, rows, centroids, first_row, _weights_of(w), device)[0]


def _stats_of_blocks(frame, centroids, device, blocks, weights, firsts):
    """The merged statistics of several blocks held by one worker: one task per worker and
    iteration, where a task per block costs the scheduler more than the block's pass."""
    parts = (_stats(frame, b, w, centroids, f, device) for b, w, f in zip(blocks, weights, firsts))
    return functools.reduce(_merge, parts)


def _stats_subspaces(frames, block, centroids, first_row, device, dsub):
    """The statistics of each active sub-space (frames[j] is None when it has converged)."""
    rows = as_rows(block, name="X")
    out = []
    for j, (frame, c) in enumerate(zip(frames, centroids)):
        if frame is None:
            out.append(None)
            continue
        sub = np.ascontiguousarray(rows[:, j * dsub : (j + 1) * dsub])
        out.append(_lloyd.LloydStats.compute(frame, sub, c, first_row, None, device)[0])
    return out


def _stats_subspaces_of_blocks(frames, centroids, device, dsub, blocks, firsts):
    """:func:`_stats_subspaces` of several blocks held by one worker, merged: one task per
    worker and iteration."""
    parts = (
        _stats_subspaces(frames, b, centroids, f, device, dsub) for b, f in zip(blocks, firsts)
    )
    return functools.reduce(_merge_lists, parts)


def _labels_in_frame(block, frame, centroids, device):
    rows = as_rows(block, name="X")
    return _lloyd.LloydStats.compute(frame, rows, centroids, 0, None, device, True)[1]


def _predict(block, centroids, device):
    return _lloyd.encode(centroids, as_rows(block, name="X"), device)[0]


def _squared(block, centroids, device):
    return _lloyd.encode(centroids, as_rows(block, name="X"), device)[1]


def _transform(block, centroids):
    return _lloyd.distances(centroids, as_rows(block, name="X"))


def _rows_at(block, picks):
    return np.asarray(block, dtype=np.float64)[picks]


def _positive_rows_at(block, w, ranks):
    positive = np.flatnonzero(_weights_of(w) > 0)
    return np.asarray(block, dtype=np.float64)[positive[ranks]]


def _d2_min(block, d2, candidates, device):
    new = _lloyd.encode(candidates, as_rows(block, name="X"), device)[1]
    return new if d2 is None else np.minimum(d2, new)


def _weighted_sum(x, w):
    return float(x.sum() if w is None else np.dot(x, _weights_of(w)))


def _extents_subspaces(block, m, dsub):
    rows = as_rows(block, name="X")
    return [
        _lloyd.Extent.of(np.ascontiguousarray(rows[:, j * dsub : (j + 1) * dsub]))
        for j in range(m)
    ]


def _draw(block, d2, w, factor, seed):
    """Rows drawn independently with probability min(1, factor * w * D²)."""
    p = d2 * factor if w is None else d2 * _weights_of(w) * factor
    u = np.random.default_rng(seed).random(p.shape[0])
    return np.asarray(block, dtype=np.float64)[u < p]


def _candidate_weights(block, w, candidates, device):
    labels = _lloyd.encode(candidates, as_rows(block, name="X"), device)[0]
    return np.bincount(labels, weights=_weights_of(w), minlength=candidates.shape[0])


# --- the client's side -------------------------------------------------------------------------


def _merge(a, b):
    return a.merge(b)


def _merge_lists(a, b):
    return [x if y is None else x.merge(y) for x, y in zip(a, b)]


def _tree(parts, combine):
    """Parts combined pairwise, level by level: depth log2(blocks), no task holds them all."""
    parts = list(parts)
    while len(parts) > 1:
        parts = [
            dask.delayed(combine, pure=True)(parts[i], parts[i + 1])
            if i + 1 < len(parts)
            else parts[i]
            for i in range(0, len(parts), 2)
        ]
    return parts[0]


def _seed_of(random_state) -> int:
    return _LocalKMeans(random_state=random_state)._seed()


class _Blocks:
    """A dask array of rows as blocks of whole rows, with their first rows and weights."""

    def __init__(self, X, sample_weight=None, persist=True):
        if not isinstance(X, da.Array):
            X = da.from_array(np.asarray(X), chunks=(max(1, min(len(X), 1 << 16)), -1))
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D array (n, d), got shape {X.shape}")
        if np.issubdtype(X.dtype, np.complexfloating):
            raise ValueError("X must be real, got complex values")
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        w = None
        if sample_weight is not None:
            w = sample_weight if isinstance(sample_weight, da.Array) else da.asarray(sample_weight)
            w = w.reshape(-1)
            if w.shape[0] != X.shape[0]:
                raise ValueError(f"sample_weight has {w.shape[0]} values for {X.shape[0]} rows")
            w = w.astype(weight_dtype(w.dtype)).rechunk((X.chunks[0],))
        if persist:
            X = X.persist()
            w = None if w is None else w.persist()
        self.X, self.w = X, w
        self.blocks = list(X.to_delayed().ravel())
        self.weights = [None] * len(self.blocks) if w is None else list(w.to_delayed().ravel())
        self.first = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
        self.n, self.d = X.shape
        # The persisted blocks' futures (False: not looked for yet), the frame sent to them.
        self._held = False if persist else None
        self._frame = None

    def each(self, fn, *args):
        """fn(block, weights, *args) for every block, lazily."""
        f = dask.delayed(fn, pure=True)
        return [f(b, w, *args) for b, w in zip(self.blocks, self.weights)]

    def stats(self, frame, centroids, device):
        """One pass: every block's statistics against ``centroids`` in ``frame`` (a shared
        node), merged in a tree on the workers and brought to the client. On a
        ``distributed`` cluster holding the blocks, one task per worker instead."""
        futures = self._futures()
        if futures is not None:
            return self._stats_by_worker(futures, frame, centroids, device)
        c = _shared(centroids)
        f = dask.delayed(_stats, pure=True)
        parts = [
            f(frame, b, w, c, int(first), device)
            for b, w, first in zip(self.blocks, self.weights, self.first)
        ]
        return _tree(parts, _merge).compute()

    def drop_weights(self):
        self.w, self.weights = None, [None] * len(self.blocks)
        self._held = None

    def _futures(self):
        """The client and the futures of the persisted blocks (and weights) on a
        ``distributed`` cluster, in block order; None elsewhere."""
        if self._held is not False:
            return self._held
        self._held = None
        try:
            from distributed import default_client, futures_of
        except ImportError:
            return None
        try:
            client = default_client()
        except ValueError:
            return None
        by_key = {f.key: f for f in futures_of(self.X)}
        blocks = [by_key.get(k) for k in _keys(self.X)]
        weights = [None] * len(blocks)
        if self.w is not None:
            by_key = {f.key: f for f in futures_of(self.w)}
            weights = [by_key.get(k) for k in _keys(self.w)]
        if any(b is None for b in blocks) or (
            self.w is not None and any(w is None for w in weights)
        ):
            return None
        self._held = (client, blocks, weights)
        return self._held

    def _stats_by_worker(self, held, frame, centroids, device):
        """One task per worker thread over the blocks :meth:`_plan` gives it, the tasks'
        statistics merged on the client. The sums are exact, so the grouping changes no
        bit."""
        client = held[0]
        frame = self._frame_future(client, frame)
        c = client.scatter(centroids, broadcast=True, hash=False)
        return self.by_worker(held, _stats_of_blocks, _merge, frame, c, device, weighted=True)

    def by_worker(self, held, fn, merge, *args, weighted=False):
        """``fn(*args, blocks[, weights], firsts)`` once per worker thread, over the blocks
        :meth:`_plan` gives it (``held``: :meth:`_futures`), the tasks' results merged on
        the client with ``merge``."""
        client, blocks, weights = held
        tasks = [
            client.submit(
                fn,
                *args,
                [blocks[i] for i in idx],
                *([[weights[i] for i in idx]] if weighted else []),
                [int(self.first[i]) for i in idx],
                workers=[worker],
                allow_other_workers=True,
                pure=False,
            )
            for worker, idx in self._plan(client, blocks)
        ]
        return functools.reduce(merge, client.gather(tasks))

    def _plan(self, client, blocks):
        """(worker, block indices) per task: each worker's share of the rows in proportion
        to its threads, taken from the blocks it holds first, then from the blocks of
        workers over their share (those move, as the scheduler's stealing would move them).
        Asked anew every pass: a restarted worker's blocks are recomputed elsewhere."""
        where = client.who_has(blocks)
        threads = client.nthreads()
        rows = np.diff(self.first)
        total_threads = sum(threads.values())
        target = {w: rows.sum() * n / total_threads for w, n in threads.items()}
        share = dict.fromkeys(threads, 0)
        given = {w: [] for w in threads}
        left = []
        for i, b in enumerate(blocks):
            holders = [w for w in sorted(where.get(b.key, ())) if w in threads]
            w = min(holders, key=lambda h: share[h] / target[h], default=None)
            # A holder may pass its share by half a block at most.
            if w is not None and share[w] + rows[i] / 2 <= target[w]:
                given[w].append(i)
                share[w] += rows[i]
            else:
                left.append(i)
        for i in left:
            w = min(threads, key=lambda h: share[h] / target[h])
            given[w].append(i)
            share[w] += rows[i]
        plan = []
        for w, idx in given.items():
            for t in range(min(threads[w], len(idx))):
                plan.append((w, idx[t :: threads[w]]))
        return plan

    def _frame_future(self, client, frame):
        """``frame`` (or the node holding it) sent once to every worker: one frame serves
        a whole fit."""
        if self._frame is None or self._frame[0] is not frame:
            value = frame.compute() if isinstance(frame, Delayed) else frame
            self._frame = (frame, client.scatter(value, broadcast=True, hash=False))
        return self._frame[1]


def _keys(array):
    """The keys of a dask array's blocks, in block order."""
    keys = array.__dask_keys__()
    while keys and isinstance(keys[0], list):
        keys = [k for row in keys for k in row]
    return keys


def _shared(value):
    """One graph node every task of a pass depends on: sent once to each worker."""
    return dask.delayed(value, pure=True, traverse=False)


def _random_rows(data: _Blocks, k: int, rng, positive_counts=None) -> np.ndarray:
    """k distinct rows drawn uniformly (among rows of positive weight, when weighted)."""
    counts = positive_counts if positive_counts is not None else np.diff(data.first)
    total = int(np.sum(counts))
    picks = np.sort(rng.choice(total, size=k, replace=False))
    edges = np.concatenate([[0], np.cumsum(counts)])
    where = np.searchsorted(edges, picks, side="right") - 1
    parts = []
    for b in np.unique(where):
        local = picks[where == b] - edges[b]
        if positive_counts is None:
            parts.append(dask.delayed(_rows_at, pure=True)(data.blocks[b], local))
        else:
            f = dask.delayed(_positive_rows_at, pure=True)
            parts.append(f(data.blocks[b], data.weights[b], local))
    rows = np.concatenate(dask.compute(*parts))
    # Drawn in row order above; shuffled by the same generator, so the start has no order.
    return rows[rng.permutation(k)]


def _kmeans_parallel(data: _Blocks, k: int, seed: int, device: str, positive_counts):
    """k-means‖ over the blocks: a few rounds of oversampled D² draws, then a weighted greedy
    k-means++ of the candidates on the client (Bahmani et al.; Spark's and dask-ml's start)."""
    rng = np.random.default_rng(seed)
    candidates = _random_rows(data, 1, rng, positive_counts)
    d2 = [None] * len(data.blocks)
    fresh = candidates
    for r in range(ROUNDS):
        c = _shared(fresh)
        d2 = [
            dask.delayed(_d2_min, pure=True)(b, prev, c, device)
            for b, prev in zip(data.blocks, d2)
        ]
        d2 = list(dask.persist(*d2))
        f = dask.delayed(_weighted_sum, pure=True)
        phi = sum(dask.compute(*[f(x, w) for x, w in zip(d2, data.weights)]))
        if not phi > 0:
            break
        factor = OVERSAMPLING * k / phi
        seeds = np.random.SeedSequence([seed, r]).spawn(len(data.blocks))
        drawn = dask.compute(
            *[
                dask.delayed(_draw, pure=True)(b, x, w, factor, s.generate_state(2))
                for b, x, w, s in zip(data.blocks, d2, data.weights, seeds)
            ]
        )
        fresh = np.concatenate(drawn)
        if fresh.shape[0] == 0:
            break
        candidates = np.concatenate([candidates, fresh])
    if candidates.shape[0] < k:
        extra = _random_rows(data, k, rng, positive_counts)
        return extra
    c = _shared(candidates)
    mass = sum(dask.compute(*data.each(_candidate_weights, c, device)))
    local = _LocalKMeans(
        k, init="k-means++", n_init=1, max_iter=300, random_state=seed, device="cpu"
    )
    keep = mass > 0
    if np.count_nonzero(keep) < k:
        keep = np.ones_like(keep)
        mass = np.maximum(mass, 1e-30)
    return local.fit(candidates[keep], sample_weight=mass[keep]).cluster_centers_.astype(
        np.float64
    )


class KMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    """K-means of a ``dask.array`` on a Dask cluster, equal to :class:`lloyd.KMeans`.

    Parameters are :class:`lloyd.KMeans`'s; where they differ:

    init : {"k-means||", "k-means++", "random"} or ndarray, default="k-means||"
        "k-means||" (and "k-means++", its scalable form here) draws a few rounds of
        candidates over the blocks, then reduces them on the client; "random" draws k
        distinct rows without gathering the data; an array starts from those centroids, and
        then the fit equals :class:`lloyd.KMeans` from them, bit for bit.
    n_init : int or "auto", default="auto"
        Starts tried, each a full fit over the cluster ("auto": 1).
    device : str, default="auto"
        The device each worker assigns on: "auto" takes a worker's GPU when it has one.
        Bit-for-bit equality with the in-memory fit holds on the CPU.
    persist : bool, default=True
        Keep ``X`` in the workers' memory for the iterations (each reads it once per
        iteration; without it, a lazily generated or loaded ``X`` is recomputed each time).

    Attributes are :class:`lloyd.KMeans`'s; ``labels_`` is a lazy ``dask.array``.

    Examples
    --------
    >>> import numpy as np, dask.array as da, lloyd.dask
    >>> rows = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=np.float32)
    >>> X = da.from_array(rows, chunks=(4, 2))
    >>> start = np.array([[0.0, 0.0], [9.0, 9.0]])
    >>> km = lloyd.dask.KMeans(n_clusters=2, init=start, device="cpu").fit(X)
    >>> km.cluster_centers_.tolist()
    [[1.0, 2.0], [10.0, 2.0]]
    >>> km.labels_.compute().tolist()
    [0, 0, 0, 1, 1, 1]
    >>> km.inertia_ == lloyd.KMeans(2, init=start, device="cpu").fit(rows).inertia_
    True
    """

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means||",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        random_state=None,
        device="auto",
        spherical=False,
        verbose=0,
        callback=None,
        persist=True,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.spherical = spherical
        self.verbose = verbose
        self.callback = callback
        self.persist = persist

    def _check(self, n_features):
        local = _LocalKMeans(
            self.n_clusters,
            init=self.init if not isinstance(self.init, str) else "random",
            n_init=self.n_init if self.n_init != "auto" else 1,
            max_iter=self.max_iter,
            tol=self.tol,
        )
        if isinstance(self.init, str) and self.init not in INITS:
            raise ValueError(
                f"init must be 'k-means||', 'k-means++', 'random' or an array, got {self.init!r}"
            )
        _, centroids, n_init = local._check_params(int(self.n_clusters), n_features)
        return centroids, n_init

    def fit(self, X, y=None, sample_weight=None):
        """Fits the centroids to the rows of the dask array ``X`` (optionally weighted)."""
        start = time.perf_counter()
        data = _Blocks(X, sample_weight, persist=bool(self.persist))
        given, n_init = self._check(data.d)
        k, device = int(self.n_clusters), str(self.device)
        unit, positive = 1.0, None
        if data.w is not None:
            ranges = dask.compute(*data.each(_weight_range))
            lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
            if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0:
                raise ValueError("sample_weight must be finite and non-negative")
            positive = np.array([r[2] for r in ranges])
            if lo == hi and lo > 0:
                # As lloyd.KMeans: equal weights are no weights (the inertia scaled).
                unit, positive = lo, None
                data.drop_weights()
        extent = _tree(data.each(_extent), _merge).compute()
        if data.n < k:
            raise ValueError(f"n_samples={data.n} should be >= n_clusters={k}.")
        if positive is not None and positive.sum() < k:
            raise ValueError(
                f"only {positive.sum()} rows have a positive weight, fewer than n_clusters={k}"
            )
        total = extent.total_weight
        seed = _seed_of(self.random_state)
        best = None
        for r in range(1 if given is not None else n_init):
            if given is not None:
                init = given
            elif self.init == "random":
                init = _random_rows(data, k, np.random.default_rng(seed + r), positive)
            else:
                init = _kmeans_parallel(data, k, seed + r, device, positive)
            fit = self._fit_from(data, extent, init, total, device)
            if best is None or fit["inertia"] < best["inertia"]:
                best = fit
        self.cluster_centers_ = best["centroids"].astype(data.X.dtype, copy=False)
        self.inertia_ = best["inertia"] * unit
        self.n_iter_ = best["n_iter"]
        self.history_ = best["history"]
        self.converged_ = best["converged"]
        self.counts_ = best["counts"]
        self.n_features_in_ = data.d
        self.device_ = device
        frame, c = best["frame"], best["centroids"]
        self.labels_ = data.X.map_blocks(
            _labels_in_frame, frame, c, device, drop_axis=1, dtype=np.int32
        )
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _fit_from(self, data: _Blocks, extent, init, total, device):
        init = np.ascontiguousarray(init, dtype=np.float64)
        frame = extent.including(init).frame()
        run = _lloyd.LloydRun(frame, init, total, float(self.tol), bool(self.spherical))
        shared_frame = _shared(frame)
        for it in range(int(self.max_iter)):
            t = time.perf_counter()
            stats = data.stats(shared_frame, run.centroids, device)
            done = run.step(stats, time.perf_counter() - t)
            entry = run.history[-1]
            if self.verbose:
                print(f"lloyd.dask: iteration {it}: mse {entry['mse']:.6g}", flush=True)
            if self.callback is not None:
                self.callback(entry)
            if done:
                break
        centroids = run.centroids
        if data.X.dtype == np.float32:
            # As lloyd.KMeans: centroids in the data's precision, measured as returned.
            centroids = centroids.astype(np.float32).astype(np.float64)
        last = data.stats(shared_frame, centroids, device)
        history = run.history
        return {
            "centroids": centroids,
            "inertia": (last.inertia / total) * total,
            "n_iter": len(history),
            "history": history,
            "converged": run.converged,
            "counts": last.counts,
            "frame": frame,
        }

    def _checked(self, X):
        check_is_fitted(self)
        if not isinstance(X, da.Array):
            X = da.from_array(np.asarray(X), chunks=(max(1, min(len(X), 1 << 16)), -1))
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has shape {X.shape}, expected (n, {self.n_features_in_}) as in the fit"
            )
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})
        return X, np.ascontiguousarray(self.cluster_centers_, dtype=np.float64)

    def predict(self, X):
        """Index of the nearest centroid of each row (int32), lazily, block by block."""
        X, c = self._checked(X)
        return X.map_blocks(_predict, c, str(self.device), drop_axis=1, dtype=np.int32)

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fits and returns ``labels_`` (lazy)."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Distance of each row to every centroid, (n, n_clusters), lazily."""
        X, c = self._checked(X)
        return X.map_blocks(_transform, c, chunks=(X.chunks[0], (c.shape[0],)), dtype=np.float64)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the (weighted) inertia of ``X`` against the centroids (computed)."""
        X, c = self._checked(X)
        d2 = X.map_blocks(_squared, c, str(self.device), drop_axis=1, dtype=np.float64)
        if sample_weight is not None:
            d2 = d2 * da.asarray(sample_weight).reshape(-1).rechunk((X.chunks[0],))
        return -float(d2.sum().compute())


class ProductQuantizer(_LocalProductQuantizer):
    """:class:`lloyd.ProductQuantizer` trained on a ``dask.array``: the K-means of all M
    sub-spaces advance together, one pass over the blocks per iteration.

    ``train`` starts each sub-space from ``init_centroids`` (M, 2^nbits, d/M) when given,
    else from 2^nbits random rows; then each sub-space's fit equals :class:`lloyd.KMeans` of
    that sub-space from the same start. ``compute_codes`` and ``decode`` take dask arrays
    too (lazily) as well as NumPy ones.
    """

    def train(self, x, init_centroids=None, tol: float = 0.0) -> None:
        data = _Blocks(x)
        if data.d != self.d:
            raise ValueError(f"x has {data.d} columns, the quantizer has d={self.d}")
        m, ks, ds = self.M, self.ksub, self.dsub
        if data.n < ks:
            raise ValueError(f"n_samples={data.n} should be >= 2^nbits={ks}")
        device = self.gpu if isinstance(self.gpu, str) else ("gpu" if self.gpu else "cpu")
        if init_centroids is None:
            rng = np.random.default_rng(_seed_of(self.seed))
            init = [_random_rows(data, ks, rng)[:, j * ds : (j + 1) * ds] for j in range(m)]
        else:
            init_centroids = np.asarray(init_centroids, dtype=np.float64)
            if init_centroids.shape != (m, ks, ds):
                raise ValueError(
                    f"init_centroids has shape {init_centroids.shape}, expected {(m, ks, ds)}"
                )
            init = list(init_centroids)
        f = dask.delayed(_extents_subspaces, pure=True)
        extents = _tree([f(b, m, ds) for b in data.blocks], _merge_lists).compute()
        runs, frames = [], []
        for j in range(m):
            c = np.ascontiguousarray(init[j])
            frames.append(extents[j].including(c).frame())
            runs.append(_lloyd.LloydRun(frames[j], c, extents[j].total_weight, float(tol), False))
        for _ in range(int(self.niter)):
            active = [not r.converged for r in runs]
            if not any(active):
                break
            t = time.perf_counter()
            fr = [f if a else None for f, a in zip(frames, active)]
            cs = [r.centroids for r in runs]
            held = data._futures()
            if held is not None:
                # One task per worker thread, as KMeans's passes (a task per block and the
                # merges between them cost the scheduler more than small blocks' passes).
                merged = data.by_worker(
                    held, _stats_subspaces_of_blocks, _merge_lists, fr, cs, device, ds
                )
            else:
                fr, cs = _shared(fr), _shared(cs)
                parts = [
                    dask.delayed(_stats_subspaces, pure=True)(fr, b, cs, int(f), device, ds)
                    for b, f in zip(data.blocks, data.first)
                ]
                merged = _tree(parts, _merge_lists).compute()
            seconds = time.perf_counter() - t
            for r, s, a in zip(runs, merged, active):
                if a:
                    r.step(s, seconds)
        dtype = np.float32
        self.centroids = np.stack([r.centroids for r in runs]).astype(dtype)
        self.iteration_stats = [r.history for r in runs]

    def compute_codes(self, x):
        """(n, M) codes; lazily for a dask array."""
        if isinstance(x, da.Array):
            x = x.rechunk({1: -1}) if x.numblocks[1] != 1 else x
            dtype = np.uint8 if self.nbits <= 8 else np.uint16
            return x.map_blocks(
                super().compute_codes, chunks=(x.chunks[0], (self.M,)), dtype=dtype
            )
        return super().compute_codes(x)

    def decode(self, codes, out=None):
        """(n, d) vectors; lazily for a dask array of codes (``out``, for NumPy codes only,
        as :meth:`lloyd.ProductQuantizer.decode`)."""
        if isinstance(codes, da.Array):
            if out is not None:
                raise ValueError("out is for NumPy codes; a dask array decodes lazily")
            codes = codes.rechunk({1: -1}) if codes.numblocks[1] != 1 else codes
            return codes.map_blocks(
                super().decode, chunks=(codes.chunks[0], (self.d,)), dtype=np.float32
            )
        return super().decode(codes, out)
