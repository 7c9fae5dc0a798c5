"""What ``conveyor run`` and ``conveyor retrain`` do around the pipeline on this machine: pick
the batch, skip an unchanged re-run, build a reference profile, then summarise, promote the
first baseline, and serve and smoke test the result. The pipeline itself runs on kfp.local
(``conveyor.pipelines.local``); the CLI only sequences these steps and prints them."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor import context
from conveyor.config import PipelineConfig

if TYPE_CHECKING:
    from conveyor.serving.smoke import SmokePolicy

__all__ = [
    "Progress",
    "batch",
    "reference_profile",
    "release_summary",
    "serve_locally",
    "settle",
    "smoke_sample",
    "unchanged",
]

Progress = Callable[[int, int, str], None]


def batch(
    config: PipelineConfig,
    data: str | None,
    folder: Path,
    progress: Progress,
    total: int,
    smoke: bool = False,
) -> str:
    """The batch to run on: ``data``, the config's file, or the generated sample."""
    from conveyor.sample import generate
    from conveyor.tables import write_table

    if data or config.data.source == "file":
        data_uri = str(Path(data or config.resolve(config.data.path) or "").resolve())
        progress(1, total, f"data: {data_uri}")
        if smoke:
            data_uri = str(smoke_sample(data_uri, config, folder))
            progress(1, total, f"data: smoke profile, {config.smoke.rows:,} sampled rows")
        return data_uri
    s = config.data.sample
    progress(1, total, f"data: generating {s.rows:,} sample rows (seed {s.seed})")
    return str(write_table(generate(s.rows, seed=s.seed), folder / "transactions.parquet"))


def smoke_sample(data_uri: str, config: PipelineConfig, folder: Path) -> Path:
    """A seeded sample of the batch for the smoke profile (the whole batch when smaller)."""
    from conveyor.tables import read_table, write_table

    df = read_table(data_uri)
    if len(df) > config.smoke.rows:
        df = df.sample(n=config.smoke.rows, random_state=config.smoke.seed).sort_index()
    return write_table(df, folder / "smoke_sample.parquet")


def unchanged(
    config: PipelineConfig, data_uri: str, tracking_uri: str, force: bool
) -> tuple[str, str]:
    """The run's training key, and why training is skipped ("" when it is not): an earlier
    run already trained on the same data, code, config and seed (``force`` trains anyway)."""
    from conveyor import trigger
    from conveyor.tables import probe_table, sha256_file

    data_sha256 = sha256_file(probe_table(data_uri))  # an unreadable batch: exit 2, named
    key = trigger.training_key(
        data_sha256,
        git_commit=context.git_commit(),
        **trigger.key_inputs(trigger.pipeline_inputs(config)),
    )
    if force or not config.retrain.skip_if_unchanged:
        return key, ""
    sqlite = tracking_uri.removeprefix(context.SQLITE)
    if sqlite != tracking_uri and not Path(sqlite).exists():
        return key, ""  # no store yet, so nothing trained before (and none is made for a look)
    from conveyor.registry import ModelRegistry

    match = trigger.find_unchanged(ModelRegistry(tracking_uri), config.model_name, key)
    if match is None:
        return key, ""
    return key, (
        f"skipped: unchanged inputs: data, code, config and seed match "
        f"{trigger.describe(match, config.model_name)}; nothing to train "
        "(conveyor run --force trains anyway)"
    )


def reference_profile(
    config: PipelineConfig, data_given: bool, reference: str | None, folder: Path
) -> tuple[str, str]:
    """The reference profile for the drift checks (its path, "" for none) and what to say:
    ``reference``, else the config's, else one built from a reference sample of the shipped
    generator (when the batch is that generator's too)."""
    from conveyor import distributions
    from conveyor.sample import generate
    from conveyor.tables import write_json

    given = reference or config.resolve(config.data.reference_profile)
    if given:
        path = str(Path(given).resolve())
        return path, f"reference profile: {path}"
    if config.data.source == "sample" and not data_given:
        s = config.data.sample
        ref_df = generate(s.rows, seed=s.reference_seed, start_id=10_000_000)
        columns = [*config.features.numeric, *config.features.categorical]
        profile = distributions.profile_frame(ref_df, columns, bins=config.features.profile_bins)
        profile["source"] = f"conveyor sample seed {s.reference_seed}"
        path = str(write_json(profile, folder / "reference_profile.json"))
        return path, f"reference profile: built from a reference sample -> {path}"
    return "", "reference profile: none given, drift checks skipped"


def release_summary(
    config: PipelineConfig,
    tracking_uri: str,
    run_id: str,
    evaluation_path: Path | None,
    gate_path: Path | None,
) -> list[str]:
    """Gate verdict, champion comparison and what was registered, for the terminal."""
    from conveyor import gate
    from conveyor.registry import ModelRegistry

    lines: list[str] = []
    evaluation = json.loads(evaluation_path.read_text()) if evaluation_path else {}
    champion = evaluation.get("champion")
    if champion:  # the gate's rule lines below show each metric beside the champion's
        lines.append(
            f"compared against the champion (model sha256 {champion['model']['sha256'][:12]}) "
            "on the same holdout"
        )
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
    mine = registry.version_of_run(name, run_id)
    if mine is None:
        why = "rejected by the gate" if verdict == "reject" else f"verdict {verdict}"
        lines.append(f"registry: nothing registered for {name} ({why})")
        return lines
    lines.append(
        f"registry: {name} v{mine['version']} {mine['status']}"
        + (f", aliases {', '.join(mine['aliases'])}" if mine["aliases"] else ", no alias")
    )
    return lines


SMOKE_FAILED = "it failed its local smoke test"


def settle(
    config: PipelineConfig,
    tracking_uri: str,
    run_id: str,
    smoke_passed: bool,
    why: str = SMOKE_FAILED,
) -> list[str]:
    """After the local smoke test: a version that failed it is rejected (not deployable, no
    ``candidate`` alias), so no path leaves an untested or failed candidate; one that passed
    becomes the store's first champion when there is none (``promote_first_locally``)."""
    from conveyor.registry import CANDIDATE, CHAMPION, ModelRegistry

    registry = ModelRegistry(tracking_uri)
    name = config.model_name
    mine = registry.version_of_run(name, run_id)
    if mine is None or mine["status"] != "approved":
        return []
    if not smoke_passed:
        # stopped before the test (no verdict): a re-run with the same inputs trains again
        registry.reject_candidate(name, mine["version"], why, unverified=why != SMOKE_FAILED)
        return [
            f"registry: {name} v{mine['version']} rejected: {why}, so it is not deployable "
            "and lost the candidate alias (the champion is unchanged)"
        ]
    if (
        config.registry.promote_first_locally
        and CANDIDATE in mine["aliases"]
        and registry.by_alias(name, CHAMPION) is None
    ):
        registry.promote(
            name, mine["version"], "local run: first approved model becomes the baseline"
        )
        return [
            f"registry: no champion existed, so this local run promoted v{mine['version']} to "
            "champion after its smoke test passed; the next run on new data (or `conveyor run "
            "--force`) is compared against it (on a cluster, promotion is `conveyor "
            "models promote` after a rollout)"
        ]
    return []


def smoke_policy(config: PipelineConfig) -> "SmokePolicy":
    """The smoke bounds of the config's rollout plan (its ``smoke`` block), so the local
    smoke test holds a version to what its canary will be held to; defaults without a plan."""
    from conveyor.rollout.plan import load_plan
    from conveyor.serving.smoke import SmokePolicy

    path = config.resolve(config.rollout) if config.rollout else None
    return load_plan(path).smoke if path else SmokePolicy()


def serve_locally(
    config: PipelineConfig, tracking_uri: str, run_id: str, holdout: Path | None, out: Path
) -> tuple[list[str], bool]:
    """Serve this run's registered version as the cluster would, smoke test it, and replay
    the holdout against the champion (when another version is champion). Reports go under
    ``out/<model name>/v<N>/``: two teams' v1 never share a folder."""
    from conveyor.local.release import serve_and_check
    from conveyor.registry import ModelRegistry
    from conveyor.tables import read_table

    registry = ModelRegistry(tracking_uri)
    mine = registry.version_of_run(config.model_name, run_id)
    if mine is None or mine["status"] != "approved":
        state = "nothing registered" if mine is None else f"v{mine['version']} is {mine['status']}"
        return [f"serving: skipped ({state}: only an approved version is served)"], True
    if holdout is None:
        return ["serving: skipped (no holdout split in this run)"], True
    lines, reports = serve_and_check(
        registry, mine, config.name, read_table(holdout), out / config.model_name,
        threshold=config.evaluation.threshold, policy=smoke_policy(config),
    )  # fmt: skip
    lines.append(f"serve it again    : conveyor serve {config.model_name} {mine['version']}")
    return lines, bool(reports["smoke"]["passed"])
