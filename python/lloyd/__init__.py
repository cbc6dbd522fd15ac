"""lloyd: K-means codebooks, optimal quantizers and product quantization on the CPU and on
any GPU wgpu reaches (Vulkan, Metal, DirectX 12), with NumPy arrays in and out.

- :class:`KMeans`: a scikit-learn estimator (``fit``, ``predict``, ``transform``, ...).
- :class:`Kmeans` and :class:`ProductQuantizer`: faiss's names and methods.
- :func:`quantize`: the optimal N-point quantizer of a law or of samples (numerical
  probability), with :meth:`Quantizer.expectation` for cubature.
- ``lloyd.dask`` (``import lloyd.dask``; needs Dask): :class:`KMeans` and
  :class:`ProductQuantizer` of a ``dask.array`` on a Dask cluster, equal to the in-memory fit.
"""

from __future__ import annotations

from ._faiss import Kmeans, ProductQuantizer
from ._kmeans import KMeans
from ._lloyd import devices as _devices
from ._quantize import Quantizer, quantize

__version__ = "0.1.0"


def devices() -> list[dict]:
    """The GPU adapters wgpu finds, as dicts (index, name, backend, type): the ``gpu:INDEX``
    values ``device=`` takes. ``"cpu"`` is always available."""
    return [{"index": i, "name": n, "backend": b, "type": t} for (i, n, b, t) in _devices()]


__all__ = ["KMeans", "Kmeans", "ProductQuantizer", "Quantizer", "quantize", "devices"]
