"""Fault-injection scenarios on real local parts: two kserve.ModelServer processes, nginx
routing the canary split, a real Prometheus scraping both, bounded load, and the analysis.
Every faulty candidate ends rolled back or held, the healthy one promoted, no request lost."""

import json

import pytest

from conveyor.cli import main
from conveyor.local.sim import EXPECTED, run_scenario

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "scenario", ["healthy", "latency", "drift", "no-traffic", "metrics-down", "shadow"]
)
def test_scenario_ends_as_expected(scenario: str) -> None:
    result = run_scenario(scenario, interval=3.0)
    evidence = "\n".join([*result.intervals, f"load held {result.load_rps} rps"])
    assert result.decision == EXPECTED[scenario], evidence
    assert result.lost_requests == 0, result.requests
    if scenario == "healthy":
        assert result.champion_traffic_after == 100  # the router sends everything to v2
        assert "all checks passed" in result.reason
    if scenario == "latency":
        assert "latency_p95" in result.reason and result.champion_traffic_after == 100
    if scenario == "drift":
        assert "score_psi" in result.reason
    if scenario == "no-traffic":
        assert result.requests == {} and "candidate requests" in result.reason
    if scenario == "metrics-down":
        assert "metrics backend unreachable" in result.reason
    if scenario == "shadow":  # mirrored only, then a canary through every step, promoted
        assert "traffic shadow" in result.intervals[0], result.intervals
        assert any("shadow passed 2 intervals: to canary 20 %" in i for i in result.intervals)
        assert result.champion_traffic_after == 100 and result.mirror_after is None
    if scenario != "no-traffic":
        assert result.requests.get(200, 0) > 100  # real traffic went through the router


def test_cli_errors_scenario_rolls_back_within_two_intervals_of_traffic(capsys) -> None:
    assert main(["rollout-sim", "--scenario", "errors", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["final"] == "rolled_back" and doc["ok"] is True
    assert doc["champion_traffic_after"] == 100
    assert doc["requests"].get("500", 0) > 0 and doc["lost_requests"] == 0
    # the first interval may hold no evidence yet (no candidate traffic, or Prometheus has not
    # scraped the scores: inconclusive); from the first with evidence, the rollback comes
    # within failure_threshold (2) intervals
    with_evidence = [line for line in doc["intervals"] if "inconclusive" not in line]
    assert len(with_evidence) <= 2, doc["intervals"]
    assert len(doc["intervals"]) <= 4, doc["intervals"]  # and never more than 2 without


def test_a_faulty_shadow_is_removed_before_any_caller_sees_it() -> None:
    result = run_scenario("shadow-errors", interval=3.0)
    assert result.decision == "rollback", "\n".join(result.intervals)
    assert "error_rate" in result.reason
    assert all("traffic shadow" in line for line in result.intervals), result.intervals
    assert result.mirror_after is None, "the mirror is off"
    # the shadow answered 500s to mirrored copies only: callers saw the champion's answers
    assert set(result.requests) == {200} and result.requests[200] > 100
    assert result.lost_requests == 0
    with_evidence = [line for line in result.intervals if "inconclusive" not in line]
    assert len(with_evidence) <= 2 and len(result.intervals) <= 4, result.intervals
