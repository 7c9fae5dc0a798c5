"""``conveyor``: the same stages for any CI system, and ``conveyor run`` for the embedded default.

Every command is a row of ``COMMANDS`` (``conveyor.cli._table``); a handler maps its arguments
onto a stage (``conveyor.stages``) or one engine call and prints the result, nothing more.

Exit codes: 0 ok, 2 bad input, 3 gate hold, 4 contract violation or gate reject, 5 drift,
6 tracking/registry failure, other non-zero for other failures.
"""

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor import __version__, context, progress
from conveyor.cli._table import Arg, Command, Exclusive, arg, build
from conveyor.context import EMBEDDED_TRACKING, tracking_uri
from conveyor.errors import (
    BadInputError,
    ContractViolationError,
    ConveyorError,
    PipelineFailedError,
)
from conveyor.lifecycle import Terminated, stop_on_sigterm

if TYPE_CHECKING:
    from conveyor.config import PipelineConfig
    from conveyor.pipelines.local import Output

__all__ = ["COMMANDS", "DEFAULT_CONFIG", "DRIFT_EXIT", "SIM_SCENARIOS", "build_parser", "main"]

DEFAULT_CONFIG = "examples/fraud/pipeline.yaml"
DRIFT_EXIT = 5  # `conveyor drift`: the batch drifted over the policy's threshold
# conveyor.local.sim.SCENARIOS, named here so building the parser does not import the sim
# (a test keeps the two equal).
SIM_SCENARIOS = (
    "drift", "errors", "healthy", "latency", "metrics-down", "no-traffic", "shadow",
    "shadow-errors",
)  # fmt: skip


def _progress(step: int, total: int, message: str) -> None:
    print(f"[{step}/{total}] {message}", flush=True)


def _registry_uri(args: argparse.Namespace) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the embedded store, pinned."""
    return context.pinned(tracking_uri(args.tracking_uri, EMBEDDED_TRACKING))


def _print(doc: object, args: argparse.Namespace, text: str) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True) if args.format == "json" else text)


# ---------------------------------------------------------------------------- data commands


def cmd_sample(args: argparse.Namespace) -> int:
    from conveyor.sample import Mode, generate
    from conveyor.tables import write_table

    mode: Mode = "drift" if args.drift else "corrupt" if args.corrupt else "clean"
    as_of = datetime.fromisoformat(args.as_of) if args.as_of else None
    df = generate(rows=args.rows, seed=args.seed, as_of=as_of, mode=mode, start_id=args.start_id)
    path = write_table(df, args.out)
    print(f"wrote {len(df):,} rows x {len(df.columns)} columns ({mode}) to {path}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from conveyor import contracts
    from conveyor.stages import validate_data

    out = Path(args.report_dir) if args.report_dir else None
    result = validate_data.run(
        args.data,
        contracts.load_contract(args.contract),
        None,
        out / "validation.json" if out else None,
        out / "validation.md" if out else None,
        args.reference,
        enforce=False,
    )
    _print(result.report, args, contracts.render_text(result.report))
    return 0 if result.passed else ContractViolationError.exit_code


def cmd_profile(args: argparse.Namespace) -> int:
    from conveyor.contracts import write_profile

    profile = write_profile(args.data, args.out, args.columns, bins=args.bins)
    print(
        f"wrote profile of {len(profile['columns'])} columns ({profile['rows']:,} rows) "
        f"to {args.out}"
    )
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from conveyor import drift

    policy = drift.policy_for(args.config, args.features, args.psi_threshold)
    report = drift.compare(
        args.reference, args.current, policy, model=args.model, scores=not args.no_scores,
        tracking_uri=_registry_uri(args),
    )  # fmt: skip
    if args.report_dir:
        drift.write_reports(report, args.report_dir)
    _print(report, args, drift.render_text(report))
    return DRIFT_EXIT if report["decision"] == "drift" else 0


def cmd_gate(args: argparse.Namespace) -> int:
    from conveyor import gate
    from conveyor.stages import quality_gate

    out = Path(args.report_dir) if args.report_dir else None
    result = quality_gate.run(
        args.candidate,
        gate.load_policy(args.policy),
        out / "gate.json" if out else None,
        out / "gate.md" if out else None,
        out / "gate.html" if out else None,
        champion_json=args.champion,
    )
    _print(result.to_dict(), args, gate.render_text(result))
    return result.exit_code


# ------------------------------------------------------------------------------ templating


def cmd_new(args: argparse.Namespace) -> int:
    from conveyor.scaffold import scaffold

    data = {}
    if args.data and not args.label:
        raise BadInputError("--data needs --label: the column the model learns to predict")
    if args.data:
        data = {"table": args.data, "label": args.label, "positive": args.positive,
                "key": args.key, "sensitive": args.sensitive}  # fmt: skip
    elif args.label or args.positive or args.key or args.sensitive:
        raise BadInputError("--label, --positive, --key and --sensitive describe --data TABLE")
    written = scaffold(args.team, args.dir, force=args.force, **data)
    folder = written[0].parent
    print("\n".join(f"wrote {p}" for p in written))
    print(
        f"next: conveyor validate-config {folder}/pipeline.yaml\n"
        f"      conveyor run --config {folder}/pipeline.yaml --smoke\n"
        f"      conveyor compile {folder}/pipeline.yaml -o {args.team}.yaml"
    )
    return 0


def cmd_validate_config(args: argparse.Namespace) -> int:
    from conveyor.config import load_pipeline_config
    from conveyor.pipelines.checks import problems
    from conveyor.pipelines.template import describe

    try:
        config = load_pipeline_config(args.config)
    except BadInputError as exc:
        print(f"{args.config}: invalid\n{exc}", file=sys.stderr)
        return BadInputError.exit_code
    found = problems(config)
    if found:
        print(f"{args.config}: invalid", file=sys.stderr)
        print("\n".join(f"{args.config}: {p}" for p in found), file=sys.stderr)
        return BadInputError.exit_code
    print("\n".join([f"{args.config}: valid", *describe(config)]))
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from conveyor.config import load_pipeline_config
    from conveyor.pipelines.template import compile_config

    config = load_pipeline_config(args.config)
    if args.smoke:
        config = config.smoke_profile()
    result = compile_config(
        config, args.out, pipeline=args.pipeline, output_format=args.format, version=args.version
    )
    print(
        f"wrote {result['path']}: {result['pipeline']} pipeline ({args.format}), sha256 "
        f"{result['sha256'][:12]}, parameters: {', '.join(result['parameters'])}"
    )
    return 0


# ---------------------------------------------------------------------------------- registry


def cmd_models(args: argparse.Namespace) -> int:
    from conveyor.registry import ModelRegistry, render_versions

    registry = ModelRegistry(_registry_uri(args))
    action = args.models_command
    if action == "list":
        versions = registry.versions(args.name)
        _print(versions, args, render_versions(args.name, versions))
        return 0
    if action == "promote":
        v = registry.promote(args.name, args.version, args.reason or "")
        print(f"{args.name} v{v['version']} is now champion (aliases: {', '.join(v['aliases'])})")
    elif action == "rollback":
        v = registry.rollback(args.name, args.reason or "")
        print(f"{args.name}: champion rolled back to v{v['version']}")
    elif action == "reject":
        v = registry.reject_candidate(args.name, args.version, args.reason)
        print(f"{args.name} v{v['version']} rejected: {v['status']}, not deployable")
    else:
        v = registry.approve(args.name, args.version, args.reason)
        print(f"{args.name} v{v['version']} approved by {v['tags']['conveyor.approved_by']}")
    return 0


# ---------------------------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    with stop_on_sigterm(forward=True):  # SIGTERM stops the tasks and servers, as Ctrl-C does
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from conveyor.config import load_pipeline_config
    from conveyor.local import run as local_run

    config = load_pipeline_config(args.config)
    if args.smoke:
        config = config.smoke_profile()

    def check() -> None:
        from conveyor.contracts import load_contract

        load_contract(config.resolve(config.contract) or "")  # an invalid contract: exit 2
        _preflight(args.config, config)

    work = Path(config.workdir).resolve()
    # The preflight runs once for these files and this code (remembered under work/cache).
    inputs = local_run.checked_inputs(config, work / "cache", check)
    total, started = 5, time.monotonic()
    data_uri = local_run.batch(config, args.data, work / "data", _progress, total, args.smoke)
    # Skip-if-unchanged first: an unchanged re-run costs a hash (or its sidecar) and one
    # registry query (a read-only sqlite query on the embedded store): no pandas, no MLflow,
    # no kfp, which are imported below, only when there is something to train.
    store = context.own_store(config.tracking.uri)
    key, skipped = local_run.unchanged(config, data_uri, store, force=args.force, inputs=inputs)
    if skipped:
        print(skipped)
        return 0
    from conveyor.contracts import load_profile
    from conveyor.pipelines.local import PipelineFailedError, find_output, run_training
    from conveyor.tables import probe_table

    reference, said = local_run.reference_profile(
        config, bool(args.data), args.reference, work / "data"
    )
    _progress(2, total, said)
    # Preflight: bad input (unreadable batch, invalid profile) exits 2 before any pipeline
    # task starts; a readable batch that breaks its contract is the pipeline's job.
    probe_table(data_uri)
    if reference:
        load_profile(reference)
    output = _output(args, work, "run")
    _progress(3, total, f"training pipeline on kfp.local (log: {output.log})")
    try:
        result = run_training(
            config, data_uri, reference, work / "pipeline_root", store,
            str(Path(config.tracking.artifact_root).resolve()), output,
            git_commit=context.git_commit(), training_key=key,
        )  # fmt: skip
    except PipelineFailedError as exc:
        return _explain_failure(exc, output)
    run_dir: Path = result["run_dir"]
    _progress(4, total, f"training pipeline done in {time.monotonic() - started:.0f}s")
    evaluation_path = find_output(run_dir, "evaluate", "evaluation")
    metrics = json.loads(evaluation_path.read_text())["metrics"] if evaluation_path else {}
    headline = ", ".join(
        f"{k} {metrics[k]:.4f}" for k in ("roc_auc", "recall", "precision") if metrics.get(k)
    )
    gate_path = find_output(run_dir, "quality-gate", "gate")
    release = local_run.release_summary(config, store, result["run_id"], evaluation_path, gate_path)
    _progress(5, total, "serving: kserve.ModelServer on 127.0.0.1, smoke test, shadow replay")
    try:
        with progress.showing(progress.Terminal(sys.stdout)):
            serving, served_ok = local_run.serve_locally(
                config, store, result["run_id"],
                find_output(run_dir, "prepare-features", "holdout"), work / "serving",
            )  # fmt: skip
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: never leave an unsmoked candidate behind
        for line in local_run.settle(
            config,
            store,
            result["run_id"],
            False,
            "the run was stopped before its local smoke test",
        ):
            print(line, file=sys.stderr)
        raise
    release += local_run.settle(config, store, result["run_id"], served_ok)
    _progress(5, total, f"done in {time.monotonic() - started:.0f}s")
    print(
        "\n".join(
            [
                "",
                *release,
                "",
                *serving,
                "",
                f"holdout: {headline}",
                f"reports : {run_dir}/  (validate-data/report, evaluate/report, "
                "quality-gate/report, train/model)",
                f"MLflow  : run {result['run_id']} in {store} (experiment "
                f"{config.tracking.experiment}); open it with `make ui`",
                f"log     : {output.log}",
            ]
        )
    )
    if not served_ok:
        from conveyor.errors import ServingError

        print(
            "error: the served model failed its smoke test (see the smoke report above); a "
            "cluster rollout would stop here with traffic on the champion",
            file=sys.stderr,
        )
        return ServingError.exit_code
    if args.smoke:  # a PR check fails unless the gate approves: 0 approve, 3 hold, 4 reject
        from conveyor.gate import EXIT_CODES

        return EXIT_CODES.get(str(result["verdict"]), 1)
    return 0


def _preflight(path: str, config: "PipelineConfig") -> None:
    """What validate-config finds stops a run before it reads data or trains (exit 2)."""
    from conveyor.pipelines.checks import problems

    found = problems(config)
    if found:
        raise BadInputError(
            f"{path}: {len(found)} problem(s), nothing was run (`conveyor validate-config` "
            "shows the same):\n" + "\n".join(f"{path}: {p}" for p in found)
        )


def cmd_retrain(args: argparse.Namespace) -> int:
    with stop_on_sigterm(forward=True):
        return _retrain(args)


def _retrain(args: argparse.Namespace) -> int:
    from conveyor.config import load_pipeline_config
    from conveyor.local import run as local_run
    from conveyor.pipelines.local import (
        PipelineFailedError,
        find_output,
        run_continuous,
        task_parameter,
    )
    from conveyor.tables import probe_table

    config = load_pipeline_config(args.config)
    _preflight(args.config, config)
    work = Path(config.workdir).resolve()
    started = time.monotonic()
    data_uri = local_run.batch(config, args.data, work / "data", _progress, 3)
    probe_table(data_uri)
    output = _output(args, work, "retrain")
    _progress(2, 3, f"continuous_training on kfp.local (log: {output.log})")
    try:
        result = run_continuous(
            config, data_uri, work / "pipeline_root", context.own_store(config.tracking.uri),
            str(Path(config.tracking.artifact_root).resolve()), output,
            git_commit=context.git_commit(), force=args.force,
        )  # fmt: skip
    except PipelineFailedError as exc:
        return _explain_failure(exc, output)
    run_dir: Path = result["run_dir"]
    _progress(3, 3, f"{result['decision']} in {time.monotonic() - started:.0f}s")
    for task, name in (("check-trigger", "drift_report"), ("check-trigger", "report")):
        path = find_output(run_dir, task, name)
        if path is not None:
            print(path.read_text().strip(), f"\n({path})\n")
    if result["run_id"]:
        verdict = task_parameter(run_dir, "quality-gate", "Output") or "unknown"
        version = task_parameter(run_dir, "register-model", "version")
        status = task_parameter(run_dir, "register-model", "status")
        registered = (
            f"registered {config.model_name} v{version} ({status})"
            if version
            else "nothing registered"
        )
        print(
            f"trained: MLflow run {result['run_id']}; gate verdict {verdict}; {registered} "
            f"(outputs under {run_dir})"
        )
    return 0


def _output(args: argparse.Namespace, work: Path, kind: str) -> "Output":
    """kfp's task logs to a file of this run; a line per task on the terminal."""
    import os

    from conveyor.pipelines.local import Output

    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = work / "logs" / f"{kind}-{stamp}-{os.getpid()}.log"
    return Output(log, verbose=args.verbose)


def _explain_failure(exc: PipelineFailedError, output: "Output") -> int:
    """Point at the validation report when the data contract stopped the run; otherwise end
    with the failed stage's own error (kfp's ``Inner task failed`` says nothing)."""
    from conveyor.contracts import render_text
    from conveyor.pipelines.local import find_output

    run_dir = exc.run_dir or Path(".")
    report_path = find_output(run_dir, "validate-data", "report_json")
    if report_path and report_path.is_file():
        report = json.loads(report_path.read_text())
        if not report.get("passed", True):
            print(render_text(report), file=sys.stderr)
            print(
                f"error: the batch broke its data contract; nothing was trained. "
                f"Report: {find_output(run_dir, 'validate-data', 'report')}",
                file=sys.stderr,
            )
            return ContractViolationError.exit_code
    print(f"outputs under {run_dir}; the tasks' full log: {output.log}", file=sys.stderr)
    print(f"error: {exc}", file=sys.stderr)  # the stage's own error, last
    return exc.exit_code


# ---------------------------------------------------------------------------------- serving


def cmd_serve(args: argparse.Namespace) -> int:
    import signal
    import tempfile

    from conveyor.local.model_server import LocalServer
    from conveyor.registry import ModelRegistry

    registry = ModelRegistry(_registry_uri(args))
    row = registry.resolve(args.name, args.version)
    served = args.served_name or args.name
    with tempfile.TemporaryDirectory(prefix="conveyor-serve-") as tmp:
        folder = registry.download(row, tmp)  # sha256 checked against the registry tag
        with LocalServer(folder, served, row["version"], port=args.port) as server:
            print(
                f"serving {args.name} v{row['version']} at {server.url}\n"
                f"  V1: POST {server.url}/v1/models/{served}:predict\n"
                f"  V2: POST {server.url}/v2/models/{served}/infer\n"
                "Ctrl-C stops it.",
                flush=True,
            )
            stop = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # delivered to sigwait, not raised
            signal.sigwait(stop)
    return 0


def cmd_scorelog(args: argparse.Namespace) -> int:
    from conveyor.rollout.scorelog import run

    return run(args.host, args.port, args.max_pending, args.max_series, args.state_dir)


def cmd_rollout_sim(args: argparse.Namespace) -> int:
    """One local rollout scenario end to end; prints the decision and its evidence."""
    from dataclasses import asdict

    from conveyor.local.sim import run_scenario

    quiet = args.format == "json"
    result = run_scenario(
        args.scenario, interval=args.interval,
        progress=None if quiet else (lambda line: print(line, flush=True)),
    )  # fmt: skip
    final = {"promote": "promoted", "rollback": "rolled_back", "hold": "held"}.get(
        result.decision, result.decision
    )
    if quiet:
        print(json.dumps({**asdict(result), "final": final, "ok": result.ok}, indent=2))
    else:
        print(
            f"\n{args.scenario}: {final} after {result.intervals_to_decision} interval(s) of "
            f"{args.interval:g}s (expected {result.expected}); requests {result.requests}, "
            f"lost {result.lost_requests}, load held {result.load_rps:g} rps\n"
            f"  evidence: {result.reason}"
        )
    return 0 if result.ok else 1  # not the expected end, or a request lost: the sim failed


# ------------------------------------------------------------------------------ the table

FORMAT = arg("--format", choices=["text", "json"], default="text", help="output format")
TRACKING_URI = arg(
    "--tracking-uri", help=f"MLflow URI (default: $MLFLOW_TRACKING_URI, else {EMBEDDED_TRACKING})"
)
CONFIG = arg("--config", default=DEFAULT_CONFIG, help=f"pipeline config (default {DEFAULT_CONFIG})")
NAME = arg("name", help="registered model name")
VERBOSE = arg(
    "--verbose",
    action="store_true",
    help="also print kfp's raw task logs (they always go to the run's log file)",
)


def _reason(required: bool = False, what: str = "why, recorded on the version") -> Arg:
    return arg("--reason", required=required, help=what)


MODELS = [
    Command("list", "versions with aliases and status", args=[arg("name"), FORMAT]),
    Command("promote", "move champion to VERSION (keeps previous-champion)",
            args=[arg("name"), arg("version"), _reason()]),
    Command("rollback", "move champion back to previous-champion",
            args=[arg("name"), _reason(what="why, recorded on the versions")]),
    Command("approve", "release a held version (records who and why)",
            args=[arg("name"), arg("version"),
                  _reason(True, "why this held version may ship")]),
    Command("reject", "a canary or shadow of VERSION failed: not deployable, loses candidate",
            args=[arg("name"), arg("version"), _reason(True)]),
]  # fmt: skip

COMMANDS: list[Command] = [
    Command(
        "sample", "write the deterministic fraud sample table", cmd_sample,
        description="Write the card-transaction fraud sample (CSV or Parquet, by extension). "
        "--drift shifts distributions; --corrupt injects contract violations.",
        args=[
            arg("--rows", type=int, default=50_000, help="rows to generate (default 50000)"),
            arg("--out", required=True, help="output file, .csv or .parquet"),
            arg("--seed", type=int, default=7, help="random seed (default 7)"),
            arg("--as-of", help="newest event time, ISO date (default: today 00:00 UTC)"),
            arg("--start-id", type=int, default=1, help="first transaction id (default 1)"),
            Exclusive((
                arg("--drift", action="store_true", help="a batch with shifted distributions"),
                arg("--corrupt", action="store_true", help="a batch that breaks the contract"),
            )),
        ],
    ),
    Command(
        "validate", "check a batch against a data contract", cmd_validate,
        description="Check DATA against CONTRACT (and a reference profile for drift). "
        "Exit 0 when the batch passes, 4 on contract violations, 2 on bad input.",
        args=[
            arg("data", help="batch to check, .csv or .parquet"),
            arg("--contract", required=True, help="data contract YAML"),
            arg("--reference", help="reference profile JSON (conveyor profile) for PSI drift"),
            arg("--format", choices=["text", "json"], default="text", help="report format"),
            arg("--report-dir", help="also write validation.json and validation.md here"),
        ],
    ),
    Command(
        "profile", "build a reference profile for drift checks", cmd_profile,
        description="Profile DATA (statistics and reference bins per column) for validate "
        "--reference.",
        args=[
            arg("data", help="reference batch, .csv or .parquet"),
            arg("--out", required=True, help="profile JSON to write"),
            arg("--columns", help="comma-separated columns (default: all)"),
            arg("--bins", type=int, default=10, help="quantile bins per numeric column"),
        ],
    ),
    Command(
        "new", "scaffold a team's pipeline template (config, contract, gate policy, rollout plan)",
        cmd_new,
        description="Write DIR/TEAM/ with pipeline.yaml, contract.yaml, gate_policy.yaml and "
        "rollout.yaml: a template that runs as written on the sample data, every field "
        "commented with what to change.",
        args=[
            arg("team", help="team name (lowercase, digits, '-'): names pipeline and model"),
            arg("--dir", default=".", help="parent folder (default: current)"),
            arg("--force", action="store_true", help="overwrite existing files"),
            arg("--data", help="the team's table (CSV or Parquet): profile it into the contract, "
                "the pipeline's columns and a gate (needs --label)"),
            arg("--label", help="the label column (two values)"),
            arg("--positive", help="the label value of the positive class, when it is not 0/1"),
            arg("--key", help="the column unique per row (default: a unique column named *id)"),
            arg("--sensitive", nargs="+", help="group columns to check fairness on (kept in the "
                "splits, not model inputs)"),
        ],
    ),
    Command(
        "validate-config", "check a pipeline config and every file it names, with field paths",
        cmd_validate_config,
        description="Validate CONFIG (schema, then the contract, gate policy, rollout plan and "
        "golden set it names, step names, cron). Exit 0 valid, 2 invalid: one line per "
        "problem with its field path, the value and the bound.",
        args=[arg("config", help="pipeline config YAML")],
    ),
    Command(
        "compile", "compile a config into a KFP pipeline (or Kubernetes Pipeline objects)",
        cmd_compile,
        description="Compile the training, rollout or continuous_training pipeline for "
        "CONFIG, with its cluster settings (image, MLflow URI, namespace, resources, node "
        "selector, Secrets by name) applied: the output is ready to submit or apply.",
        args=[
            arg("config", help="pipeline config YAML"),
            arg("-o", "--out", required=True, help="output YAML"),
            arg("--pipeline", choices=["training", "rollout", "continuous_training"],
                default="continuous_training"),
            arg("--format", choices=["kfp", "kubernetes"], default="kfp",
                help="kfp: pipeline spec for `conveyor submit`; kubernetes: Pipeline + "
                "PipelineVersion objects (KFP 2.14+) for kubectl apply / GitOps"),
            arg("--version", help="PipelineVersion name suffix (default: content hash)"),
            arg("--smoke", action="store_true", help="compile the config's smoke profile"),
        ],
    ),
    Command(
        "drift", "has a batch drifted from the reference (PSI, KS, score PSI)?", cmd_drift,
        description="Compare CURRENT with a reference: PSI per feature in the reference's "
        "bins, KS on numeric features, PSI of the model's scores. Exit 0 stable, 5 drift over "
        "the threshold, 2 bad input.",
        args=[
            arg("--reference", required=True,
                help="profile .json, data .csv/.parquet, or models:/NAME@ALIAS (the profile "
                "that version's training run logged; its model also scores the batch)"),
            arg("--current", required=True, help="recent batch, .csv or .parquet"),
            arg("--model", help="model folder or models:/NAME@ALIAS for score PSI"),
            arg("--no-scores", action="store_true", help="skip score PSI for models:/ refs"),
            arg("--config", help="pipeline config: its retrain.drift policy applies and its "
                "features are checked"),
            arg("--features", help="comma-separated features to check (default: all)"),
            arg("--psi-threshold", type=float, help="override the policy's PSI threshold"),
            arg("--tracking-uri", help="MLflow URI for models:/ (default: "
                f"$MLFLOW_TRACKING_URI, else {EMBEDDED_TRACKING})"),
            FORMAT,
            arg("--report-dir", help="also write drift.json, drift.md and drift.html here"),
        ],
    ),
    Command(
        "gate", "apply a gate policy to an evaluation (approve / hold / reject)", cmd_gate,
        description="Apply POLICY to the candidate's evaluation.json (and the champion's). "
        "Exit 0 approve, 3 hold, 4 reject, 2 bad input. Without --champion, a champion block "
        "embedded in the candidate file (as evaluate writes it) is used.",
        args=[
            arg("--policy", required=True, help="gate policy YAML"),
            arg("--candidate", required=True, help="candidate evaluation.json"),
            arg("--champion", help="champion evaluation.json"),
            FORMAT,
            arg("--report-dir", help="also write gate.json, gate.md and gate.html here"),
        ],
    ),
    Command(
        "models", "registered models: list, promote, rollback, approve, reject", cmd_models,
        description="Operate the MLflow model registry (aliases candidate / champion / "
        "previous-champion). Every move leaves a tag trail on the versions.",
        args=[TRACKING_URI], subcommands=MODELS, dest="models_command",
    ),
    Command(
        "run", "run the training pipeline on the embedded default (kfp.local + MLflow on sqlite)",
        cmd_run,
        description="Run validate -> prepare -> train -> evaluate with kfp.local, tracking in "
        "MLflow on a sqlite file under .conveyor/. This is what `make run` does.",
        args=[
            CONFIG,
            arg("--data", help="use this batch instead of the config's data source"),
            arg("--reference", help="reference profile for drift checks"),
            arg("--smoke", action="store_true",
                help="the config's smoke profile: sampled rows, small estimator, registered as "
                "<model>-smoke; exits with the gate verdict (0 approve, 3 hold, 4 reject), for "
                "PR checks"),
            arg("--force", action="store_true",
                help="train even when an earlier run had the same data, code, config and seed"),
            VERBOSE,
        ],
    ),
    Command(
        "retrain", "the continuous_training pipeline on kfp.local: drift + trigger check, then "
        "train", cmd_retrain,
        description="Check the batch for drift against the champion's profile, apply the "
        "config's retrain policy (skip an unchanged re-run; else no champion, new data, drift, "
        "max age) and run the training pipeline only when a trigger fired.",
        args=[
            CONFIG,
            arg("--data", help="the incoming batch (default: the config's data source)"),
            arg("--force", action="store_true", help="retrain whatever the policy says"),
            VERBOSE,
        ],
    ),
    Command(
        "serve", "serve a registered version on 127.0.0.1 with kserve.ModelServer (V1 and V2)",
        cmd_serve,
        description="Download a registered version (sha256 checked), serve it on 127.0.0.1 "
        "with the protocol stack of KServe's sklearn runtime until Ctrl-C.",
        args=[
            NAME,
            arg("version", help="version number or alias (champion, candidate)"),
            arg("--port", type=int, default=8080),
            arg("--served-name", help="model name in the URLs (default: NAME)"),
            TRACKING_URI,
        ],
    ),
    Command(
        "scorelog", "receive KServe inference-logger events, export the prediction-score "
        "histogram", cmd_scorelog,
        description="Serve POST /log for KServe's inference logger (CloudEvents, binary mode), "
        "turn each V1/V2 response into positive-class scores and export them as "
        "conveyor_prediction_score{model,version} on GET /metrics for the rollout's score_psi "
        "check; GET /healthz for probes. Point each revision's spec.predictor.logger.url at "
        "http://conveyor-scorelog.<ns>.svc.cluster.local/log?model=<model>&version=<version>. "
        'POST /feedback {"id": <ce-id>, "labels": [0, 1, ...]} labels a logged response '
        "(the client sets ce-id on its predict request) into "
        "conveyor_feedback_score{model,version,label} for the auc_drop_pct_above check. "
        "Runs until SIGTERM or Ctrl-C.",
        args=[
            arg("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)"),
            arg("--port", type=int, default=8080, help="port to bind (default 8080)"),
            arg("--max-pending", type=int, default=100_000, metavar="N",
                help="logged response ids kept for POST /feedback; the least recent is evicted "
                "beyond N (default 100000)"),
            arg("--state-dir", default=None, metavar="DIR",
                help="keep the pending responses in DIR/pending.sqlite3, so a restart loses "
                "none (default $CONVEYOR_SCORELOG_STATE_DIR, else memory only)"),
            arg("--max-series", type=int, default=64, metavar="N",
                help="(model, version) pairs exported at once; the least recently logged is "
                "removed beyond N, so whoever posts cannot grow Prometheus's series without "
                "bound (default 64)"),
        ],
    ),
    Command(
        "rollout-sim", "a real canary on this machine: model servers, nginx, Prometheus, the "
        "analysis", cmd_rollout_sim,
        description="Champion and candidate kserve.ModelServer processes, an nginx router "
        "honouring the split, a real Prometheus scraping both, bounded load, and the rollout "
        "analysis deciding each interval. Needs `make tools` (Prometheus and nginx).",
        args=[
            arg("--scenario", required=True, choices=SIM_SCENARIOS),
            arg("--interval", type=float, default=3.0, help="analysis interval, seconds"),
            arg("--format", choices=["text", "json"], default="text"),
        ],
    ),
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from conveyor.cli.submit import commands as kfp_commands

    return build(
        "conveyor",
        "Conveyor: a gated assembly line for ML models (Kubeflow Pipelines, KServe).",
        [*COMMANDS, *kfp_commands()],
        top=[arg("--version", action="version", version=f"conveyor {__version__}")],
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConveyorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `conveyor ... | head`: the reader left; no traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it
    except Terminated:
        print(
            "terminated (SIGTERM): running tasks and servers were stopped, the MLflow run "
            "marked FAILED, nothing promoted",
            file=sys.stderr,
        )
        return 143
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
