"""Optimal quantizers of laws and samples (numerical probability)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import _lloyd
from ._progress import watcher

# Each law's two parameters, by name, with their defaults (N(0, 1), U[0, 1), ...).
_LAW_PARAMS = {
    "normal": (("mean", 0.0), ("std", 1.0)),
    "uniform": (("low", 0.0), ("high", 1.0)),
    "exponential": (("rate", 1.0), (None, 0.0)),
    "lognormal": (("mu", 0.0), ("sigma", 1.0)),
}


@dataclass
class Quantizer:
    """An N-point quantizer: sorted centroids (1-D) or (N, d) centroids, the probabilities of
    their cells, the distortion ``(1/2M) Σ |x − x̂|²`` and the plain ``mse`` (twice it)."""

    centroids: np.ndarray
    probabilities: np.ndarray
    distortion: float
    mse: float
    n_iter: int
    converged: bool
    device: str
    history: np.ndarray = field(repr=False)

    def expectation(self, f: Callable[[np.ndarray], np.ndarray]) -> float:
        """The cubature E[f(X)] ≈ Σ pᵢ f(xᵢ), with ``f`` vectorised over the centroids
        (1-D: an array of N values; d-D: an (N, d) array, one row per centroid)."""
        values = np.asarray(f(self.centroids), dtype=np.float64).reshape(-1)
        if values.shape[0] != self.probabilities.shape[0]:
            raise ValueError(
                f"f gave {values.shape[0]} values for {self.probabilities.shape[0]} centroids"
            )
        return float(np.dot(self.probabilities, values))


def quantize(
    law="normal",
    n: int = 10,
    *,
    samples: int = 1_000_000,
    iterations: int = 100,
    seed: int = 0,
    device: str = "auto",
    method: str = "randomized",
    tol: float = 0.0,
    dim: int = 1,
    verbose: bool = False,
    callback=None,
    **law_params,
) -> Quantizer:
    """The optimal ``n``-point quantizer of a law or of samples.

    ``law`` is "normal", "uniform", "exponential" or "lognormal" (parameters by name:
    ``mean``/``std``, ``low``/``high``, ``rate``, ``mu``/``sigma``), or a 1-D array of
    samples. ``method`` is "randomized" (Lloyd's fixed point on ``samples`` draws),
    "exact" (closed-form cell integrals, Newton; 1-D laws) or "clvq" (stochastic gradient,
    ``iterations`` steps). ``dim`` > 1 quantizes the standard normal law of ℝ^dim.
    ``verbose`` shows a progress bar on stderr; ``callback`` gets each iteration's figures
    (Lloyd's methods); Ctrl-C stops a fit between iterations with ``KeyboardInterrupt``.

    >>> import lloyd
    >>> q = lloyd.quantize("normal", n=10, method="exact")
    >>> round(q.expectation(lambda x: x**2), 2)
    0.98
    """
    if isinstance(law, str):
        if law not in _LAW_PARAMS:
            raise ValueError(f"unknown law {law!r}: {', '.join(_LAW_PARAMS)}")
        names = [name for name, _ in _LAW_PARAMS[law] if name]
        unknown = set(law_params) - set(names)
        if unknown:
            raise ValueError(f"{law} takes {', '.join(names)}; got {', '.join(sorted(unknown))}")
        a, b = (
            float(law_params.get(name, default)) if name else default
            for name, default in _LAW_PARAMS[law]
        )
        fit = _lloyd.quantize(
            n,
            samples,
            iterations,
            tol,
            seed,
            device,
            method,
            dim,
            law=law,
            a=a,
            b=b,
            callback=watcher("quantize", iterations, verbose, callback),
        )
    else:
        if law_params:
            raise ValueError("law parameters are for named laws, not samples")
        values = np.ascontiguousarray(np.asarray(law, dtype=np.float64).reshape(-1))
        fit = _lloyd.quantize(
            n,
            values.shape[0],
            iterations,
            tol,
            seed,
            device,
            method,
            values=values,
            callback=watcher("quantize", iterations, verbose, callback),
        )
    return Quantizer(**fit)
