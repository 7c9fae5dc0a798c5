"""The quality gate: policy rules, fail-closed verdicts, and the reference champion case."""

import json

import pytest

from conveyor import gate
from conveyor.errors import BadInputError

pytestmark = pytest.mark.unit

CHAMPION = {
    "metrics": {"recall": 0.91},
    "slices": {"high_value": {"rows": 120, "metrics": {"recall": 0.88}}},
    "latency_ms": {"p95": 48.0},
}
CANDIDATE = {
    "metrics": {"recall": 0.92},
    "slices": {"high_value": {"rows": 120, "metrics": {"recall": 0.74}}},
    "latency_ms": {"p95": 71.0},
}
REFERENCE_POLICY = """
name: fraud-release
rules:
  - {metric: metrics.recall, max_drop: 0.01}
  - {metric: slices.high_value.metrics.recall, max_drop: 0.02}
  - {metric: latency_ms.p95, max_increase_pct: 10}
"""


def policy(text: str) -> gate.Policy:
    return gate.policy_from_yaml(text, "policy.yaml")


def test_reference_case_rejects_with_values_and_bounds():
    result = gate.decide(policy(REFERENCE_POLICY), CANDIDATE, CHAMPION)
    assert result.verdict == "reject"
    assert result.exit_code == 4
    by_metric = {c.metric: c for c in result.checks}
    recall = by_metric["metrics.recall"]
    assert (recall.status, recall.candidate, recall.champion) == ("pass", 0.92, 0.91)
    assert recall.bound == pytest.approx(0.90)
    high = by_metric["slices.high_value.metrics.recall"]
    assert (high.status, high.candidate, high.champion) == ("fail", 0.74, 0.88)
    assert high.bound == pytest.approx(0.86)
    p95 = by_metric["latency_ms.p95"]
    assert (p95.status, p95.candidate, p95.champion) == ("fail", 71.0, 48.0)
    assert p95.bound == pytest.approx(52.8)
    md = gate.render_markdown(result)
    assert "# Quality gate: REJECT" in md
    assert "| metrics.recall | max_drop | 0.92 | 0.91 | 0.9 | PASS | reject |" in md
    assert "| slices.high_value.metrics.recall | max_drop | 0.74 | 0.88 | 0.86 | FAIL |" in md
    assert "| latency_ms.p95 | max_increase_pct | 71 | 48 | 52.8 | FAIL |" in md
    assert "latency_ms.p95 71 <= champion 48 + 10% = 52.8" in " ".join(result.reasons)


def test_exact_boundary_passes_despite_floating_point():
    cand = {"metrics": {"recall": 0.90}}
    result = gate.decide(policy(REFERENCE_POLICY.split("  - {metric: slices")[0]), cand, CHAMPION)
    assert result.verdict == "approve", result.reasons


@pytest.mark.parametrize("text", ["rules: []", "name: empty"])
def test_empty_policy_holds(text):
    result = gate.decide(policy(text), CANDIDATE)
    assert result.verdict == "hold"
    assert "fails closed" in result.reasons[0]


def test_no_policy_holds():
    assert gate.decide(None, CANDIDATE).verdict == "hold"


def test_missing_metric_holds_even_when_everything_else_passes():
    result = gate.decide(
        policy("rules: [{metric: metrics.recall, min: 0.5}, {metric: metrics.auc, min: 0.5}]"),
        CANDIDATE,
    )
    assert result.verdict == "hold"
    assert "metrics.auc is missing from the candidate's evidence" in result.reasons[0]


def test_null_or_nan_metric_counts_as_missing():
    cand = {"metrics": {"recall": None, "auc": float("nan")}}
    text = "rules: [{metric: metrics.recall, min: 0.1}, {metric: metrics.auc, min: 0.1}]"
    result = gate.decide(policy(text), cand)
    assert [c.status for c in result.checks] == ["missing", "missing"]


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_a_non_finite_candidate_metric_never_passes(value):
    text = """
rules:
  - {metric: metrics.roc_auc, min: 0.8}
  - {metric: metrics.log_loss, max: 0.5, max_increase_pct: 10}
"""
    cand = {"metrics": {"roc_auc": value, "log_loss": value}}
    champ = {"metrics": {"roc_auc": 0.9, "log_loss": 0.3}}
    result = gate.decide(policy(text), cand, champ)
    assert result.verdict == "reject"
    assert [c.status for c in result.checks] == ["fail", "fail", "fail"]
    assert "not a finite number" in result.reasons[0]


def test_a_non_finite_champion_metric_holds_the_comparison_for_a_person():
    text = "rules: [{metric: metrics.log_loss, max: 0.5, max_increase_pct: 10}]"
    result = gate.decide(policy(text), {"metrics": {"log_loss": 0.3}},
                         {"metrics": {"log_loss": float("inf")}})  # fmt: skip
    assert result.verdict == "hold"
    assert [(c.check, c.status) for c in result.checks] == [
        ("max_increase_pct", "missing"), ("max", "pass")
    ]  # fmt: skip
    assert "inf in the champion's evidence" in result.reasons[0]


def test_hold_rule_failure_holds_and_reject_wins_over_hold():
    text = "rules: [{metric: metrics.recall, min: 0.95, on_fail: hold}]"
    assert gate.decide(policy(text), CANDIDATE).verdict == "hold"
    both = policy(
        "rules: [{metric: metrics.recall, min: 0.95, on_fail: hold},"
        " {metric: latency_ms.p95, max: 50}]"
    )
    assert gate.decide(both, CANDIDATE).verdict == "reject"


def test_without_champion_comparisons_are_skipped_and_said():
    text = "rules: [{metric: metrics.recall, min: 0.9, max_drop: 0.01}]"
    result = gate.decide(policy(text), CANDIDATE, None)
    assert result.verdict == "approve"
    assert [c.status for c in result.checks] == ["pass", "skipped"]
    assert "note: no champion, so champion comparisons were skipped" in result.reasons
    assert "champion absent" in gate.render_markdown(result)


def test_metric_missing_from_champion_holds():
    text = "rules: [{metric: metrics.precision, max_drop: 0.01}]"
    cand = {"metrics": {"precision": 0.8}}
    result = gate.decide(policy(text), cand, CHAMPION)
    assert result.verdict == "hold"
    assert "missing from the champion's evidence" in result.reasons[0]


def test_relative_drop_pct_and_absolute_increase():
    cand = {"metrics": {"auc": 0.95}, "latency_ms": {"p95": 50.0}}
    champ = {"metrics": {"auc": 1.0}, "latency_ms": {"p95": 45.0}}
    text = (
        "rules: [{metric: metrics.auc, max_drop_pct: 5}, {metric: latency_ms.p95, max_increase: 4}]"
    )
    checks = gate.decide(policy(text), cand, champ).checks
    assert [(c.status, round(c.bound, 6)) for c in checks] == [("pass", 0.95), ("fail", 49.0)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [{metric: metrics.recall}]", "has no bound"),
        ("rules: [{metric: metrics.recall, max_drop: 0.1, max_increase: 1}]", "mixes max_drop"),
        ("rules: [{metric: metrics.recall, min: 0.1, on_fail: warn}]", r"rules\.0\.on_fail"),
        ("rules: [{metric: metrics.recall, mn: 0.1}]", r"rules\.0\.mn: Extra inputs"),
        ("rules: [{metric: metrics.recall, max_drop: -1}]", r"rules\.0\.max_drop: Input should"),
        ("rules: [{metric: 'metrics..recall', min: 1}]", r"rules\.0\.metric: String should"),
        ("rules: [{metric: m, min: 2, max: 1}]", "min 2 > max 1"),
        # impossible bounds: a rule that could never decide anything is refused at load
        ("rules: [{metric: metrics.roc_auc, min: -0.5}]", r"min -0.5 is outside \[0, 1\]"),
        ("rules: [{metric: metrics.recall, max: 1.5}]", r"max 1.5 is outside \[0, 1\]"),
        ("rules: [{metric: metrics.log_loss, max: -1}]", r"max -1 is outside \[0, inf\]"),
        ("rules: [{metric: metrics.recall, min: .inf}]", "min inf is not a finite number"),
        ("rules: [{metric: metrics.log_loss, max_increase: .inf}]", "max_increase inf is not a"),
    ],
)
def test_invalid_policy_names_the_field(text, message):
    with pytest.raises(BadInputError, match=message):
        policy(text)


def test_example_policy_loads():
    from tests.conftest import EXAMPLES

    loaded = gate.load_policy(EXAMPLES / "gate_policy.yaml")
    assert loaded.rules


def _write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


@pytest.mark.parametrize(
    ("candidate", "champion", "code", "verdict"),
    [
        (CANDIDATE, CHAMPION, 4, "reject"),
        (CHAMPION, CHAMPION, 0, "approve"),
        ({"metrics": {}}, CHAMPION, 3, "hold"),
    ],
)
def test_cli_exit_codes(tmp_path, capsys, candidate, champion, code, verdict):
    from conveyor.cli import main

    args = [
        "gate",
        "--policy",
        _write(tmp_path, "p.yaml", REFERENCE_POLICY),
        "--candidate",
        _write(tmp_path, "cand.json", candidate),
        "--champion",
        _write(tmp_path, "champ.json", champion),
        "--format",
        "json",
        "--report-dir",
        str(tmp_path / "out"),
    ]
    assert main(args) == code
    assert json.loads(capsys.readouterr().out)["verdict"] == verdict
    assert (tmp_path / "out" / "gate.md").is_file()


def test_cli_uses_the_champion_embedded_by_evaluate(tmp_path, capsys):
    from conveyor.cli import main

    cand = _write(tmp_path, "c.json", {**CANDIDATE, "champion": CHAMPION})
    pol = _write(tmp_path, "p.yaml", REFERENCE_POLICY)
    assert main(["gate", "--policy", pol, "--candidate", cand]) == 4
    out = capsys.readouterr().out
    assert out.startswith("verdict: reject")
    assert "[FAIL   ] max_increase_pct" in out


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"p.yaml": "rules: [{metric: x}]", "c.json": "{}"}, "has no bound"),
        ({"p.yaml": REFERENCE_POLICY, "c.json": "{oops"}, "candidate evaluation is not valid JSON"),
        ({"p.yaml": REFERENCE_POLICY, "c.json": "[1]"}, "must be a JSON object, got list"),
        ({"c.json": "{}"}, "p.yaml: gate policy file not found"),
    ],
)
def test_cli_bad_input_exits_2(tmp_path, capsys, files, message):
    from conveyor.cli import main

    for name, text in files.items():
        _write(tmp_path, name, text)
    args = ["gate", "--policy", str(tmp_path / "p.yaml"), "--candidate", str(tmp_path / "c.json")]
    assert main(args) == 2
    assert message in capsys.readouterr().err
