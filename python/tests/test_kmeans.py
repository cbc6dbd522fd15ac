"""lloyd.KMeans as a scikit-learn user meets it."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

import lloyd


def brute_labels(X, C):
    d = ((X[:, None, :].astype(np.float64) - C[None].astype(np.float64)) ** 2).sum(-1)
    return d.argmin(1)


def test_fit_gives_the_fitted_attributes(blobs):
    X, _ = blobs
    km = lloyd.KMeans(n_clusters=3, random_state=0, device="cpu").fit(X)
    assert km.cluster_centers_.shape == (3, 5)
    assert km.cluster_centers_.dtype == np.float32
    assert km.labels_.shape == (301,)
    assert km.n_features_in_ == 5
    assert km.n_iter_ >= 1
    # Every label is the nearest of the centroids returned.
    np.testing.assert_array_equal(km.labels_, brute_labels(X, km.cluster_centers_))
    d2 = ((X - km.cluster_centers_[km.labels_]).astype(np.float64) ** 2).sum()
    assert km.inertia_ == pytest.approx(d2, rel=1e-5)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    assert km.score(X) == pytest.approx(-km.inertia_, rel=1e-6)
    t = km.transform(X)
    assert t.shape == (301, 3)
    np.testing.assert_array_equal(t.argmin(1), km.labels_)


def test_float32_input_is_used_in_place_and_float64_stays_float64(blobs):
    X, _ = blobs
    from lloyd._arrays import as_rows

    # What the extension receives is the caller's array itself: no copy.
    assert as_rows(X) is X
    km = lloyd.KMeans(n_clusters=3, random_state=1, device="cpu").fit(X.astype(np.float64))
    assert km.cluster_centers_.dtype == np.float64
    # Integer and Fortran-ordered inputs are converted once.
    km2 = lloyd.KMeans(n_clusters=3, random_state=1, device="cpu").fit(
        np.asfortranarray((X * 100).astype(np.int32))
    )
    assert km2.cluster_centers_.shape == (3, 5)


def test_same_seed_same_result_and_pickle_round_trip(blobs):
    X, _ = blobs
    a = lloyd.KMeans(n_clusters=4, random_state=5, device="cpu").fit(X)
    b = lloyd.KMeans(n_clusters=4, random_state=5, device="cpu").fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(c.predict(X), a.labels_)


def test_shift_and_scale_give_the_same_labels(blobs):
    X, _ = blobs
    X = X.astype(np.float64)
    base = lloyd.KMeans(n_clusters=6, random_state=3, device="cpu").fit(X).labels_
    for Y in (X + 1e4, X * 2.0**40, X * 2.0**-40):
        labels = lloyd.KMeans(n_clusters=6, random_state=3, device="cpu").fit(Y).labels_
        np.testing.assert_array_equal(labels, base)


def test_given_centroids_and_weights(blobs):
    X, _ = blobs
    init = X[:3].astype(np.float64)
    km = lloyd.KMeans(n_clusters=3, init=init, device="cpu").fit(X)
    w = np.ones(len(X))
    km_w = lloyd.KMeans(n_clusters=3, init=init, device="cpu").fit(X, sample_weight=w * 3)
    np.testing.assert_allclose(km_w.cluster_centers_, km.cluster_centers_, rtol=1e-6)
    assert km_w.inertia_ == pytest.approx(3 * km.inertia_, rel=1e-6)
    # Integer weights: a row of weight 2 pulls its centroid as two copies do.
    w = np.ones(len(X))
    w[:10] = 2
    km_w = lloyd.KMeans(n_clusters=3, init=init, device="cpu").fit(X, sample_weight=w)
    km_r = lloyd.KMeans(n_clusters=3, init=init, device="cpu").fit(np.vstack([X, X[:10]]))
    np.testing.assert_allclose(km_w.cluster_centers_, km_r.cluster_centers_, rtol=1e-5)


def test_agrees_with_scikit_learn_from_the_same_start(blobs):
    sklearn = pytest.importorskip("sklearn.cluster")
    X, _ = blobs
    init = X[[0, 50, 100, 150]].astype(np.float64)
    ours = lloyd.KMeans(n_clusters=4, init=init, tol=0, device="cpu").fit(X.astype(np.float64))
    theirs = sklearn.KMeans(n_clusters=4, init=init, n_init=1, tol=0).fit(X.astype(np.float64))
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    # lloyd sums in float32 relative to the data's spread (its frame): centroids to ~1e-7 of
    # that spread, the inertia to ~1e-7 of itself.
    spread = np.ptp(X)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, atol=1e-6 * spread)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-6)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_clusters": 500}, "n_samples=301 should be >= n_clusters=500"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"init": "bogus"}, "init"),
        ({"init": np.zeros((2, 5))}, "init has shape"),
        ({"n_init": 0}, "n_init"),
        ({"device": "tpu"}, "unknown device"),
    ],
)
def test_bad_parameters_raise_value_error(blobs, params, match):
    X, _ = blobs
    with pytest.raises(ValueError, match=match):
        lloyd.KMeans(**{"n_clusters": 3, **params}).fit(X)


def test_bad_data_raises_value_error(blobs):
    X, _ = blobs
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError):
        lloyd.KMeans(n_clusters=3, device="cpu").fit(bad)
    with pytest.raises(ValueError):
        lloyd.KMeans(n_clusters=3, device="cpu").fit(X, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError):
        lloyd.KMeans(n_clusters=3, device="cpu").fit(X[:, :0])
    # Beyond what the arithmetic holds: refused with the reason, never NaN.
    with pytest.raises(ValueError):
        lloyd.KMeans(n_clusters=2, device="cpu").fit(np.array([[1e308], [-1e308], [0.0]]))
    km = lloyd.KMeans(n_clusters=3, device="cpu").fit(X)
    with pytest.raises(ValueError, match="features"):
        km.predict(X[:, :4])


def test_predict_before_fit_raises():
    with pytest.raises((ValueError, AttributeError)):
        lloyd.KMeans().predict(np.zeros((2, 2)))


def test_gpu_agrees_with_cpu_when_there_is_one(blobs):
    if not lloyd.devices():
        pytest.skip("no GPU adapter")
    X, _ = blobs
    init = X[:5].astype(np.float64)
    cpu = lloyd.KMeans(n_clusters=5, init=init, device="cpu").fit(X)
    gpu = lloyd.KMeans(n_clusters=5, init=init, device="gpu").fit(X)
    np.testing.assert_array_equal(cpu.labels_, gpu.labels_)
    np.testing.assert_allclose(gpu.cluster_centers_, cpu.cluster_centers_, rtol=1e-5, atol=1e-5)


def test_works_without_scikit_learn():
    """scikit-learn is optional: with it hidden, the estimator still fits, predicts and
    clones its parameters."""
    code = """
import sys
sys.modules["sklearn"] = None
import numpy as np, lloyd
X = np.random.default_rng(0).standard_normal((200, 3))
km = lloyd.KMeans(n_clusters=4, random_state=0, device="cpu")
assert km.get_params()["n_clusters"] == 4
labels = km.fit_predict(X)
assert (km.predict(X) == labels).all() and km.transform(X).shape == (200, 4)
try:
    lloyd.KMeans().predict(X)
except ValueError:
    pass
else:
    raise SystemExit("no error before fit")
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_dataframe_columns_become_feature_names_in():
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    km = lloyd.KMeans(4, random_state=0, device="cpu").fit(df)
    assert list(km.feature_names_in_) == ["a", "b", "c"]
    assert km.n_features_in_ == 3
    np.testing.assert_array_equal(km.predict(df), km.labels_)
    with pytest.raises(ValueError, match="feature names"):
        km.predict(df.rename(columns={"a": "z"}))
