"""What ``conveyor run`` and ``conveyor retrain`` do around the pipeline on this machine: pick
the batch, skip an unchanged re-run, build a reference profile, then summarise, promote the
first baseline, and serve and smoke test the result. The pipeline itself runs on kfp.local
(``conveyor.pipelines.local``); the CLI only sequences these steps and prints them."""

import hashlib
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor import context
from conveyor.config import PipelineConfig

if TYPE_CHECKING:
    from conveyor.serving.smoke import SmokePolicy

__all__ = [
    "Progress",
    "batch",
    "checked_inputs",
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
    """The batch to run on: ``data``, the config's file, or the generated sample. The sample
    is generated once per recipe (``conveyor.sample.recipe``: rows, seed, the day, the
    generator's code and libraries, and the Parquet writer): while the file beside its sidecar
    is unchanged, a re-run reuses it rather than generating the same bytes again."""
    if data or config.data.source == "file":
        data_uri = str(Path(data or config.resolve(config.data.path) or "").resolve())
        progress(1, total, f"data: {data_uri}")
        if smoke:
            data_uri = str(smoke_sample(data_uri, config, folder))
            progress(1, total, f"data: smoke profile, {config.smoke.rows:,} sampled rows")
        return data_uri
    from conveyor.sample import default_as_of

    s = config.data.sample
    path = folder / "transactions.parquet"
    as_of = default_as_of()  # generate's own default, fixed here so the recipe names it
    recipe = _sample_recipe(s.rows, s.seed, as_of)
    if _known_sha256(path, recipe) is not None:
        progress(1, total, f"data: {s.rows:,} sample rows (seed {s.seed}), as generated: {path}")
        return str(path)
    from conveyor.sample import generate
    from conveyor.tables import write_table

    progress(1, total, f"data: generating {s.rows:,} sample rows (seed {s.seed})")
    written = write_table(generate(s.rows, seed=s.seed, as_of=as_of), path)
    _remember_sha256(written, recipe)
    return str(written)


def _sample_recipe(rows: int, seed: int, as_of: datetime) -> dict[str, Any]:
    """What the sample file's bytes depend on: the generator's recipe, and the Parquet writer
    (``conveyor.tables``' code and pyarrow, whose version the file records)."""
    from conveyor import tables
    from conveyor.sample import recipe

    return {
        **recipe(rows, seed, as_of),
        "writer_sha256": hashlib.sha256(Path(tables.__file__).read_bytes()).hexdigest(),
        "pyarrow": _version("pyarrow"),
    }


def _version(package: str) -> str:
    """An installed distribution's version, without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _sidecar(path: Path) -> Path:
    """Beside a sample file: the recipe that made it, its size, mtime_ns and sha256."""
    return path.with_name(f"{path.name}.sample.json")


def _known_sha256(path: Path, recipe: dict[str, Any] | None = None) -> str | None:
    """The sha256 recorded in ``path``'s sidecar while the file is unchanged since (same size
    and mtime_ns), and, given ``recipe``, was made by it; else None (hash it, or make it)."""
    try:
        doc = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        stat = path.stat()
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    if doc.get("size") != stat.st_size or doc.get("mtime_ns") != stat.st_mtime_ns:
        return None  # changed since it was made
    if recipe is not None and doc.get("recipe") != recipe:
        return None
    sha = doc.get("sha256")
    return sha if isinstance(sha, str) and len(sha) == 64 else None


def _remember_sha256(path: Path, recipe: dict[str, Any]) -> None:
    """Write ``path``'s sidecar: its size, mtime_ns, sha256 and the recipe that made it."""
    from conveyor.tables import sha256_file

    stat = path.stat()
    doc = {"recipe": recipe, "sha256": sha256_file(path), "size": stat.st_size,
           "mtime_ns": stat.st_mtime_ns}  # fmt: skip
    _write_atomically(_sidecar(path), doc)


def _write_atomically(path: Path, doc: dict[str, Any]) -> None:
    """JSON to ``path`` through a temporary file and a rename: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _batch_sha256(data_uri: str) -> str:
    """The batch's sha256: from the sidecar of a sample generated here while the file is
    unchanged, else hashed. Not read: a batch whose key matches was read by the run that
    holds it, and any other is probed before the pipeline starts (``conveyor run``), so this
    stays free of pandas and pyarrow."""
    known = _known_sha256(Path(data_uri))
    if known is not None:
        return known
    from conveyor.tables import probe_table, resolve_table, sha256_file

    path = resolve_table(data_uri)
    if not path.is_file():
        probe_table(data_uri)  # a missing file or an unknown format: exit 2, named
    return sha256_file(path)


CHECKED_INPUTS = "checked_inputs.json"
# The libraries whose versions decide what the preflight and the pipeline's inputs read
# (pydantic and PyYAML: the config files; pandas and numpy: the golden set).
_READERS = ("pydantic", "pydantic-core", "PyYAML", "pandas", "numpy")


def checked_inputs(
    config: PipelineConfig, folder: Path, check: Callable[[], None]
) -> dict[str, str]:
    """The pipeline's string inputs (``trigger.pipeline_inputs``), once ``check`` (the run's
    preflight) has passed on ``config``. Both are remembered in ``folder`` under a fingerprint
    of the config, the content of every file it names, Conveyor's code and the libraries that
    read them: while all are the same, a re-run neither checks nor reads them again (that costs
    pandas, scikit-learn and the contract and plan models, most of an unchanged re-run's time);
    anything different and both run again, as on a first run."""
    fingerprint = _inputs_fingerprint(config)
    memo = folder / CHECKED_INPUTS
    try:
        doc = json.loads(memo.read_text(encoding="utf-8"))
        if doc.get("fingerprint") == fingerprint and isinstance(doc.get("inputs"), dict):
            return {str(k): str(v) for k, v in doc["inputs"].items()}
    except (OSError, ValueError, AttributeError):
        pass
    check()
    from conveyor import trigger

    inputs = trigger.pipeline_inputs(config)
    _write_atomically(memo, {"fingerprint": fingerprint, "inputs": inputs})
    return inputs


def _inputs_fingerprint(config: PipelineConfig) -> str:
    """sha256 over what ``checked_inputs`` depends on (see there)."""

    def content(path: str | None) -> list[str] | None:
        if not path:
            return None
        p = Path(path).resolve()
        try:
            return [str(p), hashlib.sha256(p.read_bytes()).hexdigest()]
        except OSError:
            return [str(p), "unreadable"]

    data_path = config.data.path if config.data.source == "file" else None
    doc = {
        "config": config.model_dump(mode="json"),
        "base_dir": str(Path(config.base_dir).resolve()),
        "files": {
            "contract": content(config.resolve(config.contract)),
            "gate_policy": content(config.resolve(config.gate_policy)),
            "rollout": content(config.resolve(config.rollout)),
            "golden_set": content(config.resolve(config.evaluation.golden_set)),
        },
        "data.path is a file": (
            Path(config.resolve(data_path) or "").is_file()
            if data_path and "://" not in data_path
            else None
        ),
        "code": _code_sha256(),
        "libraries": {name: _version(name) for name in _READERS},
        "python": sys.version,
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _code_sha256() -> str:
    """sha256 over Conveyor's Python sources (the package, and ``conveyor.pipelines`` where an
    editable install maps it to another folder): ~90 files, a few milliseconds."""
    import importlib.util

    import conveyor

    folders = {Path(conveyor.__file__).resolve().parent}
    spec = importlib.util.find_spec("conveyor.pipelines")
    if spec is not None:
        folders |= {Path(p).resolve() for p in spec.submodule_search_locations or []}
    digest = hashlib.sha256()
    for folder in sorted(folders):
        for path in sorted(folder.rglob("*.py")):
            digest.update(f"{path.relative_to(folder)}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def smoke_sample(data_uri: str, config: PipelineConfig, folder: Path) -> Path:
    """A seeded sample of the batch for the smoke profile (the whole batch when smaller)."""
    from conveyor.tables import read_table, write_table

    df = read_table(data_uri)
    if len(df) > config.smoke.rows:
        df = df.sample(n=config.smoke.rows, random_state=config.smoke.seed).sort_index()
    return write_table(df, folder / "smoke_sample.parquet")


def unchanged(
    config: PipelineConfig,
    data_uri: str,
    tracking_uri: str,
    force: bool,
    inputs: dict[str, str] | None = None,
) -> tuple[str, str]:
    """The run's training key, and why training is skipped ("" when it is not): an earlier
    run already trained on the same data, code, config and seed (``force`` trains anyway).
    ``inputs``: the config's ``trigger.pipeline_inputs`` when the caller has them already."""
    from conveyor import trigger

    key = trigger.training_key(
        _batch_sha256(data_uri),
        git_commit=context.git_commit(),
        **trigger.key_inputs(inputs if inputs is not None else trigger.pipeline_inputs(config)),
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
