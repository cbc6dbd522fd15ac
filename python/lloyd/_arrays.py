"""NumPy inputs as the extension takes them: float32 or float64, C-contiguous, converted once."""

from __future__ import annotations

import numpy as np


def as_rows(x, *, name: str = "x") -> np.ndarray:
    """`x` as a C-contiguous (n, d) float32 or float64 array.

    float32 C-contiguous input is returned as is (no copy); float64 stays float64, so no
    precision is lost; anything else (integers, other layouts) is converted once to float64.
    """
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d), got shape {a.shape}")
    if np.iscomplexobj(a):
        raise ValueError(f"{name} must be real, got complex values")
    dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.float64
    try:
        return np.ascontiguousarray(a, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must hold numbers: {e}") from None


def weight_dtype(dtype) -> type:
    """The dtype lloyd takes weights of ``dtype`` in: float32 as it is, anything else as
    float64. lloyd reads either exactly, whatever the rows' dtype, so float64 weights keep
    their precision (as the CLI's ``--weights`` do)."""
    return np.float32 if np.dtype(dtype) == np.float32 else np.float64


def weight_vector(w) -> np.ndarray:
    """``w`` as a C-contiguous vector of :func:`weight_dtype`."""
    a = np.asarray(w).reshape(-1)
    return np.ascontiguousarray(a, dtype=weight_dtype(a.dtype))


def as_weights(w, n: int) -> np.ndarray | None:
    """Per-row weights (:func:`weight_vector`), checked for length."""
    if w is None:
        return None
    a = weight_vector(w)
    if a.shape[0] != n:
        raise ValueError(f"sample_weight has {a.shape[0]} values for {n} rows")
    return a


def device_name(gpu) -> str:
    """faiss's `gpu=False | True | "gpu:0"` (or an int, the adapter index) as a lloyd device."""
    if gpu is False or gpu is None:
        return "cpu"
    if gpu is True:
        return "gpu"
    if isinstance(gpu, (int, np.integer)):
        return f"gpu:{int(gpu)}"
    return str(gpu)


# The starts lloyd's K-means takes by name (scikit-learn's and faiss's spellings).
INITS = ("k-means++", "random", "k-means||")
