# Type stubs of the compiled extension (python/src/lib.rs).
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

def devices() -> list[tuple[int, str, str, str]]: ...
def kmeans_fit(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    k: int,
    init: str,
    init_centroids: npt.NDArray[np.float64] | None,
    n_init: int,
    max_iter: int,
    tol: float,
    seed: int,
    device: str,
    sample_weight: npt.NDArray[np.float32] | None,
    spherical: bool,
    callback: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, Any]: ...
def encode(
    centroids: npt.NDArray[np.float64],
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    device: str,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]: ...
def distances(
    centroids: npt.NDArray[np.float64], x: npt.NDArray[np.float32] | npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]: ...
def quantize(
    n: int,
    samples: int,
    iterations: int,
    tol: float,
    seed: int,
    device: str,
    method: str,
    dim: int = 1,
    law: str | None = None,
    a: float = 0.0,
    b: float = 1.0,
    values: npt.NDArray[np.float64] | None = None,
    callback: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, Any]: ...
def pq_train(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    m: int,
    bits: int,
    iterations: int,
    seed: int,
    device: str,
) -> npt.NDArray[np.float64]: ...
def pq_encode(
    centroids: npt.NDArray[np.float64],
    m: int,
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
) -> npt.NDArray[np.uint8] | npt.NDArray[np.uint16]: ...
def pq_decode(
    centroids: npt.NDArray[np.float64], m: int, codes: npt.NDArray[np.uint16]
) -> npt.NDArray[np.float64]: ...
