"""lloyd.Kmeans and lloyd.ProductQuantizer as a faiss user meets them."""

import pickle
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import lloyd


def test_kmeans_train_search_and_obj():
    x = np.random.default_rng(0).standard_normal((2000, 8)).astype(np.float32)
    km = lloyd.Kmeans(8, 20, niter=10, seed=3)
    last = km.train(x)
    assert km.centroids.shape == (20, 8) and km.centroids.dtype == np.float32
    assert len(km.obj) == 10 and last == pytest.approx(km.obj[-1])
    assert np.all(np.diff(km.obj) <= 1e-6 * km.obj[0])  # Lloyd never increases the error
    D, index = km.index.search(x, 1)
    assert D.shape == (2000, 1) and index.dtype == np.int64
    d2 = ((x[:, None] - km.centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(index[:, 0], d2.argmin(1))
    np.testing.assert_allclose(D[:, 0], d2.min(1), rtol=1e-4, atol=1e-5)
    D3, I3 = km.index.search(x, 3)
    np.testing.assert_array_equal(I3[:, 0], index[:, 0])
    np.testing.assert_array_equal(I3, np.argsort(d2, 1, kind="stable")[:, :3])
    assert np.all(np.diff(D3, axis=1) >= 0)
    with pytest.raises(ValueError):
        km.index.search(x, 0)


def test_kmeans_train_is_kmeans_fit_without_its_last_pass():
    """train skips the pass that labels the final centroids (faiss's train returns none),
    and gives the same centroids and objectives as the estimator, weighted or not."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 12)).astype(np.float32)
    w = rng.uniform(0.1, 3.0, 3000).astype(np.float32)
    init = x[:10].copy()
    for weights in (None, w):
        km = lloyd.Kmeans(12, 10, niter=6)
        km.train(x, weights=weights, init_centroids=init)
        est = lloyd.KMeans(10, init=init, max_iter=6, tol=0).fit(x, sample_weight=weights)
        np.testing.assert_array_equal(km.centroids, est.cluster_centers_.astype(np.float32))
        total = 3000.0 if weights is None else float(np.sum(w, dtype=np.float64))
        want = [h["mse"] * total for h in est.history_]
        np.testing.assert_allclose(km.obj, want, rtol=1e-12)


def test_kmeans_from_init_centroids_matches_faiss_when_installed():
    faiss = pytest.importorskip("faiss")
    x = np.random.default_rng(1).standard_normal((3000, 6)).astype(np.float32)
    init = x[:12].copy()
    ours = lloyd.Kmeans(6, 12, niter=15)
    ours.train(x, init_centroids=init)
    theirs = faiss.Kmeans(6, 12, niter=15, max_points_per_centroid=10**6)
    theirs.train(x, init_centroids=init)
    _, ia = ours.index.search(x, 1)
    _, ib = theirs.index.search(x, 1)
    assert (ia[:, 0] == ib[:, 0]).mean() > 0.999
    np.testing.assert_allclose(ours.centroids, theirs.centroids, rtol=1e-3, atol=1e-4)


def test_product_quantizer_round_trip_and_search(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    pq = lloyd.ProductQuantizer(16, 4, 5, niter=10)
    pq.train(x)
    codes = pq.compute_codes(x)
    assert codes.shape == (3000, 4) and codes.dtype == np.uint8 and codes.max() < 32
    y = pq.decode(codes)
    assert y.shape == x.shape
    assert ((x - y) ** 2).sum(1).mean() < (x**2).sum(1).mean() * 0.7
    # Asymmetric search: the same order as exact distances to the decoded vectors.
    D, index = pq.search(x[:5], codes, 3)
    exact = ((x[:5, None] - y[None]) ** 2).sum(-1)
    np.testing.assert_allclose(D, np.sort(exact, 1)[:, :3], rtol=1e-4, atol=1e-4)
    # Saved as the CLI's .npy, loaded back to the same codes.
    path = tmp_path / "pq.npy"
    pq.save(path)
    again = lloyd.ProductQuantizer.load(path)
    np.testing.assert_array_equal(again.compute_codes(x), codes)
    with pytest.raises(ValueError, match="not a regular file"):
        pq.save(tmp_path)


def test_product_quantizer_encodes_on_the_cpu_it_was_given(capfd):
    """gpu=False encodes on the CPU: it used to open the "auto" device on every call,
    probing the GPU adapters (and saying so on stderr) each time."""
    x = np.random.default_rng(3).standard_normal((500, 8)).astype(np.float32)
    pq = lloyd.ProductQuantizer(8, 2, 4, niter=5)
    pq.train(x)
    capfd.readouterr()
    pq.compute_codes(x)
    assert "device auto" not in capfd.readouterr().err


def test_pq_codebook_is_the_clis(tmp_path):
    built = Path(__file__).resolve().parents[2] / "target" / "release" / "lloyd"
    exe = str(built) if built.exists() else shutil.which("lloyd")
    if exe is None:
        pytest.skip("the lloyd CLI is neither built (cargo build --release) nor on PATH")
    x = np.random.default_rng(3).standard_normal((500, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    pq = lloyd.ProductQuantizer(8, 2, 4)
    pq.train(x)
    pq.save(tmp_path / "pq.npy")
    subprocess.run(
        [
            exe,
            "pq",
            "encode",
            "--codebook",
            str(tmp_path / "pq.npy"),
            "--input",
            str(tmp_path / "x.npy"),
            "--output",
            str(tmp_path / "c.npy"),
        ],
        check=True,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), pq.compute_codes(x))


def _pq_and_codes(seed, n):
    """A (16, 4, 6) quantizer trained on n normal rows, and their codes."""
    x = np.random.default_rng(seed).normal(size=(n, 16)).astype(np.float32)
    pq = lloyd.ProductQuantizer(16, 4, 6, niter=5)
    pq.train(x)
    return pq, pq.compute_codes(x)


def test_pq_decode_into_a_callers_buffer():
    pq, codes = _pq_and_codes(4, 2500)
    want = pq.decode(codes)
    out = np.full((1000, 16), np.nan, dtype=np.float32)
    # Batch after batch into one buffer, the last one short (a view of its first rows).
    for start in range(0, 2500, 1000):
        batch = codes[start : start + 1000]
        got = pq.decode(batch, out=out[: len(batch)])
        assert np.shares_memory(got, out)
        np.testing.assert_array_equal(got, want[start : start + 1000])
    assert pq.decode(codes[:1000], out=out) is out
    with pytest.raises(TypeError, match="float32"):
        pq.decode(codes[:1000], out=np.empty((1000, 16)))
    with pytest.raises(TypeError, match="float32"):
        pq.decode(codes[:1000], out=[[0.0] * 16] * 1000)
    with pytest.raises(ValueError, match="shape"):
        pq.decode(codes[:1000], out=np.empty((999, 16), dtype=np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        pq.decode(codes[:1000], out=np.empty((16, 1000), dtype=np.float32).T)
    frozen = np.empty((1000, 16), dtype=np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        pq.decode(codes[:1000], out=frozen)
    # Codes that live inside the output's memory would be overwritten while read.
    shared = np.zeros(1000 * 16, dtype=np.float32)
    inside = shared.view(np.uint8)[: 1000 * 4].reshape(1000, 4)
    inside[:] = codes[:1000]
    with pytest.raises(ValueError, match="share memory"):
        pq.decode(inside, out=shared.reshape(1000, 16))


def test_pq_keeps_its_quantizer_only_while_the_centroids_stay():
    pq, codes = _pq_and_codes(5, 2000)
    before = pq.decode(codes)
    # The centroids cannot change in place under the kept quantizer ...
    with pytest.raises(ValueError, match="read-only"):
        pq.centroids[0, 0, 0] = 1.0
    view = pq.centroids
    with pytest.raises(ValueError, match="WRITEABLE"):
        view.flags.writeable = True
    # ... and new ones, assigned, are what the next call decodes and encodes with.
    moved = pq.centroids + np.float32(3.0)
    pq.centroids = moved
    np.testing.assert_array_equal(pq.decode(codes), before + np.float32(3.0))
    np.testing.assert_array_equal(pq.compute_codes(before + np.float32(3.0)), codes)
    with pytest.raises(ValueError, match="shape"):
        pq.centroids = moved[:, :5]
    bad = moved.copy()
    bad[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        pq.centroids = bad
    np.testing.assert_array_equal(pq.centroids, moved)
    # A pickled copy (as Dask ships one) leaves the kept quantizer behind and decodes alike.
    back = pickle.loads(pickle.dumps(pq))
    np.testing.assert_array_equal(back.decode(codes), pq.decode(codes))
    np.testing.assert_array_equal(back.compute_codes(before), pq.compute_codes(before))
    # A pickle of an earlier version, its centroids under their public name, still loads.
    state = {k: v for k, v in pq.__getstate__().items() if k != "_centroids"}
    state["centroids"] = np.array(pq.centroids)
    old = lloyd.ProductQuantizer.__new__(lloyd.ProductQuantizer)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.decode(codes), pq.decode(codes))
    assert not old.centroids.flags.writeable


def test_pq_decode_takes_any_integer_codes_and_refuses_out_of_range():
    pq, codes = _pq_and_codes(3, 3000)
    want = pq.decode(codes)
    assert want.dtype == np.float32 and want.shape == (3000, 16)
    np.testing.assert_array_equal(pq.decode(codes.astype(np.int64)), want)
    np.testing.assert_array_equal(pq.decode(codes.astype(np.uint16)), want)
    np.testing.assert_array_equal(want[5], pq.centroids[np.arange(4), codes[5]].ravel())
    bad = codes.astype(np.int64)
    bad[7, 2] = 64
    with pytest.raises(ValueError, match="out of range"):
        pq.decode(bad)
    bad[7, 2] = -1
    with pytest.raises(ValueError, match="out of range"):
        pq.decode(bad)
    with pytest.raises(ValueError):
        pq.decode(np.full((2, 4), 64, dtype=np.uint8))
