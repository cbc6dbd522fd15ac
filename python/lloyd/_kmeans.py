"""`lloyd.KMeans`: scikit-learn's estimator conventions over lloyd's K-means."""

from __future__ import annotations

import numbers
import sys

import numpy as np

from . import _lloyd
from ._arrays import INITS, as_rows, as_weights
from ._base import BaseEstimator, ClusterMixin, TransformerMixin, check_is_fitted, validate_data
from ._progress import watcher


class KMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    """K-means clustering (Lloyd's algorithm) on the CPU or on a GPU.

    Parameters follow :class:`sklearn.cluster.KMeans`; each is stored untouched and checked
    in :meth:`fit`.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of centroids.
    init : {"k-means++", "random", "k-means||"} or ndarray of shape (n_clusters, n_features),
        default="k-means++"
        Greedy k-means++ (scikit-learn's), k distinct random rows, k-means‖ (Spark's and
        dask-ml's scalable k-means++), or given centroids.
    n_init : int or "auto", default="auto"
        Starts tried, keeping the lowest inertia ("auto": 1 for k-means++ and k-means‖ and
        given centroids, 10 for random).
    max_iter : int, default=300
        Most Lloyd iterations of one start.
    tol : float, default=1e-4
        Stop when the inertia falls by less than this fraction of itself in one iteration
        (scikit-learn's ``tol`` measures the centroids' movement instead); every fit also
        stops at its fixed point.
    random_state : int, RandomState instance or None, default=None
        Seeds the start: an int gives the same result on every run, whatever the thread
        count.
    device : str, default="auto"
        "cpu", "gpu", "gpu:INDEX", "gpu:NAME" or "auto" (a hardware GPU when there is one).
    spherical : bool, default=False
        Centroids scaled to unit norm after each update (faiss's ``spherical=True``).
    verbose : int, default=0
        A progress bar on stderr, one step per iteration.
    callback : callable or None, default=None
        Called after every iteration with a dict (iteration, mse, distortion, seconds,
        empty_cells_split); an exception it raises stops the fit and propagates. Ctrl-C
        stops a fit between iterations with ``KeyboardInterrupt``.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        The centroids, in the dtype of the data (float32 or float64).
    labels_ : ndarray of shape (n_samples,), int32
        Nearest centroid of each training row (each is the nearest of ``cluster_centers_``).
    inertia_ : float
        Sum of (weighted) squared distances of the rows to their centroid.
    n_iter_ : int
        Iterations of the kept start.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when ``X`` had string column names
    history_ : list of dict
        Per iteration of the kept start: ``mse``, ``seconds``, ``empty_cells_split``.
    device_ : str
        The device that ran the fit.
    fit_seconds_ : float
        Seconds the fit took inside lloyd (the Rust call), without the Python layer.

    Examples
    --------
    >>> import numpy as np
    >>> import lloyd
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=np.float32)
    >>> km = lloyd.KMeans(n_clusters=2, random_state=0, device="cpu").fit(X)
    >>> sorted(km.cluster_centers_.tolist())
    [[1.0, 2.0], [10.0, 2.0]]
    >>> int(km.predict([[0, 0]])[0]) == int(km.labels_[0])
    True
    """

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        random_state=None,
        device="auto",
        spherical=False,
        verbose=0,
        callback=None,
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

    def _check_params(self, n_samples: int, n_features: int):
        k = self.n_clusters
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_clusters must be an integer >= 1, got {k!r}")
        if n_samples < k:
            raise ValueError(f"n_samples={n_samples} should be >= n_clusters={k}.")
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if not isinstance(self.tol, numbers.Real) or not np.isfinite(self.tol) or self.tol < 0:
            raise ValueError(f"tol must be a finite number >= 0, got {self.tol!r}")
        init, centroids = self.init, None
        if isinstance(init, str):
            if init not in INITS:
                raise ValueError(
                    f"init must be 'k-means++', 'random', 'k-means||' or an array, got {init!r}"
                )
            kind = init
        else:
            centroids = np.ascontiguousarray(np.asarray(init, dtype=np.float64))
            if centroids.shape != (k, n_features):
                raise ValueError(f"init has shape {centroids.shape}, expected ({k}, {n_features})")
            kind = "given"
        n_init = self.n_init
        if n_init == "auto":
            n_init = 10 if kind == "random" else 1
        if not isinstance(n_init, numbers.Integral) or n_init < 1:
            raise ValueError(f"n_init must be 'auto' or an integer >= 1, got {n_init!r}")
        return kind, centroids, int(n_init)

    def _seed(self) -> int:
        rs = self.random_state
        if rs is None or isinstance(rs, np.random.RandomState):
            rs = np.random.mtrand._rand if rs is None else rs
            return int(rs.randint(np.iinfo(np.int32).max))
        if isinstance(rs, numbers.Integral):
            return int(rs) & 0xFFFFFFFFFFFFFFFF
        raise ValueError(f"random_state must be None, an int or a RandomState, got {rs!r}")

    def fit(self, X, y=None, sample_weight=None):
        """Fits the centroids to the rows of ``X`` (optionally weighted)."""
        X = validate_data(self, X, reset=True)
        kind, centroids, n_init = self._check_params(*X.shape)
        rows = as_rows(X, name="X")
        weights = as_weights(sample_weight, X.shape[0])
        unit = 1.0
        if weights is not None:
            if not np.all(np.isfinite(weights)) or np.any(weights < 0):
                raise ValueError("sample_weight must be finite and non-negative")
            if weights.size and np.all(weights == weights[0]) and weights[0] > 0:
                # Equal weights are no weights (the inertia scaled): the same fit as none.
                unit, weights = float(weights[0]), None
        fit = _lloyd.kmeans_fit(
            rows,
            int(self.n_clusters),
            kind,
            centroids,
            n_init,
            int(self.max_iter),
            float(self.tol),
            self._seed(),
            str(self.device),
            weights,
            bool(self.spherical),
            watcher("KMeans", int(self.max_iter), self.verbose, self.callback),
        )
        if self.verbose:
            sys.stderr.write("\n")
        self.cluster_centers_ = fit["centroids"].astype(X.dtype, copy=False)
        self.labels_ = fit["labels"]
        self.inertia_ = float(fit["inertia"]) * unit
        self.n_iter_ = int(fit["n_iter"])
        self.history_ = fit["history"]
        self.device_ = fit["device"]
        self.fit_seconds_ = fit["seconds"]
        return self

    def _rows(self, X):
        """The centroids (float64) and ``X`` checked against the fit."""
        check_is_fitted(self)
        centroids = np.ascontiguousarray(self.cluster_centers_, dtype=np.float64)
        return centroids, as_rows(validate_data(self, X, reset=False), name="X")

    def predict(self, X):
        """Index of the nearest centroid of each row of ``X`` (int32)."""
        centroids, rows = self._rows(X)
        labels, _ = _lloyd.encode(centroids, rows, str(self.device))
        return labels

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fits and returns ``labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distance of each row of ``X`` to every centroid: (n, n_clusters)."""
        return _lloyd.distances(*self._rows(X))

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the (weighted) inertia of ``X`` against the centroids."""
        centroids, rows = self._rows(X)
        _, d2 = _lloyd.encode(centroids, rows, str(self.device))
        w = as_weights(sample_weight, rows.shape[0])
        return -float(np.dot(d2, w) if w is not None else d2.sum())
