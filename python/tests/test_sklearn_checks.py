"""scikit-learn's own estimator checks on lloyd.KMeans (run where scikit-learn is installed)."""

import pytest

import lloyd

sklearn_checks = pytest.importorskip("sklearn.utils.estimator_checks")

# Declared, with the reason scikit-learn gives for its own KMeans: a random start drawn with
# weights differs from one drawn on repeated rows, so the fits differ.
EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": (
        "sample_weight is not equivalent to removing/repeating samples."
    ),
}


@sklearn_checks.parametrize_with_checks(
    [lloyd.KMeans(n_clusters=2, n_init=2, max_iter=5, device="cpu")],
    expected_failed_checks=lambda est: EXPECTED_FAILURES,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
