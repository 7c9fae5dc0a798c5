"""PSI with reference quantile bins, open outer bins, floored empty bins and a missing bin."""

import numpy as np
import pandas as pd
import pytest

from conveyor import distributions

pytestmark = pytest.mark.unit


def test_identical_distribution_has_zero_psi():
    s = pd.Series(np.random.default_rng(0).lognormal(size=10_000))
    spec = distributions.profile_column(s)
    assert distributions.column_psi(spec, s) == 0.0


def test_bins_are_reference_quantiles_with_open_outer_bins():
    s = pd.Series(np.arange(1000, dtype=float))
    spec = distributions.profile_column(s, bins=4)
    assert spec["bins"]["edges"] == pytest.approx([249.75, 499.5, 749.25])
    assert spec["bins"]["fractions"] == pytest.approx([0.25, 0.25, 0.25, 0.25])
    # Values far outside the reference range land in the open outer bins, not nowhere.
    shifted = pd.Series(np.full(100, 5000.0))
    frac = distributions.current_fractions(spec, shifted)
    assert frac.tolist() == [0, 0, 0, 1.0, 0]


def test_long_tail_shift_is_detected():
    rng = np.random.default_rng(1)
    ref = pd.Series(rng.lognormal(3, 1, 20_000))
    cur = pd.Series(rng.lognormal(3.6, 1, 20_000))
    value = distributions.column_psi(distributions.profile_column(ref), cur)
    assert value > 0.25
    assert distributions.band(value) == "major"


def test_psi_matches_hand_computation_and_floors_empty_bins():
    expected = np.array([0.5, 0.5, 0.0])
    actual = np.array([0.25, 0.75, 0.0])
    by_hand = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert distributions.psi(expected, actual) == pytest.approx(by_hand)
    assert np.isfinite(distributions.psi(np.array([1.0, 0.0]), np.array([0.0, 1.0])))


def test_surge_of_nulls_counts_as_drift():
    ref = pd.Series(np.random.default_rng(2).normal(size=5000))
    cur = ref.copy()
    cur.iloc[:2000] = np.nan
    assert distributions.column_psi(distributions.profile_column(ref), cur) > 0.25


def test_categorical_profile_and_unseen_category():
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    spec = distributions.profile_column(ref)
    assert spec["kind"] == "categorical"
    assert spec["bins"]["categories"] == ["a", "b"]
    cur = pd.Series(["a"] * 50 + ["z"] * 50)  # "z" falls in the "other" bin
    assert distributions.current_fractions(spec, cur).tolist() == [0.5, 0.0, 0.5, 0.0]
    assert distributions.column_psi(spec, cur) > 0.25


@pytest.mark.parametrize(("value", "band"), [(0.05, "stable"), (0.2, "moderate"), (0.3, "major")])
def test_bands(value, band):
    assert distributions.band(value) == band


def test_identical_data_has_zero_psi_even_on_rounded_edges():
    """Profile fractions and current fractions bin with the same (stored, rounded) edges."""
    import numpy as np
    import pandas as pd

    from conveyor import distributions

    rng = np.random.default_rng(3)
    # many ties on a value whose 10-decimal rounding lies above it: a quantile edge sits there
    values = np.concatenate([np.full(300, 0.12345678906), rng.uniform(0, 1, 300)])
    series = pd.Series(values)
    assert distributions.column_psi(distributions.profile_column(series), series) == 0.0


# ------------------------------------------------------------------------------ KS p-value
# The drift check's KS p-value is the asymptotic Kolmogorov distribution with Stephens'
# correction (microseconds, no scipy) from an effective size ne = n*m/(n+m) of
# KS_EXACT_BELOW on; below it, scipy's kstwo.sf(d, round(ne)), the p-value it used before.
# Stated tolerance against that exact form: within 5% (relative) wherever the exact p is at
# least 1e-6 (any alpha a policy would use); below 1e-6 both are "far below alpha" and the
# asymptotic one stays below 1e-6 * 1.05.

REL_TOL, P_FLOOR = 0.05, 1e-6
# (n, m) from ne = 100 (the threshold) up to the 1M vs 1M rows (ne = 500,000).
SIZES = [(200, 200), (150, 1_000_000), (1_000, 1_000), (2_000, 5_000), (10_000, 10_000)]


def _exact(d: float, n: int, m: int) -> float:
    from scipy.stats import kstwo

    return float(kstwo.sf(d, round(n * m / (n + m))))


def _stephens(d: float, ne: float) -> float:
    return distributions.kolmogorov_sf((ne**0.5 + 0.12 + 0.11 / ne**0.5) * d)


def _within_tolerance(p: float, exact: float) -> bool:
    if exact < P_FLOOR:
        return p < P_FLOOR * (1 + REL_TOL)
    return abs(p / exact - 1) <= REL_TOL


def test_kolmogorov_sf_is_the_limit_distribution():
    from scipy.stats import kstwobign

    for z in np.linspace(0.0, 8.0, 801):
        assert distributions.kolmogorov_sf(z) == pytest.approx(
            kstwobign.sf(z), rel=1e-12, abs=1e-300
        )


@pytest.mark.parametrize(
    ("n", "m", "lambdas"),
    [
        *((n, m, np.linspace(0.2, 6.0, 30)) for n, m in SIZES),
        (20_000, 1_000_000, np.linspace(0.3, 6.0, 12)),  # scipy's exact form is slow from here:
        (1_000_000, 1_000_000, [0.6, 1.0, 1.36, 2.0]),  # ~0.8 s a call at 1.36 and 2.0
    ],
)
def test_ks_pvalue_agrees_with_scipy_kstwo_within_tolerance(n, m, lambdas):
    ne = n * m / (n + m)
    assert ne >= distributions.KS_EXACT_BELOW
    for lam in lambdas:
        d = lam / ne**0.5
        p, exact = distributions.ks_pvalue(d, n, m), _exact(d, n, m)
        assert _within_tolerance(p, exact), f"n={n} m={m} D={d:.5g}: {p:.6g} vs scipy {exact:.6g}"


@pytest.mark.parametrize("alpha", [0.05, 0.01])
@pytest.mark.parametrize("n, m", [*SIZES, (20_000, 1_000_000)])
def test_ks_pvalue_gives_scipys_verdict_at_alpha_outside_a_tiny_band(n, m, alpha):
    """p < alpha is the verdict check_drift reads: the same as with scipy's exact p, except
    where that p is within 2% of alpha (0.049-0.051 at the default 0.05)."""
    from conveyor.config import DriftPolicy

    assert DriftPolicy().ks_alpha == 0.05  # the configured default is in the grid
    ne = n * m / (n + m)
    critical = {0.05: 1.358, 0.01: 1.628}[alpha] / ne**0.5  # Kolmogorov's critical values
    for d in np.linspace(0.85, 1.15, 31 if ne < 10_000 else 11) * critical:
        p, exact = distributions.ks_pvalue(d, n, m), _exact(d, n, m)
        if (p < alpha) != (exact < alpha):
            assert abs(exact / alpha - 1) <= 0.02, f"n={n} m={m} D={d:.5g}: {p} vs {exact}"


@pytest.mark.parametrize(
    ("n", "m"), [(200, 200), (150, 400), (500, 500), (1000, 4000), (3000, 3000)]
)
def test_ks_pvalue_agrees_with_ks_2samp_on_samples(n, m):
    """Against scipy's two-sample test on real samples (ks_2samp's exact p-value: both sizes
    are small enough for it): within 0.02, the same verdict at 0.05 outside that band.
    Equal sizes are the worst case (the statistic's lattice); scipy's own asymptotic p-value
    is off by as much there (0.028 at 200 vs 200)."""
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(n + m)
    for shift in np.linspace(0.0, 0.4, 9):
        for _ in range(2):
            a, b = rng.normal(0, 1, n), rng.normal(shift, 1, m)
            result = ks_2samp(a, b, method="exact")
            p = distributions.ks_pvalue(float(result.statistic), n, m)
            assert abs(p - result.pvalue) <= 0.02, f"shift {shift}: {p} vs {result.pvalue}"
            if (p < 0.05) != (result.pvalue < 0.05):
                assert abs(result.pvalue - 0.05) <= 0.02


def test_ks_pvalue_below_the_threshold_is_scipys_and_needs_to_be():
    """Below KS_EXACT_BELOW the p-value is scipy's exact one, bit for bit; the asymptotic
    form would break the tolerance there (at ne = 50: 12% off at p ~ 1e-6), while at the
    threshold (ne = 100) it holds (test above, with margin: at most 2.2% off)."""
    assert distributions.KS_EXACT_BELOW == 100
    for n, m in [(30, 40), (100, 150), (199, 199), (100, 1_000_000)]:
        for d in np.linspace(0.01, 0.9, 25):
            assert distributions.ks_pvalue(d, n, m) == _exact(d, n, m)
    exact = {d: _exact(d, 100, 100) for d in np.linspace(0.05, 0.85, 161)}  # ne = 50
    worst = max(abs(_stephens(d, 50) / p - 1) for d, p in exact.items() if p >= P_FLOOR)
    assert worst > REL_TOL


def test_ks_pvalue_of_an_empty_sample_is_one():
    assert distributions.ks_pvalue(0.5, 0, 1000) == 1.0
    assert distributions.ks_pvalue(0.5, 1000, 0) == 1.0
    assert distributions.ks_pvalue(0.0, 10_000, 10_000) == 1.0
