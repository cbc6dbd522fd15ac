"""lloyd's Python results against scikit-learn on its bundled data, and against lloyd's own
CLI for the same seed."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import lloyd

datasets = pytest.importorskip("sklearn.datasets")
cluster = pytest.importorskip("sklearn.cluster")


@pytest.mark.parametrize("name, k", [("load_digits", 10), ("load_iris", 3), ("load_wine", 8)])
def test_same_start_same_fit_as_scikit_learn(name, k):
    X = getattr(datasets, name)().data.astype(np.float64)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        # Rows of integer data (digits) start exact ties (a point as far from two starting
        # rows), which lloyd gives to the lower index and scikit-learn's float rounding to
        # either, and the two paths part from the first iteration: starts off the rows.
        init = X[rng.choice(len(X), k, replace=False)] + rng.normal(0, 1e-3, (k, X.shape[1]))
        ours = lloyd.KMeans(k, init=init, tol=0, max_iter=300, device="cpu").fit(X)
        theirs = cluster.KMeans(k, init=init, n_init=1, tol=0, max_iter=300).fit(X)
        same = (ours.labels_ == theirs.labels_).mean()
        # Near-ties apart (a point equidistant to two centroids to rounding), the same labels.
        d = theirs.transform(X)
        d.sort(axis=1)
        near_tie = (d[:, 1] - d[:, 0]) <= 1e-9 * d[:, 1]
        assert np.all((ours.labels_ == theirs.labels_) | near_tie), (name, seed, same)
        assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-5)


@pytest.mark.parametrize("shift", [0.0, 1e4])
def test_float64_weights_keep_their_precision(shift):
    """scikit-learn's diabetes data (float64, every row twice) with random float64 weights,
    from the same start: the same labels, centroids to a few roundings and the same inertia.
    Rounded to float32, the weights had put the centroids 4e-10 off, and errors measured
    from float32 values had put the inertia 1e-9 off."""
    X = np.vstack([datasets.load_diabetes().data] * 2) + shift
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 3.0, len(X))
    init = X[rng.choice(len(X), 12, replace=False)]
    for weights in (w, None):
        ours = lloyd.KMeans(12, init=init, tol=0, max_iter=40, device="cpu")
        ours.fit(X, sample_weight=weights)
        theirs = cluster.KMeans(12, init=init, n_init=1, tol=0, max_iter=40, algorithm="lloyd")
        theirs.fit(X, sample_weight=weights)
        np.testing.assert_array_equal(ours.labels_, theirs.labels_)
        np.testing.assert_allclose(
            ours.cluster_centers_ - shift,
            theirs.cluster_centers_ - shift,
            rtol=0,
            atol=1e-15 + 2e-16 * shift,
        )
        c = ours.cluster_centers_[ours.labels_]
        wcol = np.ones(len(X)) if weights is None else weights
        direct = np.sum(wcol[:, None] * (X - c) ** 2)
        assert ours.inertia_ == pytest.approx(direct, rel=1e-13)
        assert ours.cluster_centers_.dtype == np.float64


def cli():
    exe = Path(__file__).resolve().parents[2] / "target" / "release" / "lloyd"
    if not exe.exists():
        pytest.skip("the lloyd CLI is not built (cargo build --release)")
    return str(exe)


def test_same_seed_same_result_as_the_cli(tmp_path):
    exe = cli()
    X = datasets.load_digits().data.astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    out = subprocess.run(
        [
            exe,
            "kmeans",
            "--input",
            str(tmp_path / "x.npy"),
            "--k",
            "12",
            "--seed",
            "4",
            "--init",
            "kmeans++",
            "--iterations",
            "50",
            "--device",
            "cpu",
            "--json",
            "--output",
            str(tmp_path / "c.npy"),
            "--labels",
            str(tmp_path / "l.npy"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout)
    km = lloyd.KMeans(12, init="k-means++", max_iter=50, random_state=4, device="cpu").fit(X)
    np.testing.assert_array_equal(km.cluster_centers_, np.load(tmp_path / "c.npy"))
    np.testing.assert_array_equal(km.labels_, np.load(tmp_path / "l.npy"))
    assert km.inertia_ / len(X) == pytest.approx(report["mse"], rel=1e-12)


def test_quantize_equals_the_cli(tmp_path):
    exe = cli()
    out = subprocess.run(
        [
            exe,
            "quantize",
            "--law",
            "normal",
            "--n",
            "20",
            "--samples",
            "100000",
            "--iterations",
            "50",
            "--seed",
            "9",
            "--device",
            "cpu",
            "--tolerance",
            "0",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout)
    q = lloyd.quantize("normal", n=20, samples=100_000, iterations=50, seed=9, device="cpu")
    np.testing.assert_array_equal(q.centroids, report["centroids"])
    assert q.distortion == report["distortion"]
