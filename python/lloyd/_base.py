"""scikit-learn's base classes and validation when scikit-learn is installed; small
stand-ins with the same behaviour for plain NumPy users when it is not (it is optional)."""

from __future__ import annotations

import inspect

import numpy as np

from ._arrays import as_rows

try:
    from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
    from sklearn.utils.validation import check_is_fitted as _sk_check_is_fitted
    from sklearn.utils.validation import validate_data as _sk_validate_data

    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - exercised by the no-scikit-learn test
    HAVE_SKLEARN = False


if HAVE_SKLEARN:

    def validate_data(estimator, X, *, reset: bool):
        """scikit-learn's checks: finite, 2-D, numeric, not sparse; float32 kept, the rest
        as float64; ``n_features_in_`` and ``feature_names_in_`` set (reset) or checked."""
        return _sk_validate_data(
            estimator,
            X,
            reset=reset,
            accept_sparse=False,
            dtype=[np.float64, np.float32],
            order="C",
            ensure_min_samples=1,
        )

    def check_is_fitted(estimator):
        _sk_check_is_fitted(estimator, "cluster_centers_")

else:

    class NotFittedError(ValueError, AttributeError):
        """Raised by a method that needs a fitted estimator (scikit-learn's name)."""

    class BaseEstimator:
        """``get_params`` / ``set_params`` from the ``__init__`` signature, as scikit-learn."""

        @classmethod
        def _get_param_names(cls):
            sig = inspect.signature(cls.__init__)
            return sorted(p for p in sig.parameters if p != "self")

        def get_params(self, deep=True):
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params):
            valid = self._get_param_names()
            for key, value in params.items():
                if key not in valid:
                    raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}")
                setattr(self, key, value)
            return self

        def __repr__(self):
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
            return f"{type(self).__name__}({args})"

    class ClusterMixin:
        pass

    class TransformerMixin:
        def fit_transform(self, X, y=None, **fit_params):
            return self.fit(X, y, **fit_params).transform(X)

    def validate_data(estimator, X, *, reset: bool):
        X = as_rows(X, name="X")
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"Found array with shape {X.shape}: at least one row and column")
        if not np.all(np.isfinite(X)):
            raise ValueError("Input X contains NaN or infinity.")
        if reset:
            estimator.n_features_in_ = X.shape[1]
        elif X.shape[1] != estimator.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
                f"{estimator.n_features_in_} features as input."
            )
        return X

    def check_is_fitted(estimator):
        if not hasattr(estimator, "cluster_centers_"):
            raise NotFittedError(
                f"This {type(estimator).__name__} instance is not fitted yet: call 'fit' first."
            )
