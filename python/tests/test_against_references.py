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
