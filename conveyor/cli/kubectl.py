"""``kubectl conveyor``: operate model rollouts on KServe InferenceServices.

Installed as the ``kubectl-conveyor`` entry point, so kubectl finds it on PATH as a plugin.
Reads like ``kubectl argo rollouts``: ``status`` shows revisions, traffic, model versions,
readiness and the last events; ``canary``, ``promote``, ``rollback`` and ``shadow`` change a
rollout with one guarded write each, recorded as an annotation and an Event. ``--dry-run``
prints the change and writes nothing.
"""

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import yaml

from conveyor.cli._table import Command, arg, build
from conveyor.context import actor, require_tracking_uri, tracking_uri
from conveyor.errors import BadInputError, ConveyorError
from conveyor.rollout import actions
from conveyor.rollout.cluster import ISVC, Cluster, Kind, KubeCluster, get
from conveyor.serving import isvc as inf
from conveyor.serving.isvc import Change

__all__ = ["main"]


EPILOG = """examples:
  kubectl conveyor status fraud -n models
  kubectl conveyor canary fraud --version 7 --percent 10 --reason "weekly retrain"
  kubectl conveyor canary fraud --version 7 --percent 50          # step the running canary
  kubectl conveyor promote fraud
  kubectl conveyor rollback fraud --reason "p99 doubled"
  kubectl conveyor shadow fraud --version 8 --percent 20
  kubectl conveyor shadow fraud --off
  kubectl conveyor canary fraud --version 7 --percent 10 --dry-run -o yaml
  kubectl conveyor canary fraud --version 7 --percent 10 --runtime kserve-sklearnserver
  kubectl conveyor analyze fraud --plan rollout.yaml --prometheus http://prometheus:9090
  kubectl conveyor analyze fraud --plan rollout.yaml --once    # one interval, for cron or CI

exit codes: 0 done (analyze: promoted, or --once continuing), 2 bad input, or a version the
serving runtime's scikit-learn may not unpickle (nothing changed),
3 analyze held the rollout for a person, 4 analyze rolled back, 6 registry unreachable,
7 Kubernetes API refused or unreachable (nothing changed).
"""


class DryRun:
    """A ``Cluster`` that reads through and records writes instead of sending them."""

    def __init__(self, inner: Cluster) -> None:
        self.inner, self.namespace = inner, inner.namespace
        self.writes: list[dict[str, Any]] = []

    def find(self, kind: Kind, name: str) -> dict[str, Any] | None:
        return self.inner.find(kind, name)

    def find_cluster_scoped(self, kind: Kind, name: str) -> dict[str, Any] | None:
        return self.inner.find_cluster_scoped(kind, name)

    def find_all(self, kind: Kind, label_selector: str = "") -> list[dict[str, Any]]:
        return self.inner.find_all(kind, label_selector)

    def create(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        self.writes.append({"verb": "create", "kind": kind.kind, "object": obj})
        return obj

    def patch(self, kind: Kind, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.writes.append({"verb": "patch", "kind": kind.kind, "name": name, "patch": patch})
        current = self.inner.find(kind, name) or {}
        return inf.apply_merge(current, patch)

    def delete(self, kind: Kind, name: str) -> None:
        self.writes.append({"verb": "delete", "kind": kind.kind, "name": name})

    def event(
        self, obj: dict[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None:
        self.writes.append({"verb": "event", "reason": reason, "message": message})

    def events(self, name: str) -> list[dict[str, Any]]:
        return self.inner.events(name)


def _actor() -> str:
    return actor("kubectl-conveyor")


def _dump(doc: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=True, default=str)
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def _tracking_uri(args: argparse.Namespace) -> str:
    return require_tracking_uri(
        args.tracking_uri, "look up the model version in the MLflow registry"
    )


def _model_name(cluster: Cluster, args: argparse.Namespace) -> str:
    if args.model:
        return str(args.model)
    found = cluster.find(ISVC, args.name)
    label = ((found or {}).get("metadata", {}).get("labels") or {}).get(inf.MODEL)
    if not label:
        raise BadInputError(
            f"--model is required: InferenceService {args.name!r} "
            + ("does not exist yet" if found is None else f"has no {inf.MODEL} label")
        )
    return str(label)


# ------------------------------------------------------------------ status rendering

MARK = {True: "✔", False: "✖"}


def render_status(s: dict[str, Any]) -> str:
    """Human-readable status in the shape of `kubectl argo rollouts get rollout`."""
    if s["candidate"] is not None:
        state = "◌ Progressing" if s["ready"] else "✖ Degraded"
    else:
        state = "✔ Healthy" if s["ready"] else "✖ Degraded"
    pct = s["canaryTrafficPercent"]
    lines = [
        f"Name:            {s['name']}",
        f"Namespace:       {s['namespace']}",
        f"Status:          {state}",
        f"Phase:           {s['phase']}",
        f"Model:           {s['model'] or '?'}",
        f"  Champion:      v{s['champion']}",
        f"  Candidate:     {'v' + s['candidate'] if s['candidate'] else '-'}"
        + (f" at {pct} %" if s["candidate"] is not None and pct is not None else ""),
        f"URL:             {s['url'] or '-'}",
    ]
    if s["lastChange"]:
        c = s["lastChange"]
        lines.append(f"Last change:     {c['action']} by {c['by']} at {c['at']}: {c['why']}")
    if s.get("analysis"):
        lines.append(f"Analysis:        {_analysis_line(s['analysis'])}")
    for p in s.get("pendingRollbacks") or []:
        what = f"v{p['version']} ({p['kind']})" if "version" in p else "unreadable intent"
        lines.append(f"Pending rollback: {what} waiting for {p.get('waitingFor', 'a person')}: "
                     f"{p['finish']}")  # fmt: skip
    lines += ["", f"{'REVISION':<34} {'MODEL':<8} {'TRAFFIC':>7}  {'TAG':<7} ROLE"]
    rev = s["revisions"]
    for t in s["traffic"]:
        name = t.get("revisionName", "?")
        role = "stable" if name == rev.get("latestRolledoutRevision") else "canary"
        if name == rev.get("latestRolledoutRevision") and t.get("latestRevision"):
            role = "stable, latest"
        lines.append(
            f"{name:<34} {'v' + str(t['modelVersion']):<8} {t.get('percent', 0):>6}%  "
            f"{t.get('tag') or '-':<7} {role}"
        )
    if not s["traffic"]:
        lines.append("(no traffic reported yet)")
    for c in s["conditions"]:
        ok = c.get("status") == "True"
        why = "" if ok else f" {c.get('reason', '')}: {c.get('message', '')}"
        lines.append(f"  {MARK[ok]} {c.get('type')}{why}")
    if s["shadow"]:
        sh = s["shadow"]
        mirror = sh["mirrorPercent"]
        lines += ["", f"Shadow:          {sh['name']} v{sh['version']} mirroring "
                  + (f"{mirror:g} %" if mirror is not None else "(no VirtualService)")
                  + f", phase {sh.get('phase', 'Stable')}"]  # fmt: skip
        if sh.get("analysis"):
            lines.append(f"  Analysis:      {_analysis_line(sh['analysis'])}")
    lines += ["", "Events:"]
    for e in s["events"] or [{"type": "", "reason": "(none)", "message": "", "time": ""}]:
        lines.append(
            f"  {e['time'] or '':<26} {e['type'] or '':<8} {e['reason']:<14} {e['message']}"
        )
    return "\n".join(lines) + "\n"


def _analysis_line(a: dict[str, Any], width: int = 160) -> str:
    """``hold at interval 5 (2026-...): <reason>``, the reason cut to ``width`` characters."""
    reason = str(a.get("reason", ""))
    reason = reason if len(reason) <= width else reason[: width - 3] + "..."
    line = f"{a.get('decision', '?')} at interval {a.get('interval', '?')} ({a.get('at', '?')}): "
    line += reason
    if a.get("alerts"):  # it paged on-call: whoever reads status next should know
        line += f" [alert: {', '.join(map(str, a['alerts']))}]"
    if a.get("registry_error"):
        line += f" [{a['registry_error']}]"
    return line


# ------------------------------------------------------------------ verbs


def _change(args: argparse.Namespace, action: str, **details: Any) -> Change:
    return Change(action, args.reason or f"kubectl conveyor {action}", _actor(), details=details)


def _show(cluster: Cluster, args: argparse.Namespace) -> int:
    """Print the dry-run writes, or the status after a real change."""
    if isinstance(cluster, DryRun):
        sys.stdout.write(_dump({"dryRun": True, "writes": cluster.writes}, args.output or "yaml"))
        return 0
    s = actions.status(cluster, args.name)
    sys.stdout.write(_dump(s, args.output) if args.output else render_status(s))
    return 0


def cmd_status(cluster: Cluster, args: argparse.Namespace) -> int:
    s = actions.status(cluster, args.name)
    sys.stdout.write(_dump(s, args.output) if args.output else render_status(s))
    return 0


def cmd_canary(cluster: Cluster, args: argparse.Namespace) -> int:
    if args.version is None:
        current = get(cluster, ISVC, args.name)
        if inf.champion_of(current) is None:
            raise BadInputError("--version is required to start a canary")
        actions.set_traffic(cluster, args.name, args.percent, _change(args, "canary-step"))
        return _show(cluster, args)
    model = actions.resolve_version(
        _tracking_uri(args), _model_name(cluster, args), args.version,
        cluster=cluster, inference_service=args.name, runtime=args.runtime or "",
        require_approval=args.require_approval,
    )  # fmt: skip
    change = _change(args, "canary", version=model.version, percent=args.percent)
    actions.deploy(cluster, args.name, model, args.percent, change, score_log=args.score_log)
    return _show(cluster, args)


def _registry(cluster: Cluster, args: argparse.Namespace) -> Callable[[], Any] | None:
    """Opens the MLflow registry whose aliases follow a traffic change; None on a dry run
    (nothing may change) or without a tracking URI (said on stderr: aliases stay as they are).
    A function, so a rollback moves traffic before it ever needs MLflow to answer."""
    if isinstance(cluster, DryRun):
        return None
    uri = tracking_uri(args.tracking_uri)
    if not uri:
        sys.stderr.write("note: no --tracking-uri; MLflow aliases left as they are\n")
        return None

    def open_registry() -> Any:
        from conveyor.registry import ModelRegistry

        return ModelRegistry(uri)

    return open_registry


def cmd_promote(cluster: Cluster, args: argparse.Namespace) -> int:
    isvc = get(cluster, ISVC, args.name)
    model, version = _model_name(cluster, args), inf.current_model(isvc)["version"]
    change = _change(args, "promote", version=version)
    # Registry first, traffic second; a failed traffic change puts the aliases back.
    registry = _registry(cluster, args)
    actions.promote_release(cluster, args.name, change, registry and registry(), model)
    return _show(cluster, args)


def cmd_rollback(cluster: Cluster, args: argparse.Namespace) -> int:
    model = _model_name(cluster, args)
    change = _change(args, "rollback")
    # Traffic first (a canary back to the champion, else the shadow removed), then MLflow.
    done = actions.rollback_release(cluster, args.name, change, _registry(cluster, args), model)
    code = _show(cluster, args)
    if done.registry_error:
        sys.stderr.write(f"error: {done.registry_error}\n")
        return done.error.exit_code if isinstance(done.error, ConveyorError) else 1
    return code


def cmd_shadow(cluster: Cluster, args: argparse.Namespace) -> int:
    if args.off:
        actions.shadow_off(cluster, args.name, _change(args, "shadow-off"))
        return _show(cluster, args)
    if args.version is None:
        raise BadInputError("shadow needs --version V (or --off)")
    if not 0 < args.percent <= 100:
        raise BadInputError(f"--percent: {args.percent:g} is outside 0 < percent <= 100")
    model = actions.resolve_version(
        _tracking_uri(args), _model_name(cluster, args), args.version,
        cluster=cluster, inference_service=args.name, runtime=args.runtime or "",
        require_approval=args.require_approval,
    )  # fmt: skip
    change = _change(args, "shadow", version=model.version, percent=args.percent)
    actions.deploy_shadow(cluster, args.name, model, args.percent, change, score_log=args.score_log)
    return _show(cluster, args)


ANALYZE_EXIT = {"promote": 0, "step_up": 0, "continue": 0, "hold": 3, "rollback": 4}


def cmd_analyze(cluster: Cluster, args: argparse.Namespace) -> int:
    """Run the plan's analysis on a running canary or shadow: a live line per interval."""
    from conveyor.rollout.analysis import Decision, cluster_analysis
    from conveyor.rollout.plan import RolloutPlan, load_plan

    plan = load_plan(args.plan) if args.plan else RolloutPlan()
    if args.interval is not None:
        plan.analysis.interval_seconds = args.interval
    analysis = cluster_analysis(
        cluster, args.name, plan, args.prometheus or os.environ.get("PROMETHEUS_URL", ""),
        tracking_uri(args.tracking_uri), _actor(),
    )  # fmt: skip

    def progress(d: Decision) -> None:
        if args.output:
            return
        sys.stdout.write(d.line() + "\n")
        sys.stdout.flush()

    final = analysis.run(max_intervals=1 if args.once else None, progress=progress)
    if args.output:
        sys.stdout.write(_dump(final.to_dict(), args.output))
    return ANALYZE_EXIT[final.decision]


def _percent(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer percent") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..100")
    return value


COMMON = [
    arg("-n", "--namespace", help="namespace (default: the context's)"),
    arg("--context", help="kubeconfig context (default: the current one)"),
    arg("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube)"),
    arg("-o", "--output", choices=["yaml", "json"], help="machine-readable output instead of text"),
]
WRITES = [
    arg("--dry-run", action="store_true", help="print the change, write nothing"),
    arg("--reason", default="", help="why: kept in the annotation and Event"),
    arg("--tracking-uri", default="", help="MLflow registry (default: MLFLOW_TRACKING_URI)"),
    arg("--model", help="registered model name (default: the isvc's label)"),
    arg("--require-approval", action="store_true",
        help="refuse a version without a person's recorded approval"),
]  # fmt: skip
NAME = arg("name", help="InferenceService name")
SCORE_LOG = "score-log receiver URL: a new InferenceService logs its responses there "
RUNTIME = (
    "serving runtime of the new revision (default: the InferenceService's own, else "
    f"{inf.RUNTIME}); its {inf.SKLEARN_VERSION} annotation must equal the version's "
    "scikit-learn"
)


def _write(name: str, help_: str, run: Callable[..., int], *extra: Any) -> Command:
    """A verb that changes the rollout: the common flags, the write flags, NAME, its own."""
    return Command(name, help_, run, description=help_, args=[*COMMON, *WRITES, NAME, *extra])


VERBS: list[Command] = [
    Command("status", "revisions, traffic split, model versions, readiness and the last events",
            cmd_status,
            description="revisions, traffic split, model versions, readiness and the last events",
            args=[*COMMON, NAME]),
    _write("canary", "start a canary of --version at --percent (0-100), or step the running one",
           cmd_canary,
           arg("--version", help="registered version (omit to step the running canary)"),
           arg("--percent", type=_percent, required=True, help="traffic share, 0-100"),
           arg("--score-log", help=SCORE_LOG + "(a canary inherits it)"),
           arg("--runtime", help=RUNTIME)),
    _write("promote", "the canary takes 100 %% and becomes champion (MLflow alias too)",
           cmd_promote),
    _write("rollback", "all traffic back to the champion; the champion's spec restored",
           cmd_rollback),
    _write("shadow", "mirror --percent of requests to <name>-shadow serving --version", cmd_shadow,
           arg("--version", help="registered version to shadow"),
           arg("--percent", type=float, default=10.0, help="mirrored share (default 10)"),
           arg("--off", action="store_true", help="stop mirroring and remove the shadow"),
           arg("--score-log", help=SCORE_LOG + "(the shadow's scores, for comparison)"),
           arg("--runtime", help=RUNTIME.replace("the new revision", "the shadow").replace(
               "the InferenceService's own", "the champion's"))),
    Command("analyze", "judge the running canary from online metrics: step up, promote, hold "
            "or roll back, one line per interval", cmd_analyze,
            description="Run the rollout plan's analysis until promote, hold or rollback.",
            aliases=["analyse"],  # the stage's spelling (analyse_rollout) works too
            args=[*COMMON, NAME,
                  arg("--plan", help="rollout plan YAML (default: the built-in plan)"),
                  arg("--prometheus", help="Prometheus URL (default: PROMETHEUS_URL)"),
                  arg("--once", action="store_true",
                      help="one interval, then exit (cron or CI)"),
                  arg("--interval", type=float,
                      help="override the plan's interval, in seconds"),
                  arg("--tracking-uri", default="",
                      help="MLflow registry (default: MLFLOW_TRACKING_URI)")]),
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    return build(
        "kubectl conveyor",
        "Operate model rollouts on KServe InferenceServices (canary, shadow, promote, roll back).",
        VERBS,
        metavar="VERB",
        dest="verb",
        epilog=EPILOG,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cluster: Cluster = KubeCluster(
            args.namespace, context=args.context, kubeconfig=args.kubeconfig, actor=_actor()
        )
        if getattr(args, "dry_run", False):
            cluster = DryRun(cluster)
        return int(args.func(cluster, args))
    except ConveyorError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
