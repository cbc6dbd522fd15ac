import numpy as np
import pytest


@pytest.fixture
def blobs():
    """Three well-separated blobs in 5-D, 301 rows (not a multiple of anything)."""
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((3, 5)) * 10
    labels = rng.integers(0, 3, 301)
    return (centers[labels] + rng.standard_normal((301, 5))).astype(np.float32), labels
