"""The skip-if-unchanged path of `conveyor run`: the registry's read-only sqlite lookup gives
MLflow's own answer, and an unchanged re-run imports no MLflow, kfp, scikit-learn, pyarrow or
pandas (it reuses the generated sample and the checked config instead of making them again)."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor import trigger
from conveyor.cli import main
from conveyor.registry import TRAINING_KEY_TAG, ModelRegistry, tracker_for
from tests.pipelines.test_cli_run import _small_config

pytestmark = pytest.mark.integration

# What answering "unchanged" must not import (each costs from 0.3 s to 2 s here).
HEAVY = ("mlflow", "kfp", "sklearn", "pyarrow", "pandas")
SKIPPED = "skipped: unchanged inputs: data, code, config and seed match fraud v1"


def _key(n: int) -> str:
    return f"{n:064x}"  # the shape of a training key


class _MlflowOnly:
    """The registry without its sqlite shortcut: MLflow's client answers everything (the
    path every non-sqlite store takes)."""

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry
        self.client = registry.client

    def versions(self, name: str) -> list[dict[str, Any]]:
        return self._registry.versions(name)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A sqlite registry made with the project's own API (finished runs tagged with their
    key as train tags them; no model files are needed to register a version):

    fraud v1 approved, then champion (key 1); v2 held (key 2); v3 approved, then stopped
    before its smoke test (key 3, unverified); v4 approved (key 4); v5 approved with key 4,
    then unverified; v6 approved and deleted (key 6); `other` v1 from v2's run (key 2). A
    finished run with key 5 was never registered (a rejected one)."""
    root = tmp_path_factory.mktemp("skip-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracker = tracker_for(uri, "skip-tests", str(root / "artifacts"))
    registry = ModelRegistry(uri)

    def run(key: int, verdict: str = "") -> str:
        tags = {TRAINING_KEY_TAG: _key(key), **({"gate.verdict": verdict} if verdict else {})}
        run_id = tracker.start_run(f"key{key}", tags)
        tracker.end_run(run_id)
        return run_id

    def register(name: str, run_id: str, key: int, verdict: str = "approve") -> str:
        v = registry.register(name, run_id, verdict, {TRAINING_KEY_TAG: _key(key)})
        assert v is not None
        return str(v["version"])

    assert register("fraud", run(1), 1) == "1"
    registry.promote("fraud", "1", "first")
    held_run = run(2)
    assert register("fraud", held_run, 2, "hold") == "2"
    assert register("fraud", run(3), 3) == "3"
    registry.reject_candidate("fraud", "3", "stopped", unverified=True)
    assert register("fraud", run(4), 4) == "4"
    assert register("fraud", run(4), 4) == "5"
    registry.reject_candidate("fraud", "5", "stopped", unverified=True)
    assert register("fraud", run(6), 6) == "6"
    registry.client.delete_model_version("fraud", "6")
    register("other", held_run, 2)
    run(5, verdict="reject")
    return uri


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (1, {"version": "1", "status": "approved", "aliases": ["champion"]}),  # the champion
        (2, {"version": "2", "status": "held", "aliases": []}),
        (3, None),  # only an unverified version (and its run) has it: train again
        (4, {"version": "4", "status": "approved", "aliases": []}),  # v5 is unverified
        (5, {"kind": "run", "status": "reject"}),  # no version: the run search answers
        (6, {"kind": "run", "status": "no verdict"}),  # a deleted version: its run answers
        (7, None),  # nothing has it
    ],
)
def test_the_sqlite_lookup_answers_what_mlflow_answers(store, key, expected):
    registry = ModelRegistry(store)
    fast = trigger.find_unchanged(registry, "fraud", _key(key))
    slow = trigger.find_unchanged(_MlflowOnly(ModelRegistry(store)), "fraud", _key(key))
    assert fast == slow
    if expected is None:
        assert fast is None
        return
    assert fast is not None
    assert {k: fast[k] for k in ("kind", *expected)} == {"kind": "version", **expected}
    if fast["kind"] == "version":  # a positive version answer never builds an MLflow client
        assert "client" not in vars(registry)


def test_the_sqlite_rows_are_mlflows_rows(store):
    """``versions_tagged`` gives exactly ``versions``' rows (tags, aliases, status, created)
    for the versions with the tag: none deleted, none of another model."""
    registry = ModelRegistry(store)
    everything = registry.versions("fraud")
    for n in range(1, 8):
        tagged = registry.versions_tagged("fraud", TRAINING_KEY_TAG, _key(n))
        assert tagged == [v for v in everything if v["tags"].get(TRAINING_KEY_TAG) == _key(n)]
    assert [v["version"] for v in registry.versions_tagged("other", TRAINING_KEY_TAG, _key(2))] == [
        "1"
    ]
    assert registry.versions_tagged("no-such-model", TRAINING_KEY_TAG, _key(1)) == []


def test_a_store_that_is_not_a_sqlite_file_is_left_to_mlflow(tmp_path):
    folder = tmp_path / "mlruns"
    folder.mkdir()
    assert ModelRegistry(folder.as_uri()).versions_tagged("fraud", TRAINING_KEY_TAG, "k") is None
    missing = ModelRegistry(f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.versions_tagged("fraud", TRAINING_KEY_TAG, "k") is None


def _rerun(workdir: Path, config: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`conveyor run` in a fresh interpreter: its output, and every module it imported."""
    modules = workdir / "modules.json"
    code = (
        "import json, sys\n"
        "from conveyor.cli import main\n"
        f"code = main(['run', '--config', {str(config)!r}])\n"
        f"open({str(modules)!r}, 'w').write(json.dumps(sorted(sys.modules)))\n"
        "sys.exit(code)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc, set(json.loads(modules.read_text()))


def test_an_unchanged_rerun_imports_nothing_heavy_and_a_new_seed_trains(
    workdir, capsys, monkeypatch
):
    config = _small_config(workdir)
    assert main(["run", "--config", str(config)]) == 0
    assert "registry: fraud v1 approved" in capsys.readouterr().out
    sample = workdir / ".conveyor" / "data" / "transactions.parquet"
    made = sample.stat().st_mtime_ns

    proc, modules = _rerun(workdir, config)
    assert SKIPPED in proc.stdout, proc.stdout
    assert "as generated" in proc.stdout and "generating" not in proc.stdout
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not heavy, f"an unchanged re-run imported {heavy[:10]}"
    assert sample.stat().st_mtime_ns == made, "the sample was generated again"

    # Another seed: another sample, another training key, so the run trains (stopped here
    # where training would start: the first run showed what it does).
    class Trains(Exception):
        pass

    keys: list[str] = []

    def run_training(*args: Any, training_key: str, **kwargs: Any) -> None:
        keys.append(training_key)
        raise Trains

    monkeypatch.setattr("conveyor.pipelines.local.run_training", run_training)
    text = config.read_text()
    config.write_text(text.replace("seed: 7,", "seed: 8,"))
    with pytest.raises(Trains):
        main(["run", "--config", str(config)])
    out = capsys.readouterr().out
    assert "generating 4,000 sample rows (seed 8)" in out and "skipped" not in out
    assert sample.stat().st_mtime_ns != made
    # Back to seed 7: made again from its recipe, the same bytes, so v1 matches again.
    config.write_text(text)
    assert main(["run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "generating 4,000 sample rows (seed 7)" in out and SKIPPED in out
    assert len(keys) == 1
