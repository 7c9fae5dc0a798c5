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
from conveyor.context import EMBEDDED_TRACKING, tracking_uri
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


# -------------------------------------------------------------------------------------- drift

# conveyor.local.sim.SCENARIOS, named here so building the parser does not import the sim
# (a test keeps the two equal).
SIM_SCENARIOS = (
    "drift", "errors", "healthy", "latency", "metrics-down", "no-traffic", "shadow",
    "shadow-errors",
)  # fmt: skip
DRIFT_EXIT = 5  # `conveyor drift`: the batch drifted over the policy's threshold


def _models_uri(value: str) -> tuple[str, str] | None:
    """``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` -> (name, alias or version)."""
    if not value.startswith("models:/"):
        return None
    rest = value[len("models:/") :]
    name, sep, ref = rest.partition("@") if "@" in rest else rest.partition("/")
    if not name or not sep or not ref:
        raise BadInputError(f"{value!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    return name, ref


def cmd_drift(args: argparse.Namespace) -> int:
    import tempfile

    from conveyor import drift_check
    from conveyor.config import DriftPolicy, load_pipeline_config, model_from_data
    from conveyor.tables import read_table

    policy = DriftPolicy()
    if args.config:
        config = load_pipeline_config(args.config)
        policy = config.retrain.drift
        if policy.features is None:  # the model's inputs, not keys, labels or timestamps
            features = [*config.features.numeric, *config.features.categorical]
            policy = policy.model_copy(update={"features": features})
    if args.features:
        policy = policy.model_copy(update={"features": args.features.split(",")})
    if args.psi_threshold is not None:
        data = {**policy.model_dump(), "psi_threshold": args.psi_threshold}
        policy = model_from_data(DriftPolicy, data, "--psi-threshold")
    current = read_table(args.current)
    uri = tracking_uri(args.tracking_uri, EMBEDDED_TRACKING)
    with tempfile.TemporaryDirectory(prefix="conveyor-drift-") as tmp:
        model_ref = _models_uri(args.model) if args.model else None
        ref = _models_uri(args.reference)
        registry = None
        if ref or model_ref:
            from conveyor.registry import ModelRegistry

            registry = ModelRegistry(_absolute_sqlite(uri))
        if ref:
            assert registry is not None
            row = registry.resolve(*ref)
            path = registry.reference_profile(row, tmp)
            if path is None:
                raise BadInputError(
                    f"{args.reference}: v{row['version']} was trained before reference "
                    "profiles were logged; pass a profile or data file as --reference"
                )
            reference = drift_check.load_reference(path)
            reference["source"] = f"{ref[0]} v{row['version']} training run"
            if model_ref is None and not args.no_scores:
                model_ref = (ref[0], row["version"])
        else:
            reference = drift_check.load_reference(args.reference, policy.features)
        scores = None
        if model_ref or args.model:
            from conveyor.model import load_model, predict_proba

            if model_ref:
                assert registry is not None
                folder = registry.download(registry.resolve(*model_ref), Path(tmp) / "m")
            else:
                folder = Path(args.model)
            model, spec = load_model(folder)  # sha256 checked
            scores = predict_proba(model, current, spec)
        report = drift_check.check_drift(reference, current, policy, current_scores=scores)
    if args.report_dir:
        drift_check.write_reports(report, args.report_dir)
    if args.format == "json":
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(drift_check.render_text(report))
    return DRIFT_EXIT if report["decision"] == "drift" else 0


# ------------------------------------------------------------------------------ templating


def cmd_new(args: argparse.Namespace) -> int:
    from conveyor.scaffold import scaffold

    written = scaffold(args.team, args.dir, force=args.force)
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
    from conveyor.pipelines.template import next_runs, problems

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
    cluster = config.cluster
    lines = [
        f"{args.config}: valid",
        f"  pipeline   : {config.name} (team {config.team or config.name}), model "
        f"{config.model_name}",
        f"  training   : {config.training.estimator}, seed {config.training.seed}",
        f"  retrain    : on_new_data {config.retrain.on_new_data}, on_drift "
        f"{config.retrain.on_drift}, max_age_days {config.retrain.max_age_days}, "
        f"skip_if_unchanged {config.retrain.skip_if_unchanged}",
        f"  rollout    : {config.rollout or 'none (continuous_training stops at register)'}",
        f"  cluster    : namespace {cluster.namespace}, image {cluster.image or '(default)'}, "
        f"secrets {[s.name for s in cluster.secrets] or 'none'}",
    ]
    if config.retrain.schedule:
        runs = ", ".join(next_runs(config.retrain.schedule))
        lines.append(f"  schedule   : {config.retrain.schedule!r} (UTC); next {runs}")
    print("\n".join(lines))
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


def cmd_models(args: argparse.Namespace) -> int:

    from conveyor.registry import ModelRegistry

    uri = tracking_uri(args.tracking_uri, EMBEDDED_TRACKING)
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
    elif args.models_command == "reject":
        v = registry.reject_candidate(args.name, args.version, args.reason)
        print(f"{args.name} v{v['version']} rejected: {v['status']}, not deployable")
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


def _own_store(uri: str) -> str:
    """The run's tracking URI, pinned, with its sqlite store's folder made on purpose: a run
    is what creates a store (everything else refuses a store folder that does not exist)."""
    uri = _absolute_sqlite(uri)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    return uri


def cmd_run(args: argparse.Namespace) -> int:
    from conveyor import drift
    from conveyor.config import load_pipeline_config
    from conveyor.contracts import load_contract
    from conveyor.sample import generate
    from conveyor.tables import write_json

    config = load_pipeline_config(args.config)
    if args.smoke:
        config = config.smoke_profile()
    load_contract(config.resolve(config.contract) or "")  # an invalid contract stops here (exit 2)
    work = Path(config.workdir).resolve()
    data_dir = work / "data"
    total = 5
    started = time.monotonic()

    data_uri = _batch(config, args.data, data_dir, total, smoke=args.smoke)
    # Skip-if-unchanged first: an unchanged re-run costs a hash and one registry query.
    tracking_uri = _own_store(config.tracking.uri)
    key = _unchanged_check(config, data_uri, tracking_uri, force=args.force)
    if key is None:
        return 0

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
            training_key=key,
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


def _batch(config: Any, data: str | None, folder: Path, total: int, smoke: bool = False) -> str:
    """The batch to run on: --data, the config's file, or the generated sample."""
    from conveyor.sample import generate
    from conveyor.tables import write_table

    if data or config.data.source == "file":
        data_uri = str(Path(data or config.resolve(config.data.path) or "").resolve())
        _progress(1, total, f"data: {data_uri}")
        if smoke:
            data_uri = str(_smoke_sample(data_uri, config.smoke, folder))
            _progress(1, total, f"data: smoke profile, {config.smoke.rows:,} sampled rows")
        return data_uri
    s = config.data.sample
    _progress(1, total, f"data: generating {s.rows:,} sample rows (seed {s.seed})")
    return str(write_table(generate(s.rows, seed=s.seed), folder / "transactions.parquet"))


def cmd_retrain(args: argparse.Namespace) -> int:
    from conveyor.config import load_pipeline_config
    from conveyor.pipelines.local import PipelineFailedError, find_output, run_continuous
    from conveyor.tables import probe_table

    config = load_pipeline_config(args.config)
    work = Path(config.workdir).resolve()
    started = time.monotonic()
    data_uri = _batch(config, args.data, work / "data", 3)
    probe_table(data_uri)
    _progress(2, 3, "continuous_training on kfp.local: check drift, check trigger, train if due")
    try:
        result = run_continuous(
            config,
            data_uri,
            work / "pipeline_root",
            _own_store(config.tracking.uri),
            str(Path(config.tracking.artifact_root).resolve()),
            git_commit=_git_commit(),
            force=args.force,
        )
    except PipelineFailedError as exc:
        return _explain_failure(exc)
    run_dir: Path = result["run_dir"]
    _progress(3, 3, f"{result['decision']} in {time.monotonic() - started:.0f}s")
    for task, name in (("check-trigger", "drift_report"), ("check-trigger", "report")):
        path = find_output(run_dir, task, name)
        if path is not None:
            print(path.read_text().strip(), f"\n({path})\n")
    if result["run_id"]:
        print(f"trained: MLflow run {result['run_id']} (outputs under {run_dir})")
    return 0


def _smoke_sample(data_uri: str, smoke: Any, folder: Path) -> Path:
    """A seeded sample of the batch for the smoke profile (the whole batch when smaller)."""
    from conveyor.tables import read_table, write_table

    df = read_table(data_uri)
    if len(df) > smoke.rows:
        df = df.sample(n=smoke.rows, random_state=smoke.seed).sort_index()
    return write_table(df, folder / "smoke_sample.parquet")


def _unchanged_check(config: Any, data_uri: str, tracking_uri: str, force: bool) -> str | None:
    """The run's training key, or None after printing which earlier run already trained on
    the same data, code, config and seed (skip-if-unchanged; --force trains anyway)."""
    from conveyor import retrain
    from conveyor.registry import ModelRegistry
    from conveyor.retrain import key_inputs, pipeline_inputs
    from conveyor.tables import probe_table, sha256_file

    data_sha256 = sha256_file(probe_table(data_uri))  # an unreadable batch: exit 2, named
    key = retrain.training_key(
        data_sha256, git_commit=_git_commit(), **key_inputs(pipeline_inputs(config))
    )
    if force or not config.retrain.skip_if_unchanged:
        return key
    sqlite = tracking_uri.removeprefix("sqlite:///")
    if sqlite != tracking_uri and not Path(sqlite).exists():
        return key  # no store yet, so nothing trained before (and none is created for a look)
    match = retrain.find_unchanged(ModelRegistry(tracking_uri), config.model_name, key)
    if match is None:
        return key
    print(
        f"skipped: unchanged inputs: data, code, config and seed match "
        f"{retrain.describe(match, config.model_name)}; nothing to train "
        "(conveyor run --force trains anyway)"
    )
    return None


def _serve_locally(
    config: Any, tracking_uri: str, run_id: str, run_dir: Path, out: Path
) -> tuple[list[str], bool]:
    """Serve this run's registered version as the cluster would, smoke test it, and replay
    the holdout against the champion (when another version is champion)."""
    from conveyor.local.release import serve_and_check
    from conveyor.pipelines.local import find_output
    from conveyor.registry import ModelRegistry
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
    import signal
    import tempfile

    from conveyor.local.model_server import LocalServer
    from conveyor.registry import ModelRegistry

    uri = tracking_uri(args.tracking_uri, EMBEDDED_TRACKING)
    registry = ModelRegistry(_absolute_sqlite(uri))
    row = registry.resolve(args.name, args.version)
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


def cmd_scorelog(args: argparse.Namespace) -> int:
    from conveyor.rollout.scorelog import run

    return run(args.host, args.port, args.max_pending, args.max_series)


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
            "champion; the next run on new data (or `make run ARGS=--force`) is compared "
            "against it (on a cluster, promotion is `conveyor models promote` after a rollout)"
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
        "new",
        help="scaffold a team's pipeline template (config, contract, gate policy, rollout plan)",
        description="Write DIR/TEAM/ with pipeline.yaml, contract.yaml, gate_policy.yaml and "
        "rollout.yaml: a template that runs as written on the sample data, every field "
        "commented with what to change.",
    )
    p.add_argument("team", help="team name (lowercase, digits, '-'): names pipeline and model")
    p.add_argument("--dir", default=".", help="parent folder (default: current)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser(
        "validate-config",
        help="check a pipeline config and every file it names, with field paths",
        description="Validate CONFIG (schema, then the contract, gate policy, rollout plan and "
        "golden set it names, step names, cron). Exit 0 valid, 2 invalid: one line per "
        "problem with its field path, the value and the bound.",
    )
    p.add_argument("config", help="pipeline config YAML")
    p.set_defaults(func=cmd_validate_config)

    p = sub.add_parser(
        "compile",
        help="compile a config into a KFP pipeline (or Kubernetes Pipeline objects)",
        description="Compile the training, rollout or continuous_training pipeline for "
        "CONFIG, with its cluster settings (image, MLflow URI, namespace, resources, node "
        "selector, Secrets by name) applied: the output is ready to submit or apply.",
    )
    p.add_argument("config", help="pipeline config YAML")
    p.add_argument("-o", "--out", required=True, help="output YAML")
    p.add_argument(
        "--pipeline",
        choices=["training", "rollout", "continuous_training"],
        default="continuous_training",
    )
    p.add_argument(
        "--format",
        choices=["kfp", "kubernetes"],
        default="kfp",
        help="kfp: pipeline spec for `conveyor submit`; kubernetes: Pipeline + PipelineVersion "
        "objects (KFP 2.14+) for kubectl apply / GitOps",
    )
    p.add_argument("--version", help="PipelineVersion name suffix (default: content hash)")
    p.add_argument("--smoke", action="store_true", help="compile the config's smoke profile")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser(
        "drift",
        help="has a batch drifted from the reference (PSI, KS, score PSI)?",
        description="Compare CURRENT with a reference: PSI per feature in the reference's "
        "bins, KS on numeric features, PSI of the model's scores. Exit 0 stable, 5 drift over "
        "the threshold, 2 bad input.",
    )
    p.add_argument(
        "--reference",
        required=True,
        help="profile .json, data .csv/.parquet, or models:/NAME@ALIAS (the profile that "
        "version's training run logged; its model also scores the batch)",
    )
    p.add_argument("--current", required=True, help="recent batch, .csv or .parquet")
    p.add_argument("--model", help="model folder or models:/NAME@ALIAS for score PSI")
    p.add_argument("--no-scores", action="store_true", help="skip score PSI for models:/ refs")
    p.add_argument(
        "--config",
        help="pipeline config: its retrain.drift policy applies and its features are checked",
    )
    p.add_argument("--features", help="comma-separated features to check (default: all)")
    p.add_argument("--psi-threshold", type=float, help="override the policy's PSI threshold")
    p.add_argument(
        "--tracking-uri",
        help=f"MLflow URI for models:/ (default: $MLFLOW_TRACKING_URI, else {EMBEDDED_TRACKING})",
    )
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.add_argument("--report-dir", help="also write drift.json, drift.md and drift.html here")
    p.set_defaults(func=cmd_drift)

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
        help="registered models: list, promote, rollback, approve, reject",
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
    m = models.add_parser(
        "reject", help="a canary or shadow of VERSION failed: not deployable, loses candidate"
    )
    m.add_argument("name")
    m.add_argument("version")
    m.add_argument("--reason", required=True, help="why, recorded on the version")
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
    p.add_argument(
        "--smoke",
        action="store_true",
        help="the config's smoke profile: sampled rows, small estimator, registered as "
        "<model>-smoke; exits with the gate verdict (0 approve, 3 hold, 4 reject), for PR checks",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="train even when an earlier run had the same data, code, config and seed",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "retrain",
        help="the continuous_training pipeline on kfp.local: drift + trigger check, then train",
        description="Check the batch for drift against the champion's profile, apply the "
        "config's retrain policy (skip an unchanged re-run; else no champion, new data, drift, "
        "max age) and run the training pipeline only when a trigger fired.",
    )
    p.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"pipeline config (default {DEFAULT_CONFIG})"
    )
    p.add_argument("--data", help="the incoming batch (default: the config's data source)")
    p.add_argument("--force", action="store_true", help="retrain whatever the policy says")
    p.set_defaults(func=cmd_retrain)

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

    p = sub.add_parser(
        "scorelog",
        help="receive KServe inference-logger events, export the prediction-score histogram",
        description="Serve POST /log for KServe's inference logger (CloudEvents, binary mode), "
        "turn each V1/V2 response into positive-class scores and export them as "
        "conveyor_prediction_score{model,version} on GET /metrics for the rollout's score_psi "
        "check; GET /healthz for probes. Point each revision's spec.predictor.logger.url at "
        "http://conveyor-scorelog.<ns>.svc.cluster.local/log?model=<model>&version=<version>. "
        'POST /feedback {"id": <ce-id>, "labels": [0, 1, ...]} labels a logged response '
        "(the client sets ce-id on its predict request) into "
        "conveyor_feedback_score{model,version,label} for the auc_drop_pct_above check. "
        "Runs until SIGTERM or Ctrl-C.",
    )
    p.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    p.add_argument(
        "--max-pending", type=int, default=100_000, metavar="N",
        help="logged response ids kept in memory for POST /feedback; the least recent is "
        "evicted beyond N (default 100000)",
    )  # fmt: skip
    p.add_argument(
        "--max-series", type=int, default=64, metavar="N",
        help="(model, version) pairs exported at once; the least recently logged is removed "
        "beyond N, so whoever posts cannot grow Prometheus's series without bound (default 64)",
    )  # fmt: skip
    p.set_defaults(func=cmd_scorelog)

    p = sub.add_parser(
        "rollout-sim",
        help="a real canary on this machine: model servers, nginx, Prometheus, the analysis",
        description="Champion and candidate kserve.ModelServer processes, an nginx router "
        "honouring the split, a real Prometheus scraping both, bounded load, and the rollout "
        "analysis deciding each interval. Needs `make tools` (Prometheus and nginx).",
    )
    p.add_argument("--scenario", required=True, choices=SIM_SCENARIOS)
    p.add_argument("--interval", type=float, default=3.0, help="analysis interval, seconds")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_rollout_sim)
    from conveyor import cli_kfp

    cli_kfp.add_parsers(sub)
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
