"""lloyd.dask on a LocalCluster of two single-threaded worker processes: equal to the
single-machine fit whatever the chunking, weights, k-means‖ quality, a worker lost mid-fit,
resuming, lazy predict/transform, product quantization, and bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import lloyd  # noqa: E402
import lloyd.dask  # noqa: E402
from lloyd import _lloyd  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def blobs(n, d, dtype=np.float32, seed=0, shift=1e4):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, d)) * 10
    x = centres[rng.integers(0, 12, n)] + rng.normal(size=(n, d))
    return (x * 3 + shift).astype(dtype)


def same_fit(a, b):
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.cluster_centers_.dtype == b.cluster_centers_.dtype
    assert a.inertia_ == b.inertia_
    assert [h["mse"] for h in a.history_] == [h["mse"] for h in b.history_]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equal_to_the_single_machine_fit_for_any_chunking(client, dtype):
    x = blobs(12_345, 7, dtype)
    init = x[100:120].astype(np.float64)
    one = lloyd.KMeans(20, init=init, max_iter=60, tol=1e-5, device="cpu").fit(x)
    for chunks in (12_345, 4_000, 999):
        km = lloyd.dask.KMeans(20, init=init, max_iter=60, tol=1e-5, device="cpu")
        km.fit(da.from_array(x, chunks=(chunks, 7)))
        same_fit(km, one)
        np.testing.assert_array_equal(km.labels_.compute(), one.labels_)


def test_weights_equal_the_single_machine_weighted_fit(client):
    x = blobs(6_000, 5, np.float64, seed=1)
    w = (np.arange(6_000) % 4).astype(np.float64)  # zeros included
    init = x[w > 0][:9]
    one = lloyd.KMeans(9, init=init, max_iter=40, tol=0, device="cpu").fit(x, sample_weight=w)
    km = lloyd.dask.KMeans(9, init=init, max_iter=40, tol=0, device="cpu")
    km.fit(da.from_array(x, chunks=(1_700, 5)), sample_weight=da.from_array(w, chunks=2_500))
    same_fit(km, one)
    # Integer weights are repeated rows.
    rep = np.repeat(x, w.astype(int), axis=0)
    plain = lloyd.KMeans(9, init=init, max_iter=40, tol=0, device="cpu").fit(rep)
    np.testing.assert_allclose(km.cluster_centers_, plain.cluster_centers_, rtol=1e-12)


def test_float64_weights_equal_the_single_machine_fit(client):
    # Weights float32 cannot hold: both fits read them as they are.
    x = blobs(5_000, 4, np.float64, seed=3) + 1e4
    w = np.random.default_rng(3).uniform(0.1, 3.0, 5_000)
    init = x[:7]
    one = lloyd.KMeans(7, init=init, max_iter=30, tol=0, device="cpu").fit(x, sample_weight=w)
    rounded = lloyd.KMeans(7, init=init, max_iter=30, tol=0, device="cpu")
    rounded.fit(x, sample_weight=w.astype(np.float32))
    assert not np.array_equal(one.cluster_centers_, rounded.cluster_centers_)
    km = lloyd.dask.KMeans(7, init=init, max_iter=30, tol=0, device="cpu")
    km.fit(da.from_array(x, chunks=(1_234, 4)), sample_weight=da.from_array(w, chunks=2_000))
    same_fit(km, one)


def test_kmeans_parallel_is_within_two_percent_of_kmeans_plus_plus(client):
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32)
    d = da.from_array(x, chunks=(400, 64))
    ours, ref = [], []
    for seed in range(4):
        ours.append(lloyd.dask.KMeans(10, random_state=seed, device="cpu").fit(d).inertia_)
        ref.append(lloyd.KMeans(10, random_state=seed, device="cpu").fit(x).inertia_)
    assert np.mean(ours) <= 1.02 * np.mean(ref), (ours, ref)


def test_random_start_draws_distinct_rows_without_gathering(client):
    x = blobs(5_000, 3, seed=2)
    km = lloyd.dask.KMeans(8, init="random", n_init=2, random_state=3, device="cpu")
    km.fit(da.from_array(x, chunks=(1_234, 3)))
    assert np.isfinite(km.inertia_) and km.cluster_centers_.shape == (8, 3)
    again = lloyd.dask.KMeans(8, init="random", n_init=2, random_state=3, device="cpu")
    np.testing.assert_array_equal(
        again.fit(da.from_array(x, chunks=(1_234, 3))).cluster_centers_, km.cluster_centers_
    )


def test_a_worker_lost_mid_fit_changes_nothing(client):
    x = blobs(20_000, 6, np.float64, seed=4)
    init = x[:16]
    one = lloyd.KMeans(16, init=init, max_iter=30, tol=0, device="cpu").fit(x)
    restarted = []

    def kill_one(entry):
        if entry["iteration"] == 2:
            worker = sorted(client.scheduler_info()["workers"])[0]
            client.restart_workers([worker])
            restarted.append(worker)

    km = lloyd.dask.KMeans(16, init=init, max_iter=30, tol=0, device="cpu", callback=kill_one)
    km.fit(da.from_array(x, chunks=(2_000, 6)))
    assert restarted, "the test must restart a worker"
    same_fit(km, one)


def test_a_fit_resumes_from_its_last_centroids(client):
    x = blobs(8_000, 4, np.float64, seed=5)
    d = da.from_array(x, chunks=(3_000, 4))
    init = x[:10]
    whole = lloyd.dask.KMeans(10, init=init, max_iter=25, tol=0, device="cpu").fit(d)
    first = lloyd.dask.KMeans(10, init=init, max_iter=7, tol=0, device="cpu").fit(d)
    rest = lloyd.dask.KMeans(10, init=first.cluster_centers_, max_iter=18, tol=0, device="cpu")
    rest.fit(d)
    assert first.n_iter_ + rest.n_iter_ == whole.n_iter_
    np.testing.assert_array_equal(rest.cluster_centers_, whole.cluster_centers_)


def test_predict_and_transform_on_blocks_equal_the_whole(client):
    x = blobs(9_000, 5, seed=6)
    d = da.from_array(x, chunks=(2_100, 5))
    km = lloyd.dask.KMeans(12, random_state=0, device="cpu").fit(d)
    one = lloyd.KMeans(12, init=km.cluster_centers_, max_iter=1).fit(x)
    one.cluster_centers_ = km.cluster_centers_
    np.testing.assert_array_equal(km.predict(d).compute(), one.predict(x))
    np.testing.assert_array_equal(km.transform(d).compute(), one.transform(x))
    assert km.score(d) == pytest.approx(one.score(x), rel=1e-12)
    np.testing.assert_array_equal(km.labels_.compute(), km.predict(d).compute())


def test_product_quantizer_equals_kmeans_per_subspace(client):
    x = blobs(4_000, 8, seed=7)
    m, nbits = 4, 4
    rng = np.random.default_rng(0)
    init = np.stack([x[rng.choice(4_000, 16, replace=False), j * 2 : j * 2 + 2] for j in range(m)])
    pq = lloyd.dask.ProductQuantizer(8, m, nbits, niter=15)
    pq.train(da.from_array(x, chunks=(1_500, 8)), init_centroids=init)
    for j in range(m):
        sub = np.ascontiguousarray(x[:, j * 2 : j * 2 + 2])
        one = lloyd.KMeans(16, init=init[j], max_iter=15, tol=0, device="cpu").fit(sub)
        np.testing.assert_array_equal(pq.centroids[j], one.cluster_centers_)
    codes = pq.compute_codes(da.from_array(x, chunks=(1_500, 8)))
    np.testing.assert_array_equal(codes.compute(), pq.compute_codes(x))
    np.testing.assert_array_equal(pq.decode(codes).compute(), pq.decode(pq.compute_codes(x)))


def test_product_quantizer_alike_on_the_cluster_and_in_process(client):
    # One task per worker on the cluster; a task per block and a tree of merges in process.
    x = blobs(5_000, 8, seed=8)
    d = da.from_array(x, chunks=(1_100, 8))
    on_cluster = lloyd.dask.ProductQuantizer(8, 4, 4, niter=6, seed=3)
    on_cluster.train(d)
    with dask.config.set(scheduler="sync"):
        in_process = lloyd.dask.ProductQuantizer(8, 4, 4, niter=6, seed=3)
        in_process.train(da.from_array(x, chunks=(1_100, 8)))
    np.testing.assert_array_equal(on_cluster.centroids, in_process.centroids)
    assert on_cluster.iteration_stats[2][-1]["mse"] == in_process.iteration_stats[2][-1]["mse"]


def test_statistics_pickle_as_their_bytes_and_refuse_others():
    x = blobs(500, 3, np.float64)
    extent = _lloyd.Extent.of(x)
    frame = extent.frame()
    stats, _ = _lloyd.LloydStats.compute(frame, x, x[:4], 0)
    for v in (extent, frame, stats):
        back = pickle.loads(pickle.dumps(v))
        assert back.to_bytes() == v.to_bytes()
    assert pickle.loads(pickle.dumps(frame)) == frame
    b = stats.to_bytes()
    with pytest.raises(ValueError, match="not the bytes of a lloyd LloydStats"):
        _lloyd.LloydStats.from_bytes(b[:-3])
    with pytest.raises(ValueError):
        _lloyd.Frame.from_bytes(b)


@pytest.mark.parametrize(
    "kwargs, x, match",
    [
        ({"n_clusters": 5}, np.full((4, 2), 1.0), "n_samples=4 should be >= n_clusters=5"),
        ({"n_clusters": 2}, np.array([[0.0, np.nan], [1, 1], [2, 2]]), "non-finite|NaN"),
        ({"n_clusters": 2, "init": "nope"}, np.ones((4, 2)), "init must be"),
        ({"n_clusters": 2, "max_iter": 0}, np.ones((4, 2)), "max_iter"),
        ({"n_clusters": 2, "init": np.ones((3, 2))}, np.ones((4, 2)), "init has shape"),
    ],
)
def test_bad_input_is_one_value_error(kwargs, x, match):
    with pytest.raises(ValueError, match=match):
        lloyd.dask.KMeans(device="cpu", **kwargs).fit(da.from_array(x, chunks=(2, 2)))


def test_bad_weights_are_refused():
    x = da.from_array(np.arange(20.0).reshape(10, 2), chunks=(4, 2))
    km = lloyd.dask.KMeans(2, device="cpu")
    with pytest.raises(ValueError, match="non-negative"):
        km.fit(x, sample_weight=-np.ones(10))
    with pytest.raises(ValueError, match="10 rows"):
        km.fit(x, sample_weight=np.ones(9))
    with pytest.raises(ValueError, match="positive weight"):
        km.fit(x, sample_weight=np.r_[1.0, np.zeros(9)])


def test_gpu_workers_agree_with_the_cpu(client):
    if not lloyd.devices():
        pytest.skip("no GPU adapter")
    x = blobs(5_000, 6, seed=8)
    d = da.from_array(x, chunks=(1_800, 6))
    init = x[:10].astype(np.float64)
    cpu = lloyd.dask.KMeans(10, init=init, max_iter=10, tol=0, device="cpu").fit(d)
    gpu = lloyd.dask.KMeans(10, init=init, max_iter=10, tol=0, device="gpu").fit(d)
    assert gpu.inertia_ == pytest.approx(cpu.inertia_, rel=1e-5)
    np.testing.assert_allclose(gpu.cluster_centers_, cpu.cluster_centers_, rtol=1e-5)
