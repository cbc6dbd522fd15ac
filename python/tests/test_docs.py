"""The examples in the package's docstrings run as written."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module", ["lloyd._kmeans", "lloyd._faiss", "lloyd._quantize", "lloyd.dask"]
)
def test_docstring_examples(module):
    if module == "lloyd.dask":
        pytest.importorskip("dask.array")
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
