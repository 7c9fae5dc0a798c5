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
