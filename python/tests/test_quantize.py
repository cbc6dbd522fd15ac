"""lloyd.quantize for numerical probability."""

import numpy as np
import pytest

import lloyd


def seed_lloyd_method_dim_1(N, M, nbr_iter, seed):
    """The field's numpy seed code: randomized Lloyd on M normal samples."""
    rng = np.random.default_rng(seed)
    xs = np.sort(rng.standard_normal(M))
    centroids = np.quantile(xs, (np.arange(N) + 0.5) / N)
    for _ in range(nbr_iter):
        mid = (centroids[1:] + centroids[:-1]) / 2
        cells = np.searchsorted(mid, xs)
        sums = np.bincount(cells, xs, N)
        counts = np.bincount(cells, minlength=N)
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
    mid = (centroids[1:] + centroids[:-1]) / 2
    cells = np.searchsorted(mid, xs)
    probabilities = np.bincount(cells, minlength=N) / M
    distortion = 0.5 * ((xs - centroids[cells]) ** 2).mean()
    return centroids, probabilities, distortion


def test_the_seed_code_becomes_one_call():
    # The seed code's samples, quantized by lloyd: the same fixed point as the seed code's.
    N, M = 10, 20_000
    c, p, dist = seed_lloyd_method_dim_1(N, M, 600, 1)
    xs = np.random.default_rng(1).standard_normal(M)
    q = lloyd.quantize(xs, n=N, iterations=600, device="cpu")
    assert np.all(np.diff(q.centroids) > 0)
    assert q.probabilities.sum() == pytest.approx(1.0)
    assert q.mse == pytest.approx(2 * q.distortion)
    np.testing.assert_allclose(q.centroids, c, atol=1e-6)
    np.testing.assert_allclose(q.probabilities, p, atol=1e-12)
    assert q.distortion == pytest.approx(dist, rel=1e-9)


def test_exact_method_and_cubature():
    q = lloyd.quantize("normal", n=50, method="exact")
    assert q.expectation(np.cos) == pytest.approx(np.exp(-0.5), abs=1e-3)
    assert q.expectation(lambda x: x**2) == pytest.approx(1.0, abs=5e-3)
    # The randomized method approaches the exact optimum.
    r = lloyd.quantize("normal", n=50, samples=500_000, iterations=2000, device="cpu")
    assert r.distortion == pytest.approx(q.distortion, rel=0.02)


def test_other_laws_samples_clvq_and_dimensions():
    u = lloyd.quantize("uniform", n=4, low=0.0, high=1.0, method="exact")
    np.testing.assert_allclose(u.centroids, [0.125, 0.375, 0.625, 0.875], atol=1e-9)
    s = lloyd.quantize(np.random.default_rng(0).exponential(size=100_000), n=8, device="cpu")
    assert s.centroids.shape == (8,)
    c = lloyd.quantize("normal", n=10, method="clvq", iterations=200_000, samples=100_000)
    e = lloyd.quantize("normal", n=10, method="exact")
    assert c.distortion == pytest.approx(e.distortion, rel=0.05)
    d2 = lloyd.quantize("normal", n=16, dim=2, samples=100_000, iterations=30, device="cpu")
    assert d2.centroids.shape == (16, 2)
    # A stationary quantizer keeps the mean and loses its error from the second moment:
    # E|X̂|² = E|X|² − E|X − X̂|² (up to the sampling error of one draw).
    assert d2.expectation(lambda x: (x**2).sum(1)) == pytest.approx(2.0 - d2.mse, rel=0.02)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"law": "cauchy"}, "unknown law"),
        ({"law": "normal", "std": -1.0, "method": "exact"}, "std"),
        ({"law": "normal", "rate": 2.0}, "normal takes"),
        ({"law": "normal", "method": "bogus"}, "unknown method"),
        ({"law": "normal", "n": 0}, "centroid"),
    ],
)
def test_bad_input_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lloyd.quantize(**{"n": 5, "samples": 1000, **kwargs})
