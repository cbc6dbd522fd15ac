"""What a Python user expects around a long call: the GIL released, Ctrl-C, progress,
callbacks, and the right exception for each kind of error."""

import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import lloyd


def data(n=20_000, d=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_the_gil_is_released_during_a_fit():
    X = data(100_000, 16)
    done = threading.Event()
    ticks = 0

    def fit():
        lloyd.KMeans(64, max_iter=30, tol=0, random_state=0, device="cpu").fit(X)
        done.set()

    t = threading.Thread(target=fit)
    t.start()
    # Python code keeps running in this thread while lloyd works in the other.
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    t.join()
    assert ticks > 20


def test_a_callback_sees_every_iteration_and_can_stop_the_fit():
    seen = []
    km = lloyd.KMeans(8, max_iter=7, tol=0, random_state=0, device="cpu", callback=seen.append)
    km.fit(data())
    assert [s["iteration"] for s in seen] == list(range(km.n_iter_))
    assert all(s["mse"] > 0 for s in seen)

    class Stop(Exception):
        pass

    def stop(stats):
        if stats["iteration"] == 2:
            raise Stop("enough")

    with pytest.raises(Stop, match="enough"):
        lloyd.KMeans(8, max_iter=50, tol=0, random_state=0, callback=stop).fit(data())
    with pytest.raises(Stop):
        lloyd.quantize("normal", n=10, samples=10_000, iterations=50, callback=stop)


def test_verbose_draws_a_progress_bar_on_stderr(capfd):
    lloyd.KMeans(4, max_iter=5, tol=0, random_state=0, device="cpu", verbose=1).fit(data())
    err = capfd.readouterr().err
    assert "KMeans |" in err and "5/5" in err or "/5 mse" in err


def test_ctrl_c_stops_a_long_fit_within_a_second():
    code = """
import numpy as np, lloyd, sys, time
X = np.random.default_rng(0).standard_normal((300_000, 16)).astype(np.float32)
print("ready", flush=True)
try:
    lloyd.KMeans(256, max_iter=100_000, tol=0, random_state=0, init="random",
                 device="cpu").fit(X)
except KeyboardInterrupt:
    print("interrupted", time.perf_counter(), flush=True)
    sys.exit(3)
print("finished", flush=True)
"""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    sent = time.perf_counter()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 3, out
    words = out.split()
    assert words[0] == "interrupted"
    assert float(words[1]) - sent < 1.0


@pytest.mark.parametrize(
    "call, kind",
    [
        (lambda: lloyd.KMeans(3, device="cpu").fit([[1.0, np.inf], [0, 0], [1, 1]]), ValueError),
        (lambda: lloyd.quantize("normal", n=5, samples=0), ValueError),
        (lambda: lloyd.quantize("normal", n=5, device="gpu:no-such-adapter"), ValueError),
        (lambda: lloyd.ProductQuantizer(10, 3), ValueError),
        (lambda: lloyd.ProductQuantizer.load("/no/such/file.npy"), OSError),
    ],
)
def test_each_error_kind_is_the_right_exception(call, kind):
    with pytest.raises(kind):
        call()
