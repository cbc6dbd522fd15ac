"""Progress of a fit: a tqdm-style line on stderr (``verbose``) and the user's callback."""

from __future__ import annotations

import sys
import time
from typing import Callable


def watcher(name: str, total: int, verbose, callback: Callable | None) -> Callable | None:
    """What the extension calls after every iteration with its figures (a dict: iteration,
    mse, distortion, seconds, empty_cells_split); None when nobody listens."""
    if not verbose and callback is None:
        return None
    start = time.perf_counter()

    def watch(stats: dict) -> None:
        if verbose:
            done = stats["iteration"] + 1
            width = 30
            filled = min(width, width * done // max(total, 1))
            bar = "#" * filled + "-" * (width - filled)
            elapsed = time.perf_counter() - start
            sys.stderr.write(
                f"\r{name} |{bar}| {done}/{total} mse {stats['mse']:.6g} [{elapsed:.1f}s]"
            )
            sys.stderr.flush()
        if callback is not None:
            callback(stats)

    return watch
