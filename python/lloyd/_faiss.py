"""faiss's names for faiss-like objects: `Kmeans` and `ProductQuantizer`."""

from __future__ import annotations

import math
import os
import stat
import sys
import tempfile

import numpy as np

from . import _lloyd
from ._arrays import INITS, as_rows, as_weights, device_name
from ._progress import watcher


class _NearestIndex:
    """The index faiss's ``Kmeans.index`` is: ``search(x, 1)`` gives each row's nearest
    centroid."""

    def __init__(self, owner: Kmeans):
        self._owner = owner

    def search(self, x, k: int = 1):
        return self._owner.search(x, k)


class Kmeans:
    """faiss's ``Kmeans(d, k, niter=25, ...)``: ``train``, ``centroids``, ``obj``,
    ``index.search``. Unlike faiss, every row is used (faiss subsamples to 256 points per
    centroid) and ``train`` starts from random rows unless given ``init_centroids``.

    >>> import numpy as np, lloyd
    >>> x = np.random.default_rng(0).standard_normal((1000, 8)).astype("float32")
    >>> km = lloyd.Kmeans(8, 16, niter=20, seed=1, gpu=False)
    >>> _ = km.train(x)
    >>> D, I = km.index.search(x, 1)
    >>> D.shape, I.dtype
    ((1000, 1), dtype('int64'))
    """

    def __init__(
        self,
        d: int,
        k: int,
        *,
        niter: int = 25,
        seed: int = 1234,
        gpu=False,
        spherical: bool = False,
        verbose: bool = False,
        nredo: int = 1,
        init: str = "random",
    ):
        self.d, self.k, self.niter, self.seed = int(d), int(k), int(niter), int(seed)
        self.gpu, self.spherical, self.verbose, self.nredo = gpu, spherical, verbose, nredo
        self.init = init
        self.centroids: np.ndarray | None = None
        self.obj = np.zeros(0)
        self.iteration_stats: list[dict] = []
        self.index = _NearestIndex(self)

    def train(self, x, weights=None, init_centroids=None) -> float:
        """Fits the centroids; returns the last iteration's objective (sum of squared
        distances), as faiss does."""
        x = as_rows(x)
        if x.shape[1] != self.d:
            raise ValueError(f"x has {x.shape[1]} columns, Kmeans was made for d={self.d}")
        centroids = None
        kind = self.init
        if kind not in INITS:
            raise ValueError(f"unknown init {kind!r}: {', '.join(INITS)}")
        if init_centroids is not None:
            centroids = np.ascontiguousarray(np.asarray(init_centroids, dtype=np.float64))
            kind = "given"
        w = as_weights(weights, x.shape[0])
        fit = _lloyd.kmeans_fit(
            x,
            self.k,
            kind,
            centroids,
            int(self.nredo),
            self.niter,
            0.0,
            self.seed,
            device_name(self.gpu),
            w,
            bool(self.spherical),
            watcher("Kmeans", self.niter, self.verbose, None),
            # faiss's train returns centroids only: no pass for the final centroids' labels.
            final_pass=False,
        )
        if self.verbose:
            sys.stderr.write("\n")
        self.centroids = fit["centroids"].astype(np.float32)
        # The total weight as lloyd sums it (exactly, rounded once), which the errors divide.
        total = float(x.shape[0]) if w is None else math.fsum(w.astype(np.float64))
        self.iteration_stats = fit["history"]
        self.obj = np.array([h["mse"] * total for h in fit["history"]])
        return float(self.obj[-1]) if self.obj.size else 0.0

    def search(self, x, k: int = 1):
        """Squared distances (float32) and indices (int64) of each row's ``k`` nearest
        centroids, nearest first (ties to the lower index)."""
        if self.centroids is None:
            raise RuntimeError("train the Kmeans first")
        if not 1 <= k <= self.k:
            raise ValueError(f"k must be between 1 and {self.k}, got {k}")
        rows, centroids = as_rows(x), self.centroids.astype(np.float64)
        if k == 1:
            labels, d2 = _lloyd.encode(centroids, rows, device_name(self.gpu))
            return d2.astype(np.float32)[:, None], labels.astype(np.int64)[:, None]
        d2 = _lloyd.distances(centroids, rows) ** 2
        idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(d2, idx, 1).astype(np.float32), idx.astype(np.int64)


class ProductQuantizer:
    """faiss's ``ProductQuantizer(d, M, nbits)``: ``train``, ``compute_codes``, ``decode``;
    plus ``search`` (asymmetric distances) and ``save`` / ``load`` of the ``.npy`` the CLI
    writes (shape (M, 2^nbits, d / M)).

    >>> import numpy as np, lloyd
    >>> x = np.random.default_rng(0).standard_normal((2000, 16)).astype("float32")
    >>> pq = lloyd.ProductQuantizer(16, 4, 6)
    >>> pq.train(x)
    >>> codes = pq.compute_codes(x)
    >>> codes.shape, codes.dtype
    ((2000, 4), dtype('uint8'))
    >>> pq.decode(codes).shape
    (2000, 16)
    """

    def __init__(
        self, d: int, M: int, nbits: int = 8, *, niter: int = 25, seed: int = 1234, gpu=False
    ):
        if M < 1 or d % M:
            raise ValueError(f"d={d} must be a multiple of M={M}")
        if not 1 <= nbits <= 16:
            raise ValueError(f"nbits must be between 1 and 16, got {nbits}")
        self.d, self.M, self.nbits = int(d), int(M), int(nbits)
        self.dsub, self.ksub = self.d // self.M, 1 << self.nbits
        self.niter, self.seed, self.gpu = niter, seed, gpu
        self.centroids = None

    @property
    def centroids(self) -> np.ndarray | None:
        """The (M, 2^nbits, d / M) float32 centroids, read-only (assign new ones to change
        them): the quantizer built from them is kept for every later call."""
        return None if self._centroids is None else self._centroids.view()

    @centroids.setter
    def centroids(self, c) -> None:
        if c is not None:
            c = np.array(c, dtype=np.float32)
            if c.shape != (self.M, self.ksub, self.dsub):
                raise ValueError(
                    f"centroids have shape {c.shape}, expected {(self.M, self.ksub, self.dsub)}"
                )
            if not np.isfinite(c).all():
                raise ValueError("centroids must be finite")
            # The only reference left writeable would be this private one: a view handed out
            # cannot be made writeable again, so the kept quantizer never goes stale.
            c.flags.writeable = False
        self._centroids, self._book = c, None

    def __getstate__(self) -> dict:
        # The kept quantizer is rebuilt where the copy is used (it does not pickle).
        return {k: v for k, v in self.__dict__.items() if k != "_book"}

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        # Pickles of earlier versions hold the centroids under their public name.
        centroids = state.pop("centroids", state.pop("_centroids", None))
        self.__dict__.update(state)
        self.centroids = centroids

    def _stacked(self) -> np.ndarray:
        if self._centroids is None:
            raise RuntimeError("train the ProductQuantizer first")
        return np.ascontiguousarray(
            self._centroids.reshape(self.M * self.ksub, self.dsub), dtype=np.float64
        )

    def _quantizer(self) -> _lloyd.PqCodebook:
        """The quantizer of the current centroids and device, built on first use."""
        device = device_name(self.gpu)
        if self._book is None or self._book[0] != device:
            self._book = (device, _lloyd.PqCodebook(self._stacked(), self.M, device))
        return self._book[1]

    def train(self, x) -> None:
        """K-means in each of the M sub-spaces (2^nbits centroids each)."""
        x = as_rows(x)
        if x.shape[1] != self.d:
            raise ValueError(f"x has {x.shape[1]} columns, the quantizer has d={self.d}")
        stacked = _lloyd.pq_train(
            x, self.M, self.nbits, self.niter, self.seed, device_name(self.gpu)
        )
        self.centroids = stacked.reshape(self.M, self.ksub, self.dsub)

    def compute_codes(self, x) -> np.ndarray:
        """(n, M) codes: uint8 for nbits <= 8, else uint16."""
        return self._quantizer().encode(as_rows(x))

    def decode(self, codes, out: np.ndarray | None = None) -> np.ndarray:
        """The (n, d) float32 vectors the codes stand for; written into ``out`` (a writeable,
        C-contiguous float32 array of that shape) where given, and returned, so that a loop
        decoding batch after batch reuses one buffer."""
        # Its shape, layout and writeability are checked where it is written (decode).
        if out is not None and (not isinstance(out, np.ndarray) or out.dtype != np.float32):
            raise TypeError(
                f"out must be a float32 ndarray, got {type(out).__name__}"
                + (f" of {out.dtype}" if isinstance(out, np.ndarray) else "")
            )
        codes = np.asarray(codes)
        if codes.dtype not in (np.uint8, np.uint16):
            if not np.issubdtype(codes.dtype, np.integer):
                raise ValueError(f"codes must be integers, got {codes.dtype}")
            if codes.size and (codes.min() < 0 or codes.max() >= self.ksub):
                raise ValueError(f"codes must lie in [0, {self.ksub}), got a code out of range")
            codes = codes.astype(np.uint16)
        codes = np.ascontiguousarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.M:
            raise ValueError(f"codes must have shape (n, {self.M}), got {codes.shape}")
        if out is not None and np.may_share_memory(out, codes):
            raise ValueError("out must not share memory with the codes")
        return self._quantizer().decode(codes, out)

    def search(self, queries, codes, k: int = 1):
        """The ``k`` nearest coded vectors of each query by asymmetric distance (the query
        exact, the database as codes): (squared distances (nq, k) float32, indices int64)."""
        c = self._stacked().reshape(self.M, self.ksub, self.dsub)
        q = as_rows(queries).astype(np.float64).reshape(-1, self.M, 1, self.dsub)
        tables = ((q - c[None]) ** 2).sum(-1)  # (nq, M, ksub)
        codes = np.asarray(codes, dtype=np.int64)
        d = np.zeros((tables.shape[0], codes.shape[0]))
        for j in range(self.M):
            d += tables[:, j, codes[:, j]]
        k = min(k, codes.shape[0])
        idx = np.argsort(d, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(d, idx, 1).astype(np.float32), idx.astype(np.int64)

    def save(self, path) -> None:
        """Writes the centroids as the CLI's ``.npy`` (atomically; never over a path that is
        not a regular file)."""
        path = os.fspath(path)
        if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            raise ValueError(f"{path} exists and is not a regular file")
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(
                    f, self._stacked().reshape(self.M, self.ksub, self.dsub).astype(np.float32)
                )
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path, *, gpu=False) -> ProductQuantizer:
        """A quantizer from a ``.npy`` of shape (M, 2^nbits, d / M) (the CLI's)."""
        c = np.load(os.fspath(path))
        if c.ndim != 3 or c.shape[1] & (c.shape[1] - 1) or c.shape[1] < 2:
            raise ValueError(f"{path}: expected shape (M, 2^nbits, d/M), found {c.shape}")
        m, ksub, dsub = c.shape
        pq = cls(m * dsub, m, ksub.bit_length() - 1, gpu=gpu)
        pq.centroids = c
        return pq
