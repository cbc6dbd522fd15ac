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
    sample_weight: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None,
    spherical: bool,
    callback: Callable[[dict[str, Any]], object] | None = None,
    final_pass: bool = True,
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

class PqCodebook:
    """A trained product quantizer, built once from its stacked centroids."""

    def __init__(self, centroids: npt.NDArray[np.float64], m: int, device: str) -> None: ...
    def encode(
        self, x: npt.NDArray[np.float32] | npt.NDArray[np.float64]
    ) -> npt.NDArray[np.uint8] | npt.NDArray[np.uint16]: ...
    def decode(
        self,
        codes: npt.NDArray[np.uint8] | npt.NDArray[np.uint16],
        out: npt.NDArray[np.float32] | None = None,
    ) -> npt.NDArray[np.float32]: ...

class Frame:
    """The frame of a fit: where every part centres and scales its rows."""

    @property
    def dim(self) -> int: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(bytes: bytes) -> Frame: ...

class Extent:
    """What rows say about the frame; merges exactly with other parts' extents."""

    @staticmethod
    def of(
        x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
        weights: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
    ) -> Extent: ...
    def merge(self, other: Extent) -> Extent: ...
    def including(self, centroids: npt.NDArray[np.float64]) -> Extent: ...
    def frame(self) -> Frame: ...
    @property
    def rows(self) -> int: ...
    @property
    def total_weight(self) -> float: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(bytes: bytes) -> Extent: ...

class LloydStats:
    """One assignment pass's per-cell sums over some rows; merges exactly."""

    @staticmethod
    def compute(
        frame: Frame,
        x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
        centroids: npt.NDArray[np.float64],
        first_row: int,
        weights: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
        device: str = "cpu",
        labels: bool = False,
    ) -> tuple[LloydStats, npt.NDArray[np.int32] | None]: ...
    def merge(self, other: LloydStats) -> LloydStats: ...
    def update(self) -> dict[str, Any]: ...
    @property
    def inertia(self) -> float: ...
    @property
    def counts(self) -> npt.NDArray[np.uint64]: ...
    @property
    def cell_weights(self) -> npt.NDArray[np.float64]: ...
    @property
    def centroids(self) -> npt.NDArray[np.float64]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(bytes: bytes) -> LloydStats: ...

class LloydRun:
    """A Lloyd fit whose passes the caller runs, with a single-machine fit's stop rule."""

    def __init__(
        self,
        frame: Frame,
        init: npt.NDArray[np.float64],
        total_weight: float,
        tol: float,
        spherical: bool,
    ) -> None: ...
    def step(self, stats: LloydStats, seconds: float) -> bool: ...
    @property
    def centroids(self) -> npt.NDArray[np.float64]: ...
    @property
    def converged(self) -> bool: ...
    @property
    def history(self) -> list[dict[str, Any]]: ...
