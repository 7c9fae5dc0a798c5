"""The rollout plan: how an approved version reaches traffic (YAML, pydantic-validated)."""

import math
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from conveyor.config import StrictModel, load_model
from conveyor.rollout.notify import NotificationSpec
from conveyor.serving.isvc import RUNTIME, Resources
from conveyor.serving.smoke import SmokePolicy

__all__ = ["AnalysisSpec", "CheckSpec", "RolloutPlan", "default_checks", "load_plan", "window"]


REVISION = 'namespace="{{ namespace }}", revision_name="{{ revision }}"'
HISTOGRAM_WINDOW = 4  # intervals of score / feedback histogram read when a check names none


class CheckSpec(StrictModel):
    """One analysis rule (Flagger's metric template + threshold, with a model's actions).

    ``query`` is a PromQL template with ``{{ namespace }}``, ``{{ target }}`` (the
    InferenceService), ``{{ revision }}``, ``{{ version }}`` and ``{{ interval }}`` (the
    window: ``window_intervals`` analysis intervals; for ``psi_above`` and
    ``auc_drop_pct_above`` the window of the score-log histograms read, so late labels can be
    given a long one). ``op``:
    ``above`` fails when value > threshold; ``below`` when value < threshold; ``ratio_above``
    when candidate / champion > threshold; ``drop_pct_above`` when the candidate is more than
    ``threshold`` % below the champion (the same query on the champion's revision);
    ``psi_above`` when the PSI of candidate vs champion scores > threshold;
    ``auc_drop_pct_above`` when the candidate's ROC AUC on labelled feedback is more than
    ``threshold`` % below the champion's (needs a feedback source, not a query).
    """

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        description="the check's name, in decisions, notifications and alerts",
    )
    query: str = Field(
        "",
        description="PromQL template of the value (placeholders above); required by every op "
        "but psi_above and auc_drop_pct_above",
    )
    op: Literal[
        "above", "below", "ratio_above", "drop_pct_above", "psi_above", "auc_drop_pct_above"
    ] = Field(description="how the value is judged against threshold (see above)")
    threshold: float = Field(
        description="the bound op compares with, >= 0: a value, a candidate/champion ratio, a "
        "% or a PSI, as op says"
    )
    window_intervals: int | None = Field(
        None,
        ge=1,
        le=10_080,
        description="window in analysis intervals (at most a week of one-minute ones); unset: "
        "1 for a query, 4 for psi_above and auc_drop_pct_above (their histograms need rows)",
    )
    on_fail: Literal["rollback", "hold"] = Field(
        "rollback",
        description="what failure_threshold failed intervals in a row do: rollback (traffic "
        "back on the champion) or hold (traffic stays, a person decides); a rollback wins",
    )
    on_no_data: Literal["inconclusive", "skip"] = Field(
        "inconclusive",
        description="no data (no samples, too few labelled rows): inconclusive, which holds the "
        "rollout after max_inconclusive intervals; skip: reported as not measured and not "
        "waited for (signals that may never come in a rollout's time, like late labels)",
    )
    alert: bool = Field(False, description="page a person as well (the notification says so)")
    min_samples: int | None = Field(
        None,
        ge=1,
        description="requests each side needs in the window before a query check is judged "
        "(the candidate; the champion too for ratio_above and drop_pct_above); unset: "
        "analysis.min_requests, or 1/(1-q) for a histogram_quantile(q, ...) query (100 for a "
        "p99: with fewer, the percentile is the slowest request)",
    )
    min_delta: float = Field(
        0.0,
        ge=0,
        description="ratio_above only: the candidate also has to exceed the champion by more "
        "than this, in the query's unit (e.g. 0.05 s), to fail; a 2x ratio of two "
        "millisecond-scale latencies is scheduler noise on a shared node, not a regression; "
        "0: the ratio alone decides",
    )
    exclude_warmup: bool = Field(
        False,
        description="not judged while the window still holds the candidate's first "
        "analysis.warmup_intervals intervals (cold caches and lazy loading are not a "
        "regression); for latency checks",
    )

    @property
    def window(self) -> int:
        """``window_intervals``, or the op's default when unset."""
        if self.window_intervals is not None:
            return self.window_intervals
        return HISTOGRAM_WINDOW if self.op in ("psi_above", "auc_drop_pct_above") else 1

    @model_validator(mode="after")
    def _query(self) -> "CheckSpec":
        if self.op not in ("psi_above", "auc_drop_pct_above") and not self.query.strip():
            raise ValueError(f"check {self.name!r}: op {self.op} needs a query")
        # Rates, quantiles, ratios, PSI and percentages are never negative: a negative bound
        # fails every interval (`above`: every rollout rolls back) or never (`below`).
        if not math.isfinite(self.threshold) or self.threshold < 0:
            raise ValueError(
                f"check {self.name!r}: threshold {self.threshold:g} must be a finite number >= 0 "
                f"(op {self.op} compares a value that is never negative)"
            )
        if self.min_delta and self.op != "ratio_above":
            raise ValueError(
                f"check {self.name!r}: min_delta applies to ratio_above only, not {self.op}"
            )
        if self.op in ("ratio_above", "psi_above") and self.threshold == 0:
            raise ValueError(
                f"check {self.name!r}: threshold 0 for {self.op} fails on any difference at all; "
                "give the largest acceptable value (e.g. 2 for a p99 ratio, 0.2 for PSI)"
            )
        return self


def default_checks() -> list[CheckSpec]:
    """The issue's table, on the recording rules in manifests/monitoring (Knative revisions)."""
    return [
        CheckSpec(
            name="error_rate",
            query=f"conveyor:revision_errors:ratio_rate1m{{{REVISION}}}",
            op="above", threshold=0.01, window_intervals=5, on_fail="rollback",
        ),
        CheckSpec(
            name="latency_p99",
            query=f"conveyor:revision_latency_seconds:p99_1m{{{REVISION}}}",
            op="ratio_above", threshold=2.0, window_intervals=10, on_fail="rollback", alert=True,
            min_samples=100, exclude_warmup=True, min_delta=0.05,
        ),
        CheckSpec(
            name="score_psi", op="psi_above", threshold=0.2, window_intervals=4,
            on_fail="hold", alert=True,
        ),
        CheckSpec(
            name="online_auc", op="auc_drop_pct_above", threshold=3.0, window_intervals=5,
            on_fail="rollback", alert=True, on_no_data="skip",
        ),
    ]  # fmt: skip


class AnalysisSpec(StrictModel):
    """How the canary is judged between steps. Windows count analysis intervals, so the same
    plan runs with one-minute intervals on a cluster and seconds in local scenarios."""

    interval_seconds: float = Field(
        60.0,
        gt=0,
        description="seconds between analysis intervals, each of which queries Prometheus and "
        "decides (kubectl conveyor analyze --interval overrides it)",
    )
    checks_per_step: int = Field(1, ge=1, description="healthy intervals before a step up")
    failure_threshold: int = Field(
        2, ge=1, description="consecutive failed intervals of a check before its action"
    )
    min_requests: int = Field(
        20, ge=0, description="candidate requests per interval below which it is inconclusive"
    )
    requests_query: str = Field(
        f"sum(conveyor:revision_requests:rate1m{{{REVISION}}}) * 60",
        description="requests of a revision in one interval; over a check's window of w "
        "intervals the evidence is w times that, or the query itself when it uses "
        "{{ interval }}",
    )
    warmup_intervals: int = Field(
        1, ge=0, le=100, description="first intervals of a candidate that checks with "
        "exclude_warmup do not judge",
    )  # fmt: skip
    max_inconclusive: int = Field(
        5, ge=1, description="consecutive inconclusive intervals before the rollout holds"
    )
    shadow_checks: int = Field(
        5, ge=1, description="healthy intervals of a shadow before it has passed"
    )
    checks: list[CheckSpec] = Field(
        default_factory=default_checks,
        description="the checks judged every interval; unset: error rate, p99 against the "
        "champion, score PSI and online AUC",
    )

    @field_validator("checks")
    @classmethod
    def _unique(cls, checks: list[CheckSpec]) -> list[CheckSpec]:
        names = [c.name for c in checks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"check names must be unique: {dupes}")
        return checks


class RolloutPlan(StrictModel):
    """Strategy and steps. ``canary`` walks ``steps``; ``bluegreen`` deploys at 0 %, smoke
    tests the new revision on its ``latest-`` tag URL, then switches 100 % in one step and
    keeps the old revision for an instant rollback; ``shadow`` mirrors ``shadow_percent`` % of
    requests to a second InferenceService whose answers nobody sees."""

    strategy: Literal["canary", "bluegreen", "shadow"] = Field(
        "canary", description="how the version reaches traffic (see above)"
    )
    steps: list[int] = Field(
        default_factory=lambda: [5, 25, 50, 100],
        min_length=1,
        description="canary traffic percents after the smoke test passed at 0 %, increasing "
        "and ending at 100; bluegreen always uses [100]",
    )
    shadow_percent: float = Field(
        10.0,
        gt=0,
        le=100,
        description="shadow: the % of the champion's requests mirrored to <name>-shadow",
    )
    after_shadow: Literal["canary", "hold"] = Field(
        "canary",
        description="when an analysed shadow passes: step up to a canary at steps[0] (the "
        "shadow is removed) and go on analysing, or hold for a person",
    )
    require_approval: bool = Field(
        False, description="refuse versions without a person's recorded approval"
    )
    smoke: SmokePolicy = Field(
        SmokePolicy(),
        description="bounds of the smoke test a new revision passes at 0 % before any step; "
        "conveyor run holds its local smoke test to them too",
    )
    runtime: str = Field(
        RUNTIME,
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="the ServingRuntime / ClusterServingRuntime new revisions run on: "
        "conveyor-sklearn (manifests/runtime, the scikit-learn training uses), the stock "
        "kserve-sklearnserver or a cluster's own; deploy refuses a version whose scikit-learn "
        "differs from the runtime's conveyor.io/sklearn-version annotation",
    )
    resources: Resources = Field(
        Resources(),
        description="the model container's resources, applied when the rollout creates the "
        "InferenceService (a first release); a canary keeps the champion's, a shadow gets the "
        "defaults",
    )
    service_account: str = Field(
        "conveyor-model",
        description="service account of the model's pods; the rollout stages do not read it "
        "and always use conveyor-model",
    )
    tag_routing: bool = Field(
        True,
        description="KServe tag routing, which gives a new revision the latest- URL the smoke "
        "test reaches it on at 0 %; the rollout stages do not read it: the InferenceService "
        "they create always has it on",
    )
    analysis: AnalysisSpec = Field(
        AnalysisSpec(),
        description="how each step is judged; runs only when the rollout has a prometheus_url",
    )
    notifications: NotificationSpec | None = Field(
        None, description="where the analysis sends its decisions; null: nothing is sent"
    )
    score_log_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s?#]+$",
        description="the score-log receiver (manifests/components/scorelog), e.g. "
        "http://conveyor-scorelog.models.svc.cluster.local/log: every revision logs its "
        "responses there and score_psi reads the scores from Prometheus",
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[int]) -> list[int]:
        for i, p in enumerate(steps):
            if not 1 <= p <= 100:
                raise ValueError(f"steps[{i}] = {p} is outside 1..100")
            if i and p <= steps[i - 1]:
                raise ValueError(f"steps must increase: steps[{i}] = {p} <= {steps[i - 1]}")
        if steps[-1] != 100:
            raise ValueError(f"the last step must be 100 (a finished rollout), got {steps[-1]}")
        return steps

    @model_validator(mode="after")
    def _bluegreen(self) -> "RolloutPlan":
        if self.strategy == "bluegreen":
            self.steps = [100]
        return self


def window(plan: RolloutPlan, op: str) -> str:
    """The PromQL window of ``op``'s check (its ``window``), for the score and feedback
    sources; ``HISTOGRAM_WINDOW`` intervals without such a check."""
    counts = [c.window for c in plan.analysis.checks if c.op == op]
    return f"{int(plan.analysis.interval_seconds * max(counts, default=HISTOGRAM_WINDOW))}s"


def load_plan(path: str | Path) -> RolloutPlan:
    return load_model(RolloutPlan, path, "rollout plan")
