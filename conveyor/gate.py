"""quality_gate: a policy turns evidence into approve | hold | reject, and fails closed.

A rule bounds one metric (a dotted path into evaluation.json) absolutely (``min``/``max``)
and/or against the champion (``max_drop``/``max_drop_pct`` for higher-is-better metrics,
``max_increase``/``max_increase_pct`` for lower-is-better ones). No policy, an empty policy or
a missing metric is never an approval (TFX's lesson): at best it is a hold for a person.
"""

import html
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import Field, model_validator

from conveyor.config import StrictModel, load_model, model_from_yaml

__all__ = [
    "EXIT_CODES",
    "GateResult",
    "Policy",
    "decide",
    "load_policy",
    "policy_from_yaml",
    "render_html",
    "render_markdown",
    "render_text",
]


Verdict = Literal["approve", "hold", "reject"]
EXIT_CODES: dict[str, int] = {"approve": 0, "hold": 3, "reject": 4}
TOLERANCE = 1e-9  # 0.91 - 0.01 is 0.9000000000000001 in floating point
RELATIVE = ("max_drop", "max_drop_pct", "max_increase", "max_increase_pct")
# The range each metric evaluate writes can take (by the last part of its path): a bound
# outside it can never fail (min 0 on a rate) or never pass, so a policy with one is refused.
RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(
        ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "positive_rate",
         "predicted_positive_rate", "disparate_impact", "max_gap"),
        (0.0, 1.0),
    ),
    "log_loss": (0.0, math.inf),
    "rows": (0.0, math.inf),
}  # fmt: skip


class Rule(StrictModel):
    """Bounds on one metric of the evaluation, absolute and/or against the champion's value."""

    metric: str = Field(
        pattern=r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$",
        description="dotted path of a number in evaluation.json, e.g. metrics.roc_auc or "
        "slices.high_value.metrics.recall; missing from the evidence: a hold",
    )
    min: float | None = Field(None, description="the candidate's value must be at least this")
    max: float | None = Field(None, description="the candidate's value must be at most this")
    max_drop: float | None = Field(
        None,
        ge=0,
        description="higher-is-better metric: at most this much below the champion's value "
        "(skipped without a champion)",
    )
    max_drop_pct: float | None = Field(
        None,
        ge=0,
        le=100,
        description="higher-is-better metric: at most this % below the champion's value "
        "(skipped without a champion)",
    )
    max_increase: float | None = Field(
        None,
        ge=0,
        description="lower-is-better metric (log_loss, latency): at most this much above the "
        "champion's value (skipped without a champion)",
    )
    max_increase_pct: float | None = Field(
        None,
        ge=0,
        description="lower-is-better metric: at most this % above the champion's value "
        "(skipped without a champion)",
    )
    on_fail: Literal["reject", "hold"] = Field(
        "reject",
        description="verdict when a bound fails: reject (not registered) or hold (registered "
        "as held, not deployable, for a person to decide)",
    )
    description: str | None = Field(
        None, description="a note for people reading the policy; the gate does not read it"
    )

    @model_validator(mode="after")
    def _has_bound(self) -> "Rule":
        if all(getattr(self, k) is None for k in ("min", "max", *RELATIVE)):
            raise ValueError(f"rule for {self.metric!r} has no bound (min, max, max_drop, ...)")
        drops = self.max_drop is not None or self.max_drop_pct is not None
        rises = self.max_increase is not None or self.max_increase_pct is not None
        if drops and rises:
            raise ValueError(
                f"rule for {self.metric!r} mixes max_drop* (higher is better) with "
                "max_increase* (lower is better)"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"rule for {self.metric!r}: min {self.min:g} > max {self.max:g}")
        for kind in ("min", "max", *RELATIVE):
            value = getattr(self, kind)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"rule for {self.metric!r}: {kind} {value} is not a finite number")
        low, high = RANGES.get(self.metric.rsplit(".", 1)[-1], (-math.inf, math.inf))
        for kind in ("min", "max"):
            value = getattr(self, kind)
            if value is not None and not low <= value <= high:
                raise ValueError(
                    f"rule for {self.metric!r}: {kind} {value:g} is outside [{low:g}, {high:g}], "
                    "the values this metric can take, so the rule could never decide anything"
                )
        return self


class Policy(StrictModel):
    name: str = Field(
        "gate", description="the policy's name, recorded in gate.json and the run tag gate.policy"
    )
    rules: list[Rule] = Field(
        default_factory=list,
        description="rules checked on every candidate; none: every candidate is held (the "
        "gate fails closed)",
    )


def load_policy(path: str | os.PathLike[str]) -> Policy:
    return load_model(Policy, path, "gate policy")


def policy_from_yaml(text: str, source: str = "policy") -> Policy:
    return model_from_yaml(Policy, text, source)


def lookup(doc: dict[str, Any] | None, path: str) -> float | None:
    """The number at a dotted path, or None when it is absent, null, NaN or not a number."""
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return None if math.isnan(float(node)) else float(node)


@dataclass
class Check:
    metric: str
    check: str  # min | max | max_drop | max_drop_pct | max_increase | max_increase_pct
    on_fail: str
    candidate: float | None
    champion: float | None
    bound: float | None
    status: str  # pass | fail | missing | skipped
    detail: str


@dataclass
class GateResult:
    verdict: Verdict
    reasons: list[str]
    checks: list[Check] = field(default_factory=list)
    policy: str = "gate"
    champion_present: bool = False

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": self.reasons,
            "policy": self.policy,
            "champion_present": self.champion_present,
            "checks": [asdict(c) for c in self.checks],
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "GateResult":
        """Read back what ``to_dict`` wrote (gate.json)."""
        return cls(
            doc["verdict"],
            doc["reasons"],
            [Check(**c) for c in doc["checks"]],
            doc["policy"],
            doc["champion_present"],
        )


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _relative_bound(kind: str, limit: float, champion: float) -> tuple[float, str, bool]:
    """(threshold, description, higher_is_better) of a champion-relative bound."""
    if kind == "max_drop":
        return champion - limit, f">= champion {champion:.4g} - {limit:g}", True
    if kind == "max_drop_pct":
        bound = champion * (1 - limit / 100)
        return bound, f">= champion {champion:.4g} - {limit:g}%", True
    if kind == "max_increase":
        return champion + limit, f"<= champion {champion:.4g} + {limit:g}", False
    bound = champion * (1 + limit / 100)
    return bound, f"<= champion {champion:.4g} + {limit:g}%", False


def _checks(rule: Rule, candidate: dict[str, Any], champion: dict[str, Any] | None) -> list[Check]:
    cand = lookup(candidate, rule.metric)
    champ = lookup(champion, rule.metric) if champion is not None else None
    out: list[Check] = []

    def add(kind: str, bound: float | None, status: str, detail: str) -> None:
        out.append(Check(rule.metric, kind, rule.on_fail, cand, champ, bound, status, detail))

    # Infinity is what a broken evaluation writes (a log loss of a 0/1 score, a division by
    # zero): it never passes a bound, whichever side of it the bound is.
    # A broken champion value cannot be compared with: a hold for a person, not a reject.
    def broken(who: str, value: float | None, kinds: tuple[str, ...], status: str) -> bool:
        if value is None or math.isfinite(value):
            return False
        for kind in kinds:
            if getattr(rule, kind) is not None:
                add(kind, getattr(rule, kind), status,
                    f"{rule.metric} is {value} in the {who}'s evidence: not a finite number, "
                    "so it never passes (check the evaluation)")  # fmt: skip
        return True

    if broken("candidate", cand, ("min", "max", *RELATIVE), "fail"):
        return out
    champion_broken = broken("champion", champ, RELATIVE, "missing")

    for kind in ("min", "max"):
        limit = getattr(rule, kind)
        if limit is None:
            continue
        if cand is None:
            add(kind, limit, "missing", f"{rule.metric} is missing from the candidate's evidence")
            continue
        ok = cand >= limit - TOLERANCE if kind == "min" else cand <= limit + TOLERANCE
        sign = ">=" if kind == "min" else "<="
        add(kind, limit, "pass" if ok else "fail", f"{rule.metric} {_fmt(cand)} {sign} {limit:g}")

    for kind in RELATIVE:
        limit = getattr(rule, kind)
        if limit is None or champion_broken:
            continue
        if champion is None:
            add(kind, None, "skipped", "no champion: comparison skipped")
            continue
        if cand is None or champ is None:
            who = "candidate" if cand is None else "champion"
            add(kind, None, "missing", f"{rule.metric} is missing from the {who}'s evidence")
            continue
        bound, text, higher = _relative_bound(kind, limit, champ)
        bound = round(bound, 10)  # 52.800000000000004 -> 52.8 in gate.json
        ok = cand >= bound - TOLERANCE if higher else cand <= bound + TOLERANCE
        verb = "pass" if ok else "fail"
        add(kind, bound, verb, f"{rule.metric} {_fmt(cand)} {text} = {bound:.4g}")
    return out


def decide(
    policy: Policy | None, candidate: dict[str, Any], champion: dict[str, Any] | None = None
) -> GateResult:
    """Apply ``policy`` to the candidate's evaluation (and the champion's, when there is one)."""
    if policy is None or not policy.rules:
        return GateResult(
            "hold",
            ["the policy has no rules: nothing proves the candidate is fit (fails closed)"],
            policy=policy.name if policy else "none",
            champion_present=champion is not None,
        )
    checks = [c for rule in policy.rules for c in _checks(rule, candidate, champion)]
    failed = [c for c in checks if c.status == "fail"]
    missing = [c for c in checks if c.status == "missing"]
    reasons = [f"{c.on_fail}: {c.detail}" for c in failed]
    reasons += [f"hold: {c.detail}" for c in missing]
    if any(c.on_fail == "reject" for c in failed):
        verdict: Verdict = "reject"
    elif failed or missing:
        verdict = "hold"
    else:
        verdict = "approve"
    if champion is None and any(c.status == "skipped" for c in checks):
        reasons.append("note: no champion, so champion comparisons were skipped")
    return GateResult(verdict, reasons, checks, policy.name, champion is not None)


def render_markdown(result: GateResult) -> str:
    """Every rule with candidate value, champion value, bound and outcome, for the KFP UI."""
    lines = [
        f"# Quality gate: {result.verdict.upper()}",
        "",
        f"Policy `{result.policy}`; champion "
        f"{'present' if result.champion_present else 'absent (champion comparisons skipped)'}.",
        "",
        "| metric | check | candidate | champion | bound | result | on fail |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for c in result.checks:
        lines.append(
            f"| {c.metric} | {c.check} | {_fmt(c.candidate)} | {_fmt(c.champion)} | "
            f"{_fmt(c.bound)} | {c.status.upper()} | {c.on_fail} |"
        )
    if result.reasons:
        lines += ["", "## Why", "", *[f"- {r}" for r in result.reasons]]
    return "\n".join(lines) + "\n"


def render_html(result: GateResult) -> str:
    """The same table as a standalone HTML page (KFP's HTML visualization)."""
    colour = {"approve": "#1a7f37", "hold": "#9a6700", "reject": "#cf222e"}[result.verdict]
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                c.metric,
                c.check,
                _fmt(c.candidate),
                _fmt(c.champion),
                _fmt(c.bound),
                c.status.upper(),
                c.on_fail,
            )
        )
        + "</tr>"
        for c in result.checks
    )
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in result.reasons)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Quality gate</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px 8px}"
        "table{border-collapse:collapse}</style></head><body>"
        f"<h1 style='color:{colour}'>Quality gate: {result.verdict.upper()}</h1>"
        f"<p>Policy <code>{html.escape(result.policy)}</code></p><table><tr>"
        "<th>metric</th><th>check</th><th>candidate</th><th>champion</th><th>bound</th>"
        f"<th>result</th><th>on fail</th></tr>{rows}</table><ul>{reasons}</ul></body></html>\n"
    )


def render_text(result: GateResult) -> str:
    lines = [f"verdict: {result.verdict}"]
    for c in result.checks:
        lines.append(f"  [{c.status.upper():7}] {c.check:16} {c.detail}")
    if not result.checks:  # e.g. an empty policy: the reason is the whole story
        lines += [f"  {r}" for r in result.reasons]
    lines += [f"  {r}" for r in result.reasons if r.startswith("note:")]
    return "\n".join(lines)
