"""The analysis loop: judge a running canary from online evidence and act on it.

Each interval queries every check of the plan, compares it with its bound (or with the
champion's own value), and records one decision: ``continue``, ``step_up``, ``promote``,
``hold`` or ``rollback``, with the values and bounds, as the ``conveyor.io/analysis``
annotation, a Kubernetes Event and an MLflow tag on the candidate version. No traffic or an
unreachable metrics backend is inconclusive: never healthy, never a promotion; too many
inconclusive intervals in a row hold the rollout for a person.

The state between intervals lives in the annotation, so the same code runs as a long loop
(``kubectl conveyor analyze``), one interval at a time from cron or CI (``--once``), or inside
the ``analyse_rollout`` component. The state names the candidate's version and revision: a new
rollout on the same InferenceService starts from a clean count, never from the last one's.

A shadow is analysed the same way, before it carries any traffic: when ``<name>`` runs no
canary but ``<name>-shadow`` exists, the shadow's revision (the mirrored requests it answers)
is compared with the champion's, and the state lives on the shadow. After
``analysis.shadow_checks`` healthy intervals the shadow has passed: with
``after_shadow: canary`` the version steps up to a canary at the plan's first step (the shadow
is removed) and the analysis goes on as for any canary; with ``after_shadow: hold`` it holds
for a person. A failing shadow is removed and its version rejected; the champion's traffic was
never touched.
"""

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from conveyor.errors import BadInputError, MetricsUnavailable
from conveyor.rollout import actions
from conveyor.rollout.cluster import ISVC, Cluster, get, update
from conveyor.rollout.metrics import MetricsProvider
from conveyor.rollout.plan import AnalysisSpec, CheckSpec, RolloutPlan
from conveyor.rollout.prometheus import placeholders, render
from conveyor.serving import isvc as inf
from conveyor.serving.isvc import Change, ServedModel

__all__ = [
    "ANALYSIS",
    "Analysis",
    "Decision",
    "Side",
    "Sides",
    "cluster_analysis",
    "merge_sparse_bins",
    "min_samples",
    "rollout_sides",
]


ANALYSIS = inf.ANALYSIS
DECISIONS = ("continue", "step_up", "promote", "hold", "rollback")
FINAL = ("promote", "hold", "rollback")


class ScoreSource(Protocol):
    """Recent prediction scores of one side of the rollout (prediction logs), for PSI."""

    def scores(self, role: str) -> np.ndarray | None: ...


class FeedbackSource(Protocol):
    """Labelled feedback per side: (true labels, the scores served for them), for online AUC."""

    def labelled(self, role: str) -> tuple[np.ndarray, np.ndarray] | None: ...


MIN_FEEDBACK = 50  # labelled rows per side, with both classes, before an AUC is compared


def _auc(pair: tuple[np.ndarray, np.ndarray] | None) -> float | None:
    from sklearn.metrics import roc_auc_score

    if pair is None:
        return None
    y, scores = pair
    if len(y) < MIN_FEEDBACK or len(set(np.asarray(y).tolist())) < 2:
        return None
    return float(roc_auc_score(y, scores))


def merge_sparse_bins(
    expected: np.ndarray, actual: np.ndarray, min_mass: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Merge neighbouring fixed buckets until each holds ``min_mass`` of the champion's
    scores: reference-defined bins, so a few empty buckets of a small window cannot blow the
    PSI up (floored empty bins dominate otherwise)."""
    merged_e, merged_a, acc_e, acc_a = [], [], 0.0, 0.0
    for e, a in zip(expected, actual, strict=True):
        acc_e, acc_a = acc_e + e, acc_a + a
        if acc_e >= min_mass:
            merged_e.append(acc_e)
            merged_a.append(acc_a)
            acc_e = acc_a = 0.0
    if acc_e or acc_a:
        if merged_e:
            merged_e[-1] += acc_e
            merged_a[-1] += acc_a
        else:
            merged_e, merged_a = [acc_e], [acc_a]
    return np.asarray(merged_e), np.asarray(merged_a)


@dataclass(frozen=True)
class Side:
    """One side of the comparison: the InferenceService, its revision and model version."""

    target: str
    revision: str
    version: str


@dataclass(frozen=True)
class Sides:
    """What an interval compares: ``mode`` canary (both sides in one InferenceService) or
    shadow (the candidate in ``<name>-shadow``); ``subject`` holds the analysis state."""

    mode: str
    subject: dict[str, Any]
    candidate: Side
    champion: Side
    model: str

    @property
    def key(self) -> str:
        """The candidate the state belongs to: a new rollout never inherits an old count."""
        return f"{self.mode}:{self.candidate.version}@{self.candidate.revision}"


def _predictor_status(isvc: dict[str, Any]) -> dict[str, Any]:
    return (isvc.get("status") or {}).get("components", {}).get("predictor", {})


def rollout_sides(cluster: Cluster, name: str) -> Sides:
    """The running canary of ``name``, else its shadow; neither is a clear error."""
    isvc = get(cluster, ISVC, name)
    pred = _predictor_status(isvc)
    model = (isvc["metadata"].get("labels") or {}).get(inf.MODEL, "")
    champion = inf.champion_of(isvc)
    if champion is not None:
        return Sides(
            "canary", isvc,
            Side(name, pred.get("latestReadyRevision") or pred.get("latestCreatedRevision", ""),
                 inf.current_model(isvc)["version"]),
            Side(name, pred.get("latestRolledoutRevision", ""), champion["version"]),
            model,
        )  # fmt: skip
    shadow = cluster.find(ISVC, inf.shadow_name(name))
    if shadow is None:
        ann = isvc["metadata"].get("annotations") or {}
        raise BadInputError(
            f"{name}: no canary or shadow in progress (phase {ann.get(inf.PHASE, 'Stable')}); "
            "start one with `kubectl conveyor canary` or `kubectl conveyor shadow` before "
            "analysing"
        )
    spred = _predictor_status(shadow)
    return Sides(
        "shadow", shadow,
        Side(shadow["metadata"]["name"],
             spred.get("latestReadyRevision") or spred.get("latestCreatedRevision", ""),
             inf.current_model(shadow)["version"]),
        Side(name, pred.get("latestRolledoutRevision") or pred.get("latestReadyRevision", ""),
             inf.current_model(isvc)["version"]),
        model,
    )  # fmt: skip


@dataclass
class CheckResult:
    name: str
    op: str
    threshold: float
    value: float | None = None
    baseline: float | None = None
    passed: bool | None = None  # None: no data (inconclusive)
    on_fail: str = "rollback"
    note: str = ""
    alert: bool = False  # the plan asks for a person to be paged when this check decides

    def describe(self) -> str:
        if self.passed is None:
            return f"{self.name}: no data ({self.note})" if self.note else f"{self.name}: no data"
        if self.value is None:
            return f"{self.name}: {self.note}"
        v, verdict = f"{self.value:.4g}", "ok" if self.passed else "FAILED"
        if self.op == "ratio_above" and self.baseline:
            ratio = self.value / self.baseline
            return (f"{self.name} {v} vs champion {self.baseline:.4g} = {ratio:.2f}x "
                    f"(bound {self.threshold:g}x): {verdict}")  # fmt: skip
        if self.op in ("drop_pct_above", "auc_drop_pct_above") and self.baseline is not None:
            return (f"{self.name} {v} vs champion {self.baseline:.4g} (max drop "
                    f"{self.threshold:g} %): {verdict}")  # fmt: skip
        sign = ">" if self.op in ("above", "psi_above") else "<"
        return f"{self.name} {v} (fails {sign} {self.threshold:g}): {verdict}"


@dataclass
class Decision:
    decision: str
    reason: str
    interval: int
    percent: int | None
    requests: float | None
    checks: list[CheckResult] = field(default_factory=list)
    mode: str = "canary"  # or "shadow": the candidate answers mirrored requests only
    registry_error: str = ""  # the traffic action happened; MLflow could not follow
    alerts: list[str] = field(default_factory=list)  # deciding checks with alert: page a person
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def alert_tag(self) -> str:
        """`` [alert: a, b]`` when the decision paged someone, else empty."""
        return f" [alert: {', '.join(self.alerts)}]" if self.alerts else ""

    def line(self) -> str:
        pct = "-" if self.percent is None else f"{self.percent}%"
        if self.percent is None and self.mode == "shadow":
            pct = "shadow"
        line = f"interval {self.interval:>3}  traffic {pct:>6}  {self.decision:<9} {self.reason}"
        line += self.alert_tag
        return f"{line} [{self.registry_error}]" if self.registry_error else line


def min_samples(check: CheckSpec, min_requests: int) -> int:
    """Requests each side of a query check needs in its window: the check's own bound; else
    the plan's ``min_requests``, raised to 1/(1-q) for a ``histogram_quantile(q, ...)`` query
    (below it the percentile is the slowest request)."""
    if check.min_samples is not None:
        return check.min_samples
    m = re.search(r"histogram_quantile\(\s*([0-9.]+)", check.query)
    if m and 0 < float(m.group(1)) < 1:
        return max(min_requests, math.ceil(round(1 / (1 - float(m.group(1))), 6)))
    return min_requests


def _compare(check: CheckSpec, value: float, baseline: float | None) -> bool | None:
    if check.op == "above" or check.op == "psi_above":
        return value <= check.threshold
    if check.op == "below":
        return value >= check.threshold
    if baseline is None or baseline <= 0:
        return None  # nothing to compare against
    if check.op == "ratio_above":  # both the ratio and the difference must be exceeded
        return value / baseline <= check.threshold or value - baseline <= check.min_delta
    return (baseline - value) / baseline * 100.0 <= check.threshold  # drop_pct_above, auc


class Analysis:
    """One rollout under analysis. ``step()`` runs one interval; ``run()`` loops to the end."""

    def __init__(
        self,
        cluster: Cluster,
        name: str,
        plan: RolloutPlan,
        metrics: MetricsProvider,
        *,
        scores: ScoreSource | None = None,
        feedback: FeedbackSource | None = None,
        registry: Any | None = None,
        notifier: Any | None = None,
        actor: str = "conveyor-analysis",
    ) -> None:
        self.cluster, self.name, self.plan, self.metrics = cluster, name, plan, metrics
        self.spec: AnalysisSpec = plan.analysis
        self.scores, self.registry, self.notifier, self.actor = scores, registry, notifier, actor
        self.feedback = feedback
        self._evidence: dict[tuple[str, str, int], float | None] = {}

    # ------------------------------------------------------------------ measuring

    def _labels(self, side: Side, window_intervals: int = 1) -> dict[str, str]:
        """Query placeholders for one side (its InferenceService, revision and version)."""
        return {
            "namespace": self.cluster.namespace,
            "target": side.target,
            "revision": side.revision,
            "version": side.version,
            "interval": f"{int(self.spec.interval_seconds * window_intervals)}s",
        }

    def _requests(self, side: Side, window: int) -> float | None:
        """Requests of ``side`` in a window of ``window`` intervals (see requests_query)."""
        key = (side.revision, side.version, window)
        if key not in self._evidence:
            query = self.spec.requests_query
            value = self.metrics.query(render(query, **self._labels(side, window)))
            if value is not None and "interval" not in placeholders(query):
                value *= window  # a per-interval query: the window holds `window` of them
            self._evidence[key] = value
        return self._evidence[key]

    def _too_few_requests(self, check: CheckSpec, sides: Sides) -> str:
        """Why a query check cannot be judged on this window's evidence ("" when it can):
        each side it reads needs ``min_samples`` requests in the check's window."""
        need = min_samples(check, self.spec.min_requests)
        roles = [("candidate", sides.candidate)]
        if check.op in ("ratio_above", "drop_pct_above"):
            roles.append(("champion", sides.champion))
        for role, side in roles:
            n = self._requests(side, check.window)
            if n is None or n < need:
                got = 0 if n is None else n
                return (f"too few requests to judge: {role} {got:.0f} in the "
                        f"{check.window}-interval window < {need}")  # fmt: skip
        return ""

    def _measure(self, check: CheckSpec, sides: Sides, interval: int = 1) -> CheckResult:
        result = CheckResult(
            check.name, check.op, check.threshold, on_fail=check.on_fail, alert=check.alert
        )
        if check.op == "auc_drop_pct_above":
            if self.feedback is None:
                result.passed, result.note = True, "not measured: no labelled feedback source"
                return result
            result.value = _auc(self.feedback.labelled("candidate"))
            result.baseline = _auc(self.feedback.labelled("champion"))
            if result.value is None or result.baseline is None:
                result.note = f"fewer than {MIN_FEEDBACK} labelled rows with both classes"
                return result
            result.passed = _compare(check, result.value, result.baseline)
            return result
        if check.op == "psi_above":
            if self.scores is None:
                result.passed, result.note = True, "not measured: no score source configured"
                return result
            import pandas as pd

            from conveyor import distributions

            if hasattr(self.scores, "fractions"):  # binned sources (a Prometheus histogram)
                a, b = self.scores.fractions("champion"), self.scores.fractions("candidate")
                if a is None or b is None:
                    result.note = "no prediction scores yet"
                    return result
                result.value = distributions.psi(*merge_sparse_bins(np.asarray(a), np.asarray(b)))
            else:
                new, old = self.scores.scores("candidate"), self.scores.scores("champion")
                if new is None or old is None or len(new) == 0 or len(old) == 0:
                    result.note = "no prediction scores yet"
                    return result
                profile = distributions.profile_column(pd.Series(old, name="score"))
                result.value = distributions.column_psi(profile, pd.Series(new, name="score"))
            result.passed = _compare(check, result.value, None)
            return result
        if check.exclude_warmup and interval < self.spec.warmup_intervals + check.window:
            result.note = (
                f"warming up: the {check.window}-interval window still holds the candidate's "
                f"first {self.spec.warmup_intervals} interval(s)"
            )
            return result
        short = self._too_few_requests(check, sides)
        if short:
            result.note = short
            return result
        labels = self._labels(sides.candidate, check.window)
        result.value = self.metrics.query(render(check.query, **labels))
        if check.op in ("ratio_above", "drop_pct_above"):
            base = self._labels(sides.champion, check.window)
            result.baseline = self.metrics.query(render(check.query, **base))
        if result.value is None:
            result.note = "the query returned no samples"
            return result
        result.passed = _compare(check, result.value, result.baseline)
        if result.passed is None:
            result.note = "the champion has no value to compare with"
        return result

    # ------------------------------------------------------------------ deciding

    def step(self) -> Decision:
        """Measure one interval, decide, act, record. Returns the decision."""
        self._evidence = {}
        # a rollback that a crash (or an unreachable MLflow) left half-done is finished first
        actions.finish_rollbacks(self.cluster, self.name, self.registry)
        sides = rollout_sides(self.cluster, self.name)
        ann = sides.subject["metadata"].get("annotations") or {}
        record = json.loads(ann.get(ANALYSIS, "{}"))
        same = record.get("candidate", sides.key) == sides.key  # (older records: no key)
        state = record.get("state", {}) if same else {}
        shadow = sides.mode == "shadow"
        percent = None if shadow else inf.canary_percent(sides.subject)
        interval = int(state.get("intervals", 0)) + 1
        if ann.get(inf.PHASE) == "Held" and same:
            what = "the shadow" if shadow else "a person (promote or roll back)"
            return Decision("hold", f"held: waiting for {what}", interval, percent, None,
                            mode=sides.mode)  # fmt: skip
        failures: dict[str, int] = dict(state.get("failures", {}))
        healthy = int(state.get("healthy", 0))
        inconclusive = int(state.get("inconclusive", 0))
        results: list[CheckResult] = []
        requests: float | None = None
        why_inconclusive = ""
        try:
            labels = self._labels(sides.candidate)
            requests = self.metrics.query(render(self.spec.requests_query, **labels))
            if requests is None or requests < self.spec.min_requests:
                who = "mirrored requests to the shadow" if shadow else "candidate requests"
                why_inconclusive = (
                    f"{0 if requests is None else requests:.0f} {who} in the interval "
                    f"< min {self.spec.min_requests}"
                )
            for check in self.spec.checks:
                result = self._measure(check, sides, interval)
                if result.passed is None and check.on_no_data == "skip":
                    result.passed = True
                    result.note = f"not measured: {result.note or 'no data'} (on_no_data: skip)"
                results.append(result)
        except MetricsUnavailable as exc:
            why_inconclusive = f"metrics backend unreachable ({exc})"
        failed = [r for r in results if r.passed is False]
        no_data = [r for r in results if r.passed is None]
        for r in results:
            failures[r.name] = failures.get(r.name, 0) + 1 if r.passed is False else 0
        due = [r for r in failed if failures[r.name] >= self.spec.failure_threshold]
        alerts: list[str] = []
        if due:
            rollback = [r for r in due if r.on_fail == "rollback"]
            chosen = rollback or due
            decision = "rollback" if rollback else "hold"
            alerts = [r.name for r in chosen if r.alert]
            reason = "; ".join(f"{r.describe()} for {failures[r.name]} interval(s)" for r in chosen)
        elif failed:
            healthy = 0
            decision = "continue"
            reason = "failing, below the threshold: " + "; ".join(
                f"{r.describe()} ({failures[r.name]}/{self.spec.failure_threshold})" for r in failed
            )
        elif why_inconclusive or no_data:
            inconclusive += 1
            detail = why_inconclusive or "; ".join(r.describe() for r in no_data)
            if inconclusive >= self.spec.max_inconclusive:
                decision = "hold"
                reason = f"inconclusive for {inconclusive} intervals in a row: {detail}"
            else:
                decision = "continue"
                reason = f"inconclusive ({inconclusive}/{self.spec.max_inconclusive}): {detail}"
        else:
            inconclusive = 0
            healthy += 1
            needed = self.spec.shadow_checks if shadow else self.spec.checks_per_step
            passed = "all checks passed: " + "; ".join(r.describe() for r in results)
            if healthy < needed:
                decision = "continue"
                reason = f"healthy {healthy}/{needed}"
            elif shadow:
                healthy = 0
                first = self.plan.steps[0]
                if self.plan.after_shadow == "canary":
                    decision = "step_up"
                    reason = f"shadow passed {needed} intervals: to canary {first} %: {passed}"
                else:
                    decision = "hold"
                    reason = (
                        f"shadow passed {needed} intervals ({passed}); start the canary with "
                        f"`kubectl conveyor canary {self.name} --version "
                        f"{sides.candidate.version} --percent {first}` or stop the shadow"
                    )
            else:
                healthy = 0
                nxt = next((p for p in self.plan.steps if p > (percent or 0)), None)
                decision = "step_up" if nxt is not None and nxt < 100 else "promote"
                reason = f"to {nxt} %: {passed}" if decision == "step_up" else passed
        out = Decision(decision, reason, interval, percent, requests, results, mode=sides.mode,
                       alerts=alerts)  # fmt: skip
        state = {"intervals": interval, "failures": failures, "healthy": healthy,
                 "inconclusive": inconclusive}  # fmt: skip
        self._act(out, sides, state)
        return out

    # ------------------------------------------------------------------ acting

    def _act(self, d: Decision, sides: Sides, state: dict[str, Any]) -> None:
        version, champion = sides.candidate.version, sides.champion.version
        model = sides.model
        change = Change(f"analysis-{d.decision}", d.reason, self.actor)
        record = {"candidate": sides.key, "state": state, "last": d.to_dict()}
        subject = sides.subject["metadata"]["name"]
        if d.mode == "shadow":
            if d.decision == "step_up":  # the shadow passed: a canary of it, then no shadow
                shadowed = inf.current_model(sides.subject)
                served = ServedModel(  # on the runtime the shadow was checked and ran on
                    model, version, shadowed["storageUri"], shadowed["sha256"],
                    runtime=inf.runtime_of(sides.subject),
                )  # fmt: skip
                actions.deploy(self.cluster, self.name, served, self.plan.steps[0], change)
                actions.shadow_off(self.cluster, self.name, change)
                d.percent, subject = self.plan.steps[0], self.name
                record = {"candidate": rollout_sides(self.cluster, self.name).key,
                          "state": {}, "last": d.to_dict()}  # fmt: skip
            elif d.decision == "rollback":  # below: the shadow goes; champion traffic stayed
                subject = self.name
        elif d.decision == "step_up":
            nxt = next(p for p in self.plan.steps if p > (d.percent or 0))
            actions.set_traffic(self.cluster, self.name, nxt, change)
            d.percent = nxt
        elif d.decision == "promote":
            # Registry first, traffic second; a failed traffic change puts the aliases back.
            registry = self.registry if model else None
            change.reason = f"analysis: {d.reason}"
            try:
                actions.promote_release(self.cluster, self.name, change, registry, model)
            except Exception as exc:  # nothing moved (or was put back): hold, never half-done
                d.decision = "hold"
                d.reason = (
                    f"promotion failed, traffic stays at {d.percent} % and the aliases where "
                    f"they were: {str(exc)[:300]}; promote with `kubectl conveyor promote "
                    f"{self.name}` once that is fixed ({d.reason})"
                )
                record["last"] = d.to_dict()
        if d.decision == "rollback":
            # Traffic first (canary back, or shadow removed), then MLflow: a registry failure
            # must not lose the decision, only be recorded with what to run once it is back.
            change.reason = f"analysis: {d.reason}"
            done = actions.rollback_release(
                self.cluster, self.name, change, self.registry if model else None, model
            )
            if done.registry_error:
                d.registry_error = done.registry_error
                record["last"] = d.to_dict()
        patch: dict[str, Any] = {"metadata": {"annotations": {ANALYSIS: json.dumps(record)}}}
        if d.decision == "hold":
            patch["metadata"]["annotations"][inf.PHASE] = "Held"
        update(self.cluster, ISVC, subject, lambda _cur: patch)
        obj = get(self.cluster, ISVC, subject)  # every interval: an Event with the evidence
        self.cluster.event(obj, f"Analysis{d.decision.title().replace('_', '')}",
                           f"interval {d.interval}: {d.reason}{d.alert_tag}",
                           warning=d.decision in ("hold", "rollback"))  # fmt: skip
        if d.registry_error:
            self.cluster.event(obj, "RegistryNotUpdated", d.registry_error, warning=True)
        elif self.registry is not None and model:
            self._tag(model, version, d)
        if self.notifier is not None and d.decision in ("hold", "rollback", "promote", "step_up"):
            self._notify(d, model, version, champion)

    def _tag(self, model: str, version: str, d: Decision) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        try:  # evidence, not control: an unreachable MLflow must not stop the analysis
            self.registry.client.set_model_version_tag(  # type: ignore[union-attr]
                model, version, f"conveyor.analysis.{stamp}", f"{d.decision}: {d.reason}"[:5000]
            )
        except Exception as exc:
            print(f"MLflow tag conveyor.analysis.{stamp} not written on {model} v{version}: "
                  f"{str(exc)[:300]} (the annotation and Event hold the decision)")  # fmt: skip

    def _notify(self, d: Decision, model: str, version: str, champion: str) -> None:
        from conveyor.rollout.notify import Notification

        action = {"step_up": "step"}.get(d.decision, d.decision)
        note = Notification(
            action=action, inference_service=self.name, namespace=self.cluster.namespace,
            model=model, version=version, champion_version=champion,
            reason=f"{d.reason}; {d.registry_error}" if d.registry_error else d.reason,
            checks=[{"name": r.name, "value": r.value, "bound": r.threshold,
                     "passed": r.passed, "detail": r.describe()} for r in d.checks],
            traffic_percent=d.percent, actor=self.actor, alerts=list(d.alerts),
        )  # fmt: skip
        for failure in self.notifier.send(note):  # type: ignore[union-attr]
            print(f"notification not delivered: {failure}")

    def run(
        self,
        max_intervals: int | None = None,
        progress: Callable[[Decision], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Decision:
        """Interval after interval until promote, hold or rollback (or ``max_intervals``)."""
        count = 0
        while True:
            d = self.step()
            count += 1
            if progress is not None:
                progress(d)
            if d.decision in FINAL or (max_intervals is not None and count >= max_intervals):
                return d
            sleep(self.spec.interval_seconds)


def cluster_analysis(
    cluster: Cluster,
    name: str,
    plan: RolloutPlan,
    prometheus_url: str,
    tracking_uri: str = "",
    actor: str = "conveyor-analysis",
) -> Analysis:
    """The analysis as it runs against a cluster (``kubectl conveyor analyze`` and the
    ``analyse_rollout`` component): Prometheus, the score-log receiver's score and feedback
    sources for the running canary or shadow, MLflow when a URI is given (aliases and tags
    follow the decisions), and the plan's notifications."""
    from conveyor.rollout.prometheus import PrometheusProvider, feedback_source, score_source

    if not prometheus_url:
        raise BadInputError(
            "no Prometheus URL: the analysis needs the cluster's Prometheus (--prometheus URL "
            "or PROMETHEUS_URL; prometheus_url in the rollout pipeline)"
        )
    registry = None
    if tracking_uri:
        from conveyor.registry import ModelRegistry

        registry = ModelRegistry(tracking_uri)
    notifier = None
    if plan.notifications is not None:
        from conveyor.rollout.notify import notifier_for

        notifier = notifier_for(plan.notifications)
    provider = PrometheusProvider(prometheus_url)
    sides = rollout_sides(cluster, name)
    return Analysis(
        cluster, name, plan, provider, registry=registry, notifier=notifier, actor=actor,
        scores=score_source(provider, sides, plan), feedback=feedback_source(provider, sides, plan),
    )  # fmt: skip
