"""The accuracy interval and McNemar's test (SciPy's exact binomial test) against known values:
independent closed forms, and the numbers statsmodels gave before it was dropped. Fast tier."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import beta

from fmnist.errors import FmnistError
from fmnist.evaluation.metrics import accuracy_ci, mcnemar_exact


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n", "statsmodels_wilson", "statsmodels_exact"), [
    (81, 100, (0.7222115462093562, 0.8748524849023126), (0.7193020420263876, 0.8815568038674564)),
    (9500, 10000, (0.9455528841569758, 0.9541015173094152),
     (0.9455454729716412, 0.9541900578012295)),
    (1, 3, (0.06149194472039626, 0.7923403991979523), (0.008403758659612636, 0.9057006759497539)),
])
def test_accuracy_intervals_match_known_values(k, n, statsmodels_wilson, statsmodels_exact):
    wilson = accuracy_ci(k, n, "wilson")
    assert wilson == pytest.approx(_wilson(k, n), abs=1e-12)
    assert wilson == pytest.approx(statsmodels_wilson, abs=1e-12)
    exact = accuracy_ci(k, n, "clopper-pearson")
    clopper = (beta.ppf(0.025, k, n - k + 1), beta.ppf(0.975, k + 1, n - k))
    assert exact == pytest.approx(clopper, abs=1e-10)
    assert exact == pytest.approx(statsmodels_exact, abs=1e-10)


def test_interval_edges_and_errors():
    assert accuracy_ci(50, 50, "clopper-pearson")[1] == 1.0
    assert accuracy_ci(0, 50, "wilson")[0] == 0.0
    with pytest.raises(FmnistError, match="unknown CI method"):
        accuracy_ci(1, 2, "bootstrap")
    with pytest.raises(ValueError, match="zero images"):
        accuracy_ci(0, 0)


def _correctness(only_a: int, only_b: int, both: int = 40, neither: int = 5):
    a = [True] * only_a + [False] * only_b + [True] * both + [False] * neither
    b = [False] * only_a + [True] * only_b + [True] * both + [False] * neither
    return np.array(a), np.array(b)


@pytest.mark.parametrize(("only_a", "only_b", "statsmodels_p"), [
    (10, 2, 0.03857421875), (30, 45, 0.10534226887460482), (0, 7, 0.015625),
    (500, 560, 0.06990955946026937), (3, 3, 1.0),
])
def test_mcnemar_exact_matches_the_binomial_sum(only_a, only_b, statsmodels_p):
    result = mcnemar_exact(*_correctness(only_a, only_b))
    n, k = only_a + only_b, min(only_a, only_b)
    two_sided = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)
    assert result.pvalue == pytest.approx(two_sided, rel=1e-12)
    assert result.pvalue == pytest.approx(statsmodels_p, rel=1e-12)
    assert (result.only_a, result.only_b, result.both_right, result.both_wrong) == (
        only_a, only_b, 40, 5)


def test_mcnemar_without_discordant_pairs_is_no_evidence():
    assert mcnemar_exact(*_correctness(0, 0)).pvalue == 1.0
