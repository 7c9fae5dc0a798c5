"""`conveyor run` (what `make run` calls) on the embedded default: kfp.local + MLflow on sqlite.

Run twice on the same data, config and seed: byte-identical model.joblib, identical metrics.
"""

import json
from pathlib import Path

import pytest

from conveyor.cli import main
from tests.conftest import copy_examples

pytestmark = pytest.mark.integration


def _small_config(workdir: Path) -> Path:
    folder = copy_examples(workdir)
    path = folder / "pipeline.yaml"
    text = path.read_text().replace("{rows: 50000,", "{rows: 4000,")
    path.write_text(text)
    # 4,000 rows overfit the shipped log-loss bound (a hold); these runs exercise the release
    # mechanics, so they get a policy sized for small data, with champion comparisons kept.
    (folder / "gate_policy.yaml").write_text(
        "rules:\n"
        "  - {metric: metrics.roc_auc, min: 0.8, max_drop: 0.01}\n"
        "  - {metric: metrics.log_loss, max: 0.5, max_increase_pct: 10, on_fail: hold}\n"
    )
    return path


def _outputs(out: str) -> dict[str, Path]:
    """The run folder's model and evaluation, from the summary's ``reports`` line."""
    line = next(x for x in out.splitlines() if x.startswith("reports :"))
    run_dir = Path(line.split(":", 1)[1].split()[0])
    return {"model": run_dir / "train" / "model", "evaluation": run_dir / "evaluate" / "evaluation"}


def _assert_quiet(out: str) -> None:
    """A successful run prints progress and a summary, not kfp's task logs: under 40 lines,
    one line per stage, no ANSI codes; the logs are in the file the summary names."""
    lines = out.splitlines()
    assert len(lines) < 40, out
    assert "\x1b[" not in out and "Streamed logs" not in out and "executor" not in out.lower()
    for task in ("validate-data", "prepare-features", "train", "evaluate", "quality-gate"):
        assert sum(1 for x in lines if x.split()[:1] == [task]) == 1, (task, out)
    assert any(x.split()[:1] == ["register-model"] and "status approved" in x for x in lines)
    log = Path(next(x for x in lines if x.startswith("log     :")).split(":", 1)[1].strip())
    text = log.read_text()
    assert "Executing task 'train'" in text and "\x1b[" not in text
    assert "conveyor: progress: fitting " in text  # long steps say where they are, in the log


def test_run_twice_is_reproducible_and_tracked(workdir, capsys):
    config = _small_config(workdir)
    assert main(["run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    first = _outputs(out)
    assert "no champion yet: champion comparisons were skipped" in out
    assert "this local run promoted v1 to champion" in out
    assert "fraud v1 served by kserve.ModelServer at http://127.0.0.1:" in out
    assert "smoke test passed" in out
    assert "shadow replay     : skipped (no other champion to compare with)" in out
    # Unchanged data, code, config and seed: the re-run skips, naming the version it matches.
    assert main(["run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "skipped: unchanged inputs: data, code, config and seed match fraud v1" in out
    assert "[3/5]" not in out, "nothing may be trained on a skipped run"
    # --force trains anyway: same inputs, so a byte-identical model.
    assert main(["run", "--config", str(config), "--force"]) == 0
    out = capsys.readouterr().out
    second = _outputs(out)
    _assert_quiet(out)
    assert "[5/5] done" in out and "make ui" in out
    # v2 is byte-identical to the champion v1: the replay must show perfect agreement
    assert "shadow replay     : v2 vs champion v1" in out
    replay = next(line for line in out.splitlines() if line.startswith("shadow replay"))
    assert "agreement 100.00%, score PSI 0.0000 (stable)" in replay, replay
    smoke_md = next(line for line in out.splitlines() if line.startswith("smoke report"))
    assert "Smoke test PASSED" in Path(smoke_md.split(":", 1)[1].strip()).read_text()
    assert "/serving/fraud/v2/smoke.md" in smoke_md  # under the model's name
    assert "compared against the champion" in out
    assert "registry: fraud v2 approved, aliases candidate" in out

    model_a = (first["model"] / "model.joblib").read_bytes()
    assert model_a == (second["model"] / "model.joblib").read_bytes()
    metrics = [json.loads(p["evaluation"].read_text())["metrics"] for p in (first, second)]
    assert metrics[0] == metrics[1]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / '.conveyor' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("conveyor-fraud")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 2
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all("test_roc_auc" in r.data.metrics for r in runs)
    assert {r.data.tags["model.sha256"] for r in runs} == {
        (first["model"] / "model.sha256").read_text().split()[0]
    }
    from conveyor.registry import ModelRegistry

    versions = ModelRegistry(f"sqlite:///{workdir / '.conveyor' / 'mlflow.db'}").versions("fraud")
    assert [(v["version"], v["aliases"]) for v in versions] == [
        ("2", ["candidate"]),
        ("1", ["champion"]),
    ]
    for key in ("git.commit", "data.sha256", "features.spec.sha256", "model.sha256", "params"):
        assert versions[0]["tags"][key], key
    assert versions[0]["tags"]["gate.verdict"] == "approve"
    evaluation = json.loads(second["evaluation"].read_text())
    assert evaluation["champion"]["model"]["sha256"] == versions[1]["tags"]["model.sha256"]
    assert evaluation["champion"]["metrics"]["rows"] == evaluation["metrics"]["rows"]
    artifacts = workdir / ".conveyor" / "mlartifacts"
    assert list(artifacts.rglob("model.joblib")), "logged model files live under .conveyor/"


def test_run_on_a_corrupt_batch_exits_4_and_trains_nothing(workdir, capsys):
    config = _small_config(workdir)
    assert main(["sample", "--rows", "3000", "--out", "bad.csv", "--corrupt"]) == 0
    assert main(["run", "--config", str(config), "--data", "bad.csv"]) == 4
    err = capsys.readouterr().err
    assert "column 'channel': allowed_values failed" in err
    assert "nothing was trained" in err
    assert not list((workdir / ".conveyor").rglob("model.joblib"))
    db = workdir / ".conveyor" / "mlflow.db"
    if db.exists():
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{db}")
        exps = client.search_experiments()
        assert not client.search_runs([e.experiment_id for e in exps])


def test_a_config_mistake_stops_the_run_before_any_data_is_read(workdir, capsys):
    config = _small_config(workdir)
    config.write_text(config.read_text().replace("numeric: [amount,", "numeric: [chekcs, amount,"))
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "1 problem(s), nothing was run" in err
    assert f"{config}: features.numeric: 'chekcs' is not a column of contract" in err
    assert not (workdir / ".conveyor" / "data").exists()


def test_a_failed_stage_ends_the_run_with_its_own_error_and_exit_code(workdir, capsys):
    config = _small_config(workdir)
    text = config.read_text().replace("max_iter: 200", "max_iter: -3")
    config.write_text(text)
    code = main(["run", "--config", str(config), "--force"])
    captured = capsys.readouterr()
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith("error: train: "), captured.err[-3000:]
    assert "max_iter" in last and "Inner task failed" not in captured.err
    assert "the tasks' full log:" in captured.err
    assert "training.params for hist_gradient_boosting" in last
    assert code == 2, last  # the stage raised BadInputError: bad input, exit 2


def test_a_version_that_fails_its_local_smoke_test_is_never_left_a_candidate(
    workdir, capsys, monkeypatch
):
    """Exit 8, and the version is rejected: no candidate alias, not deployable, not promoted
    (before, a local run promoted first and smoke tested after)."""
    from conveyor.local import release
    from conveyor.registry import ModelRegistry

    def failing(registry, version, served_name, holdout, out_dir, **kw):
        return [f"serving: {served_name} v{version['version']}: smoke test FAILED"], {
            "smoke": {"passed": False}
        }

    monkeypatch.setattr(release, "serve_and_check", failing)
    config = _small_config(workdir)
    assert main(["run", "--config", str(config)]) == 8
    captured = capsys.readouterr()
    assert "the served model failed its smoke test" in captured.err
    assert "fraud v1 rejected: it failed its local smoke test" in captured.out
    assert "promoted" not in captured.out
    [v1] = ModelRegistry(f"sqlite:///{workdir / '.conveyor' / 'mlflow.db'}").versions("fraud")
    assert v1["aliases"] == [] and v1["status"] == "rolled_back"
    assert v1["tags"]["conveyor.deployable"] == "False"


def test_sigterm_during_training_stops_the_whole_run(workdir):
    """What Kubernetes and CI runners send: the train task is stopped too (it used to go on
    and log a FINISHED run), its MLflow run is marked FAILED, nothing is registered, no
    process is left, and the exit code is 143."""
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from conveyor.lifecycle import descendants

    config = _small_config(workdir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "run", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    db = workdir / ".conveyor" / "mlflow.db"

    def running_runs() -> int:
        if not db.exists():
            return 0
        with sqlite3.connect(db) as con:
            try:
                return con.execute("select count(*) from runs where status='RUNNING'").fetchone()[0]
            except sqlite3.OperationalError:
                return 0  # the tables are not there yet

    deadline = time.monotonic() + 240
    while running_runs() == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the train task never started its MLflow run"
        time.sleep(0.2)
    tasks = descendants(proc.pid)
    assert tasks, "kfp.local runs each task as a child process"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "terminated (SIGTERM)" in err
    assert "[4/5]" not in out, "nothing after the pipeline ran"
    time.sleep(1)
    left = {
        pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200]
        for pid in tasks
        if Path(f"/proc/{pid}/cmdline").exists() and Path(f"/proc/{pid}/cmdline").read_bytes()
    }
    assert not left, f"processes left running: {left}"
    with sqlite3.connect(db) as con:
        statuses = [r[0] for r in con.execute("select status from runs")]
        versions = con.execute("select count(*) from model_versions").fetchone()[0]
    assert statuses == ["FAILED"], statuses
    assert versions == 0


def _serves(pid: int) -> bool:
    """The process is a Conveyor model server (and still there)."""
    try:
        return b"conveyor.serving.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_sigterm_during_serving_leaves_no_server_and_the_rerun_trains_again(workdir):
    """Stopped while its version is served for the smoke test: the model server goes with the
    run, the version loses ``candidate`` (never smoke-tested, never deployable), and a plain
    re-run on the same inputs trains again instead of "skipping" onto it."""
    import signal
    import subprocess
    import sys
    import time

    from conveyor.lifecycle import descendants
    from conveyor.registry import ModelRegistry

    config = _small_config(workdir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "run", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:  # the summary comes after serving: read up to step 5
        if line.startswith("[5/5] serving"):
            break
    else:
        raise AssertionError(proc.communicate())
    deadline = time.monotonic() + 60
    server: list[int] = []
    while not server:
        server = [p for p in descendants(proc.pid) if _serves(p)]
        assert time.monotonic() < deadline, "no model server was started"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    time.sleep(1)
    assert not [p for p in server if Path(f"/proc/{p}").exists()], "the model server was left"
    registry = ModelRegistry(f"sqlite:///{workdir / '.conveyor' / 'mlflow.db'}")
    (v1,) = registry.versions("fraud")
    assert v1["aliases"] == [] and v1["status"] == "rolled_back", v1
    assert "stopped before its local smoke test" in err

    rerun = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "run", "--config", str(config)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "skipped: unchanged inputs" not in rerun.stdout and "[3/5]" in rerun.stdout
    assert "v1 had these inputs but was stopped before its smoke test" in rerun.stderr
    assert "smoke test passed" in rerun.stdout and "promoted v2 to champion" in rerun.stdout
