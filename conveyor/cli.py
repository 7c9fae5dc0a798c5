"""``conveyor``: the same stages for any CI system, and ``conveyor run`` for the embedded default.

Exit codes: 0 ok, 2 bad input, 3 gate hold, 4 contract violation or gate reject,
6 tracking/registry failure, other non-zero for other failures.
"""

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from conveyor import __version__
from conveyor.errors import BadInputError, ContractViolationError, ConveyorError

DEFAULT_CONFIG = "examples/fraud/pipeline.yaml"


def _progress(step: int, total: int, message: str) -> None:
    print(f"[{step}/{total}] {message}", flush=True)


# ------------------------------------------------------------------------------------- sample


def cmd_sample(args: argparse.Namespace) -> int:
    from conveyor.sample import Mode, generate
    from conveyor.tables import write_table

    mode: Mode = "drift" if args.drift else "corrupt" if args.corrupt else "clean"
    as_of = datetime.fromisoformat(args.as_of) if args.as_of else None
    df = generate(rows=args.rows, seed=args.seed, as_of=as_of, mode=mode, start_id=args.start_id)
    path = write_table(df, args.out)
    print(f"wrote {len(df):,} rows x {len(df.columns)} columns ({mode}) to {path}")
    return 0


# ----------------------------------------------------------------------------------- validate


def cmd_validate(args: argparse.Namespace) -> int:
    from conveyor import contracts
    from conveyor.tables import write_json, write_text

    contract = contracts.load_contract(args.contract)
    _, report = contracts.check_batch(args.data, contract, args.reference)
    if args.report_dir:
        out = Path(args.report_dir)
        write_json(report, out / "validation.json")
        write_text(contracts.render_markdown(report), out / "validation.md")
    if args.format == "json":
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(contracts.render_text(report))
    return 0 if report["passed"] else ContractViolationError.exit_code


def cmd_profile(args: argparse.Namespace) -> int:
    from conveyor import drift
    from conveyor.tables import read_table, write_json

    df = read_table(args.data)
    columns = args.columns.split(",") if args.columns else None
    if columns:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise BadInputError(f"--columns: {missing} not in {args.data}")
    profile = drift.profile_frame(df, columns, bins=args.bins)
    profile["source"] = str(args.data)
    write_json(profile, args.out)
    print(f"wrote profile of {len(profile['columns'])} columns ({len(df):,} rows) to {args.out}")
    return 0


# --------------------------------------------------------------------------------------- gate


def cmd_gate(args: argparse.Namespace) -> int:
    from conveyor import gate
    from conveyor.tables import read_json_object, write_json, write_text

    policy = gate.load_policy(args.policy)
    candidate = read_json_object(args.candidate, "candidate evaluation")
    champion = (
        read_json_object(args.champion, "champion evaluation")
        if args.champion
        else candidate.get("champion")  # evaluate embeds the champion it scored
    )
    result = gate.decide(policy, candidate, champion)
    if args.report_dir:
        out = Path(args.report_dir)
        write_json(result.to_dict(), out / "gate.json")
        write_text(gate.render_markdown(result), out / "gate.md")
        write_text(gate.render_html(result), out / "gate.html")
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        print(gate.render_text(result))
    return result.exit_code


# ------------------------------------------------------------------------------------- models

EMBEDDED_TRACKING = "sqlite:///.conveyor/mlflow.db"


def cmd_models(args: argparse.Namespace) -> int:
    import os

    from conveyor.registry import ModelRegistry

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or EMBEDDED_TRACKING
    registry = ModelRegistry(_absolute_sqlite(uri))
    if args.models_command == "list":
        versions = registry.versions(args.name)
        if args.format == "json":
            print(json.dumps(versions, indent=2, sort_keys=True))
            return 0
        if not versions:
            print(f"{args.name}: no registered versions")
            return 0
        print(f"{'version':>7}  {'aliases':<30} {'status':<12} {'roc_auc':>8}  run")
        for v in versions:
            print(
                f"{v['version']:>7}  {','.join(v['aliases']) or '-':<30} {v['status'] or '-':<12} "
                f"{v['tags'].get('metric.roc_auc', '-'):>8}  {v['run_id']}"
            )
        return 0
    if args.models_command == "promote":
        v = registry.promote(args.name, args.version, args.reason or "")
        print(f"{args.name} v{v['version']} is now champion (aliases: {', '.join(v['aliases'])})")
    elif args.models_command == "rollback":
        v = registry.rollback(args.name, args.reason or "")
        print(f"{args.name}: champion rolled back to v{v['version']}")
    else:
        v = registry.approve(args.name, args.version, args.reason)
        print(f"{args.name} v{v['version']} approved by {v['tags']['conveyor.approved_by']}")
    return 0


# ---------------------------------------------------------------------------------------- run


def _absolute_sqlite(uri: str) -> str:
    """kfp.local tasks may run elsewhere: pin a relative sqlite path to the current folder."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def cmd_run(args: argparse.Namespace) -> int:
    from conveyor import drift
    from conveyor.config import load_pipeline_config
    from conveyor.contracts import load_contract
    from conveyor.sample import generate
    from conveyor.tables import write_json, write_table

    config = load_pipeline_config(args.config)
    load_contract(config.resolve(config.contract) or "")  # an invalid contract stops here (exit 2)
    work = Path(config.workdir).resolve()
    data_dir = work / "data"
    total = 5
    started = time.monotonic()

    if args.data:
        data_uri = str(Path(args.data).resolve())
        _progress(1, total, f"data: {data_uri}")
    elif config.data.source == "file":
        data_uri = str(Path(config.resolve(config.data.path) or "").resolve())
        _progress(1, total, f"data: {data_uri}")
    else:
        s = config.data.sample
        _progress(1, total, f"data: generating {s.rows:,} sample rows (seed {s.seed})")
        data_uri = str(
            write_table(generate(s.rows, seed=s.seed), data_dir / "transactions.parquet")
        )

    reference = config.resolve(config.data.reference_profile)
    if args.reference:
        reference = args.reference
    if reference:
        reference_uri = str(Path(reference).resolve())
        _progress(2, total, f"reference profile: {reference_uri}")
    elif config.data.source == "sample" and not args.data:
        s = config.data.sample
        ref_df = generate(s.rows, seed=s.reference_seed, start_id=10_000_000)
        columns = [*config.features.numeric, *config.features.categorical]
        profile = drift.profile_frame(ref_df, columns, bins=config.features.profile_bins)
        profile["source"] = f"conveyor sample seed {s.reference_seed}"
        reference_uri = str(write_json(profile, data_dir / "reference_profile.json"))
        _progress(2, total, f"reference profile: built from a reference sample -> {reference_uri}")
    else:
        reference_uri = ""
        _progress(2, total, "reference profile: none given, drift checks skipped")

    # Preflight: bad input (unreadable batch, invalid contract or profile) exits 2 before any
    # pipeline task starts; a readable batch that breaks its contract is the pipeline's job.
    from conveyor.contracts import load_profile
    from conveyor.tables import probe_table

    probe_table(data_uri)
    if reference_uri:
        load_profile(reference_uri)

    tracking_uri = _absolute_sqlite(config.tracking.uri)
    artifact_root = str(Path(config.tracking.artifact_root).resolve())
    _progress(
        3,
        total,
        "training pipeline on kfp.local: validate, prepare, train, evaluate, gate, register",
    )
    from conveyor.pipelines.local import PipelineFailedError, find_output, run_training

    try:
        result = run_training(
            config,
            data_uri,
            reference_uri,
            work / "pipeline_root",
            tracking_uri,
            artifact_root,
            git_commit=_git_commit(),
        )
    except PipelineFailedError as exc:
        return _explain_failure(exc)

    run_dir: Path = result["run_dir"]
    _progress(4, total, f"training pipeline done in {time.monotonic() - started:.0f}s")
    evaluation_path = find_output(run_dir, "evaluate", "evaluation")
    metrics: dict[str, Any] = {}
    if evaluation_path:
        metrics = json.loads(evaluation_path.read_text())["metrics"]
    headline = ", ".join(
        f"{k} {metrics[k]:.4f}" for k in ("roc_auc", "recall", "precision") if metrics.get(k)
    )
    gate_path = find_output(run_dir, "quality-gate", "gate")
    release = _release_summary(config, tracking_uri, result["run_id"], evaluation_path, gate_path)
    _progress(5, total, "serving: kserve.ModelServer on 127.0.0.1, smoke test, shadow replay")
    serving, served_ok = _serve_locally(
        config, tracking_uri, result["run_id"], run_dir, work / "serving"
    )
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
                f"gate report       : {find_output(run_dir, 'quality-gate', 'report')}",
                f"validation report : {find_output(run_dir, 'validate-data', 'report')}",
                f"evaluation        : {evaluation_path}",
                f"evaluation report : {find_output(run_dir, 'evaluate', 'report')}",
                f"model             : {find_output(run_dir, 'train', 'model')}",
                f"MLflow run        : {result['run_id']} (experiment {config.tracking.experiment})",
                f"MLflow store      : {tracking_uri}",
                "open the MLflow UI: make ui   (then browse http://127.0.0.1:5000)",
            ]
        )
    )
    if not served_ok:
        from conveyor.serving.server import ServingError

        print(
            "error: the served model failed its smoke test (see the smoke report above); a "
            "cluster rollout would stop here with traffic on the champion",
            file=sys.stderr,
        )
        return ServingError.exit_code
    return 0


def _serve_locally(
    config: Any, tracking_uri: str, run_id: str, run_dir: Path, out: Path
) -> tuple[list[str], bool]:
    """Serve this run's registered version as the cluster would, smoke test it, and replay
    the holdout against the champion (when another version is champion)."""
    from conveyor.pipelines.local import find_output
    from conveyor.registry import ModelRegistry
    from conveyor.serving.release import serve_and_check
    from conveyor.tables import read_table

    registry = ModelRegistry(tracking_uri)
    mine = next((v for v in registry.versions(config.model_name) if v["run_id"] == run_id), None)
    if mine is None or mine["status"] != "approved":
        state = "nothing registered" if mine is None else f"v{mine['version']} is {mine['status']}"
        return [f"serving: skipped ({state}: only an approved version is served)"], True
    holdout = find_output(run_dir, "prepare-features", "holdout")
    if holdout is None:
        return ["serving: skipped (no holdout split in this run)"], True
    lines, reports = serve_and_check(
        registry, mine, config.name, read_table(holdout), out,
        threshold=config.evaluation.threshold,
    )  # fmt: skip
    lines.append(f"serve it again    : conveyor serve {config.model_name} {mine['version']}")
    return lines, bool(reports["smoke"]["passed"])


def cmd_serve(args: argparse.Namespace) -> int:
    import os
    import signal
    import tempfile

    from conveyor.registry import ModelRegistry
    from conveyor.serving.server import LocalServer

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or EMBEDDED_TRACKING
    registry = ModelRegistry(_absolute_sqlite(uri))
    row = (
        registry.by_alias(args.name, args.version)
        if not args.version.isdigit()
        else registry.get(args.name, args.version)
    )
    if row is None:
        raise BadInputError(f"model {args.name!r} has no alias {args.version!r}")
    with tempfile.TemporaryDirectory(prefix="conveyor-serve-") as tmp:
        folder = registry.download(row, tmp)  # sha256 checked against the registry tag
        server = LocalServer(folder, args.served_name or args.name, row["version"], port=args.port)
        with server:
            print(
                f"serving {args.name} v{row['version']} at {server.url}\n"
                f"  V1: POST {server.url}/v1/models/{args.served_name or args.name}:predict\n"
                f"  V2: POST {server.url}/v2/models/{args.served_name or args.name}/infer\n"
                "Ctrl-C stops it.",
                flush=True,
            )
            stop = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # delivered to sigwait, not raised
            signal.sigwait(stop)
    return 0


def cmd_rollout_sim(args: argparse.Namespace) -> int:
    """One local rollout scenario end to end; prints the decision and its evidence."""
    from dataclasses import asdict

    from conveyor.rollout.sim import run_scenario

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
            f"lost {result.lost_requests}\n  evidence: {result.reason}"
        )
    return 0


def _git_commit() -> str:
    """The commit of the code being run, for the registry's lineage tags ("" outside git)."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def _release_summary(
    config: Any,
    tracking_uri: str,
    run_id: str,
    evaluation_path: Path | None,
    gate_path: Path | None,
) -> list[str]:
    """Gate verdict, champion comparison and what was registered, for the terminal."""
    from conveyor import gate
    from conveyor.registry import CANDIDATE, CHAMPION, ModelRegistry

    lines: list[str] = []
    evaluation = json.loads(evaluation_path.read_text()) if evaluation_path else {}
    champion = evaluation.get("champion")
    if champion:
        lines.append(f"compared against the champion {champion['model']['sha256'][:12]}:")
        lines.append(f"  {'metric':<22} {'candidate':>10} {'champion':>10}")
        for key in ("roc_auc", "pr_auc", "recall", "precision", "log_loss"):
            cand, champ = evaluation["metrics"].get(key), champion["metrics"].get(key)
            if cand is not None and champ is not None:
                lines.append(f"  {key:<22} {cand:>10.4f} {champ:>10.4f}")
    else:
        lines.append("no champion yet: champion comparisons were skipped")
    verdict = "unknown"
    if gate_path and gate_path.is_file():
        doc = json.loads(gate_path.read_text())
        verdict = doc["verdict"]
        result = gate.GateResult.from_dict(doc)
        lines += ["", f"quality gate ({result.policy}):", gate.render_text(result)]
    registry = ModelRegistry(tracking_uri)
    name = config.model_name
    mine = next((v for v in registry.versions(name) if v["run_id"] == run_id), None)
    if mine is None:
        why = "rejected by the gate" if verdict == "reject" else f"verdict {verdict}"
        lines.append(f"registry: nothing registered for {name} ({why})")
        return lines
    lines.append(
        f"registry: {name} v{mine['version']} {mine['status']}"
        + (f", aliases {', '.join(mine['aliases'])}" if mine["aliases"] else ", no alias")
    )
    if (
        config.registry.promote_first_locally
        and CANDIDATE in mine["aliases"]
        and registry.by_alias(name, CHAMPION) is None
    ):
        registry.promote(
            name, mine["version"], "local run: first approved model becomes the baseline"
        )
        lines.append(
            f"registry: no champion existed, so this local run promoted v{mine['version']} to "
            "champion; the next `make run` is compared against it (on a cluster, promotion is "
            "`conveyor models promote` after a rollout)"
        )
    return lines


def _explain_failure(exc: ConveyorError) -> int:
    """Point at the validation report when the data contract stopped the run."""
    from conveyor.pipelines.local import find_output

    run_dir = Path(str(exc).rsplit("outputs under ", 1)[-1].rstrip(")"))
    report_path = find_output(run_dir, "validate-data", "report_json")
    if report_path and report_path.is_file():
        report = json.loads(report_path.read_text())
        if not report.get("passed", True):
            from conveyor.contracts import render_text

            print(render_text(report), file=sys.stderr)
            print(
                f"error: the batch broke its data contract; nothing was trained. "
                f"Report: {find_output(run_dir, 'validate-data', 'report')}",
                file=sys.stderr,
            )
            return ContractViolationError.exit_code
    print(f"error: {exc}", file=sys.stderr)
    return exc.exit_code


# --------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conveyor",
        description="Conveyor: a gated assembly line for ML models (Kubeflow Pipelines, KServe).",
    )
    parser.add_argument("--version", action="version", version=f"conveyor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "sample",
        help="write the deterministic fraud sample table",
        description="Write the card-transaction fraud sample (CSV or Parquet, by extension). "
        "--drift shifts distributions; --corrupt injects contract violations.",
    )
    p.add_argument("--rows", type=int, default=50_000, help="rows to generate (default 50000)")
    p.add_argument("--out", required=True, help="output file, .csv or .parquet")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--as-of", help="newest event time, ISO date (default: today 00:00 UTC)")
    p.add_argument("--start-id", type=int, default=1, help="first transaction id (default 1)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--drift", action="store_true", help="a batch with shifted distributions")
    mode.add_argument("--corrupt", action="store_true", help="a batch that breaks the contract")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "validate",
        help="check a batch against a data contract",
        description="Check DATA against CONTRACT (and a reference profile for drift). "
        "Exit 0 when the batch passes, 4 on contract violations, 2 on bad input.",
    )
    p.add_argument("data", help="batch to check, .csv or .parquet")
    p.add_argument("--contract", required=True, help="data contract YAML")
    p.add_argument("--reference", help="reference profile JSON (conveyor profile) for PSI drift")
    p.add_argument("--format", choices=["text", "json"], default="text", help="report format")
    p.add_argument("--report-dir", help="also write validation.json and validation.md here")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "profile",
        help="build a reference profile for drift checks",
        description="Profile DATA (statistics and reference bins per column) for validate "
        "--reference.",
    )
    p.add_argument("data", help="reference batch, .csv or .parquet")
    p.add_argument("--out", required=True, help="profile JSON to write")
    p.add_argument("--columns", help="comma-separated columns (default: all)")
    p.add_argument("--bins", type=int, default=10, help="quantile bins per numeric column")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser(
        "gate",
        help="apply a gate policy to an evaluation (approve / hold / reject)",
        description="Apply POLICY to the candidate's evaluation.json (and the champion's). "
        "Exit 0 approve, 3 hold, 4 reject, 2 bad input. Without --champion, a champion block "
        "embedded in the candidate file (as evaluate writes it) is used.",
    )
    p.add_argument("--policy", required=True, help="gate policy YAML")
    p.add_argument("--candidate", required=True, help="candidate evaluation.json")
    p.add_argument("--champion", help="champion evaluation.json")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.add_argument("--report-dir", help="also write gate.json, gate.md and gate.html here")
    p.set_defaults(func=cmd_gate)

    p = sub.add_parser(
        "models",
        help="registered models: list, promote, rollback, approve",
        description="Operate the MLflow model registry (aliases candidate / champion / "
        "previous-champion). Every move leaves a tag trail on the versions.",
    )
    p.add_argument(
        "--tracking-uri",
        help=f"MLflow URI (default: $MLFLOW_TRACKING_URI, else {EMBEDDED_TRACKING})",
    )
    models = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    m = models.add_parser("list", help="versions with aliases and status")
    m.add_argument("name")
    m.add_argument("--format", choices=["text", "json"], default="text")
    m = models.add_parser("promote", help="move champion to VERSION (keeps previous-champion)")
    m.add_argument("name")
    m.add_argument("version")
    m.add_argument("--reason", help="why, recorded on the version")
    m = models.add_parser("rollback", help="move champion back to previous-champion")
    m.add_argument("name")
    m.add_argument("--reason", help="why, recorded on the versions")
    m = models.add_parser("approve", help="release a held version (records who and why)")
    m.add_argument("name")
    m.add_argument("version")
    m.add_argument("--reason", required=True, help="why this held version may ship")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "run",
        help="run the training pipeline on the embedded default (kfp.local + MLflow on sqlite)",
        description="Run validate -> prepare -> train -> evaluate with kfp.local, tracking in "
        "MLflow on a sqlite file under .conveyor/. This is what `make run` does.",
    )
    p.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"pipeline config (default {DEFAULT_CONFIG})"
    )
    p.add_argument("--data", help="use this batch instead of the config's data source")
    p.add_argument("--reference", help="reference profile for drift checks")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "serve",
        help="serve a registered version on 127.0.0.1 with kserve.ModelServer (V1 and V2)",
        description="Download a registered version (sha256 checked), serve it on 127.0.0.1 "
        "with the protocol stack of KServe's sklearn runtime until Ctrl-C.",
    )
    p.add_argument("name", help="registered model name")
    p.add_argument("version", help="version number or alias (champion, candidate)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--served-name", help="model name in the URLs (default: NAME)")
    p.add_argument(
        "--tracking-uri",
        help=f"MLflow URI (default: $MLFLOW_TRACKING_URI, else {EMBEDDED_TRACKING})",
    )
    p.set_defaults(func=cmd_serve)

    from conveyor.rollout.sim import SCENARIOS

    p = sub.add_parser(
        "rollout-sim",
        help="a real canary on this machine: model servers, nginx, Prometheus, the analysis",
        description="Champion and candidate kserve.ModelServer processes, an nginx router "
        "honouring the split, a real Prometheus scraping both, bounded load, and the rollout "
        "analysis deciding each interval. Needs `make tools` (Prometheus and nginx).",
    )
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    p.add_argument("--interval", type=float, default=3.0, help="analysis interval, seconds")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_rollout_sim)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConveyorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
