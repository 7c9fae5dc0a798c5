"""Rollout plans: what load_plan refuses before any rollout starts (issue 17, item 5)."""

import pytest

from conveyor.errors import BadInputError
from conveyor.rollout.plan import load_plan

pytestmark = pytest.mark.unit

PLAN = """
steps: [10, 50, 100]
analysis:
  interval_seconds: 60
  checks:
    - {{name: error_rate, op: {op}, threshold: {threshold}, query: 'sum(rate(x[1m]))'}}
"""


def test_the_shipped_plan_loads() -> None:
    plan = load_plan("examples/fraud/rollout.yaml")
    assert [c.name for c in plan.analysis.checks][:3] == ["error_rate", "latency_p99", "score_psi"]


@pytest.mark.parametrize(
    ("op", "threshold", "message"),
    [
        ("above", "-1", "threshold -1 must be a finite number >= 0"),  # every rollout rolls back
        ("below", "-0.5", "threshold -0.5 must be a finite number >= 0"),  # never fails
        ("ratio_above", ".inf", "threshold inf must be a finite number"),
        ("ratio_above", "0", "threshold 0 for ratio_above fails on any difference"),
        ("psi_above", "0", "threshold 0 for psi_above fails on any difference"),
    ],
)
def test_a_bound_no_rollout_could_live_with_is_refused(tmp_path, op, threshold, message) -> None:
    path = tmp_path / "rollout.yaml"
    path.write_text(PLAN.format(op=op, threshold=threshold))
    with pytest.raises(BadInputError, match=message) as err:
        load_plan(path)
    assert "analysis.checks.0" in str(err.value)  # the field is named


def test_a_zero_error_budget_is_allowed(tmp_path) -> None:
    path = tmp_path / "rollout.yaml"
    path.write_text(PLAN.format(op="above", threshold="0"))  # any error at all fails: strict
    assert load_plan(path).analysis.checks[0].threshold == 0
