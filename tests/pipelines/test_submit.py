"""`conveyor submit | schedule | runs` through the real kfp.Client 2.17 against a stateful fake
KFP API over HTTP (tests/fakes/kfp_api.py), plus the pure parts (cron, params, verdicts)."""

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conveyor.cli import main
from conveyor.errors import BadInputError
from conveyor.lifecycle import free_port
from conveyor.pipelines import submit as kfp_submit
from tests.conftest import ROOT

unit = pytest.mark.unit
integration = pytest.mark.integration

PACKAGE = ROOT / "pipelines" / "training" / "pipeline.yaml"
RUNS = "/apis/v2beta1/runs"
EXPERIMENTS = "/apis/v2beta1/experiments"
RECURRING = "/apis/v2beta1/recurringruns"
TOKEN = "tok-3f9a61c2-never-print-me"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------------- pure parts


@unit
@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("0 2 * * 0", "0 0 2 * * 0"),
        ("*/15 * * * *", "0 */15 * * * *"),
        ("  30 4 1 * mon-fri ", "0 30 4 1 * mon-fri"),
        ("15 0 2 * * 0", "15 0 2 * * 0"),  # already KFP's 6 fields, seconds first
    ],
)
def test_cron_becomes_six_fields_seconds_first(given: str, sent: str) -> None:
    assert kfp_submit.to_kfp_cron(given) == sent


@unit
@pytest.mark.parametrize(
    "bad",
    ["0 2 * *", "0 0 0 2 * * 0", "61 2 * * *", "0 2 * * 7", "0 2 L * *", "0 2 * * 1#2", "daily"],
)
def test_invalid_cron_is_rejected_naming_it(bad: str) -> None:
    with pytest.raises(BadInputError, match=re.escape(f"--cron '{bad}'")):
        kfp_submit.to_kfp_cron(bad)


@unit
def test_next_runs_are_utc_iso_times() -> None:
    start = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
    assert kfp_submit.next_runs("0 0 2 * * 0", start=start) == [
        "2026-11-29T02:00:00+00:00",
        "2026-12-06T02:00:00+00:00",
        "2026-12-13T02:00:00+00:00",
    ]


@unit
def test_parse_params() -> None:
    declared = kfp_submit.declared_params(kfp_submit.load_package(PACKAGE))
    assert kfp_submit.parse_params(
        ["model_name=fraud", "data_uri=s3://b/k=v.parquet"], declared
    ) == {
        "model_name": "fraud",
        "data_uri": "s3://b/k=v.parquet",
    }
    with pytest.raises(BadInputError, match="--param 'model_name': expected NAME=VALUE"):
        kfp_submit.parse_params(["model_name"])
    with pytest.raises(BadInputError, match="--param '=x': expected NAME=VALUE"):
        kfp_submit.parse_params(["=x"])
    with pytest.raises(
        BadInputError, match=r"unknown pipeline parameter\(s\) modle_name: .*model_name"
    ):
        kfp_submit.parse_params(["modle_name=fraud"], declared)


@unit
def test_check_params_types_values_as_declared() -> None:
    spec = {
        "pipelineInfo": {"name": "p"},
        "root": {
            "inputDefinitions": {
                "parameters": {
                    "epochs": {"parameterType": "NUMBER_INTEGER"},
                    "rate": {"parameterType": "NUMBER_DOUBLE", "isOptional": True},
                    "dry": {"parameterType": "BOOLEAN", "defaultValue": False},
                    "tags": {"parameterType": "LIST", "isOptional": True},
                }
            }
        },
    }
    typed = kfp_submit.check_params({"epochs": "5", "rate": "0.5", "dry": "True"}, spec)
    assert typed == {"epochs": 5, "rate": 0.5, "dry": True}
    assert kfp_submit.check_params({"epochs": "1", "tags": '["a"]'}, spec)["tags"] == ["a"]
    with pytest.raises(BadInputError, match=r"parameter epochs='five': not a valid NUMBER_INTEGER"):
        kfp_submit.check_params({"epochs": "five"}, spec)
    with pytest.raises(BadInputError, match=r"parameter tags='\{\}': not a valid LIST"):
        kfp_submit.check_params({"epochs": "1", "tags": "{}"}, spec)
    with pytest.raises(BadInputError, match=r"missing required pipeline parameter\(s\): epochs"):
        kfp_submit.check_params({}, spec)


@unit
@pytest.mark.parametrize(
    ("run_state", "tasks", "verdict"),
    [
        ("SUCCEEDED", {"quality gate": "SUCCEEDED", "register (approve)": "SUCCEEDED"}, "approve"),
        ("SUCCEEDED", {"quality gate": "SUCCEEDED", "register (hold)": "SUCCEEDED"}, "hold"),
        ("RUNNING", {"quality gate": "SUCCEEDED", "register (approve)": "SUCCEEDED"}, "approve"),
        ("SUCCEEDED", {"quality gate": "SUCCEEDED", "register (approve)": "SKIPPED"}, "reject"),
        ("SUCCEEDED", {"quality gate": "SUCCEEDED"}, "reject"),
        ("RUNNING", {"quality gate": "SUCCEEDED"}, "-"),  # a register task may still come
        ("FAILED", {"quality gate": "SUCCEEDED", "register (approve)": "FAILED"}, "-"),
        ("FAILED", {"validate data": "FAILED"}, "-"),
        ("SUCCEEDED", {"train": "SUCCEEDED"}, "-"),  # not a training run
        # continuous_training: the trigger check said skip, so training never ran
        ("SUCCEEDED", {"import batch": "SUCCEEDED", "check trigger": "SUCCEEDED"}, "skipped"),
        ("RUNNING", {"check trigger": "SUCCEEDED"}, "-"),  # training may still come
        ("SUCCEEDED", {"check trigger": "SUCCEEDED", "quality gate": "SUCCEEDED"}, "reject"),
        ("PENDING", {}, "-"),
    ],
)
def test_verdict_from_tasks(run_state: str, tasks: dict[str, str], verdict: str) -> None:
    assert kfp_submit.derive_verdict(run_state, tasks.items()) == verdict


@unit
def test_render_runs_is_a_fixed_width_table() -> None:
    rows = [
        {
            "run_id": "0" * 36,
            "name": "weekly " + "x" * 60,
            "state": "SUCCEEDED",
            "created_at": "2026-11-01T02:00:00Z",
            "finished_at": "2026-11-01T02:20:00Z",
            "verdict": "approve",
        },
        {
            "run_id": "1" * 36,
            "name": "adhoc",
            "state": "RUNNING",
            "created_at": "2026-11-02T02:00:00Z",
            "finished_at": None,
            "verdict": "-",
        },
    ]
    lines = kfp_submit.render_runs(rows).splitlines()
    assert lines[0].split() == ["RUN", "ID", "NAME", "STATE", "CREATED", "FINISHED", "VERDICT"]
    columns = [lines[0].index(h) for h in ("NAME", "STATE", "CREATED", "FINISHED", "VERDICT")]
    for line, row in zip(lines[1:], rows, strict=True):
        assert line.startswith(row["run_id"])
        assert [line[c:].split()[0] for c in columns[1:]] == [
            row["state"],
            row["created_at"],
            row["finished_at"] or "-",
            row["verdict"],
        ]
    assert "…" in lines[1] and len(lines[1]) == len(lines[0])  # the long name is clipped
    assert kfp_submit.render_runs([]) == "no runs"


@unit
def test_engine_cli_does_not_import_kfp() -> None:
    code = (
        "import sys, conveyor.cli; conveyor.cli.build_parser(); "
        "sys.exit(1 if 'kfp' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# ------------------------------------------------------------------------------------- submit


@integration
def test_submit_creates_experiment_and_run_with_declared_params(fake_kfp, capsys) -> None:
    code, out, _ = cli(
        capsys,
        "submit", PACKAGE, "--host", fake_kfp.url, "--format", "json",
        "--param", "model_name=fraud-v2", "--param", "data_uri=s3://bucket/batch.parquet",
        "--run-name", "nightly",
    )  # fmt: skip
    assert code == 0
    result = json.loads(out)  # stdout is only our JSON (kfp.Client's own prints are kept off)
    [exp] = fake_kfp.experiments.values()
    assert exp["display_name"] == "conveyor"
    [create] = fake_kfp.calls("POST", RUNS)
    body = create.body
    assert body["display_name"] == "nightly"
    assert body["experiment_id"] == exp["experiment_id"] == result["experiment_id"]
    assert body["runtime_config"]["parameters"] == {
        "model_name": "fraud-v2",
        "data_uri": "s3://bucket/batch.parquet",
    }
    assert body["pipeline_spec"]["pipelineInfo"]["name"] == "fraud-training"
    assert set(body["runtime_config"]["parameters"]) <= set(
        body["pipeline_spec"]["root"]["inputDefinitions"]["parameters"]
    )
    assert result["run_id"] in fake_kfp.runs
    assert result["run_name"] == "nightly"
    assert result["url"] == f"{fake_kfp.url}/#/runs/details/{result['run_id']}"

    code, out, _ = cli(capsys, "submit", PACKAGE, "--host", fake_kfp.url)
    assert code == 0
    assert len(fake_kfp.calls("POST", EXPERIMENTS)) == 1  # the experiment is reused
    assert len(fake_kfp.runs) == 2
    assert "submitted run 'fraud-training " in out and "/#/runs/details/" in out


@integration
def test_submit_package_with_platform_spec(fake_kfp, capsys, tmp_path) -> None:
    """kfp-kubernetes writes a second YAML document; kfp.Client then wraps the spec as
    {"pipeline_spec": ..., "platform_spec": ...}."""
    package = tmp_path / "pipeline.yaml"
    package.write_text(
        PACKAGE.read_text()
        + "---\nplatforms:\n  kubernetes:\n    deploymentSpec:\n      executors:\n"
        + "        exec-train:\n          nodeSelector:\n            labels: {pool: cpu}\n"
    )
    code, _, err = cli(capsys, "submit", package, "--host", fake_kfp.url, "--param", "model_name=m")
    assert code == 0, err
    [create] = fake_kfp.calls("POST", RUNS)
    spec = create.body["pipeline_spec"]
    assert spec["pipeline_spec"]["pipelineInfo"]["name"] == "fraud-training"
    executors = spec["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-train"]["nodeSelector"]["labels"] == {"pool": "cpu"}
    assert create.body["runtime_config"]["parameters"] == {"model_name": "m"}


@integration
def test_unknown_param_is_rejected_before_any_request(fake_kfp, capsys) -> None:
    code, _, err = cli(
        capsys, "submit", PACKAGE, "--host", fake_kfp.url, "--param", "modelname=fraud"
    )
    assert code == 2
    assert "unknown pipeline parameter(s) modelname" in err
    assert "model_name" in err and "data_uri" in err  # names the known ones
    assert fake_kfp.requests == []


@integration
def test_malformed_param_exits_2_naming_it(fake_kfp, capsys) -> None:
    code, _, err = cli(capsys, "submit", PACKAGE, "--host", fake_kfp.url, "--param", "fraud")
    assert code == 2
    assert "--param 'fraud': expected NAME=VALUE" in err
    assert fake_kfp.requests == []


def _missing(tmp: Path) -> Path:
    return tmp / "nowhere" / "pipeline.yaml"


def _not_yaml(tmp: Path) -> Path:
    path = tmp / "broken.yaml"
    path.write_text("pipelineInfo: {name: x\nroot: [\n")
    return path


def _not_ir(tmp: Path) -> Path:
    path = tmp / "config.yaml"
    path.write_text("name: fraud\nmodel_name: fraud\n")  # a YAML file, but no KFP IR
    return path


def _bad_proto(tmp: Path) -> Path:
    path = tmp / "odd.yaml"
    path.write_text("pipelineInfo: {name: x}\nroot: {dag: {}}\nnotAField: 1\n")
    return path


@integration
@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_missing, "no such pipeline package"),
        (_not_yaml, "not valid YAML"),
        (_not_ir, "not a compiled KFP pipeline"),
        (_bad_proto, "not a valid KFP pipeline spec"),
    ],
)
def test_bad_package_exits_2_naming_the_path(fake_kfp, capsys, tmp_path, make, says) -> None:
    path = make(tmp_path)
    for command in (["submit"], ["schedule", "--cron", "0 2 * * 0"]):
        code, _, err = cli(capsys, *command, path, "--host", fake_kfp.url)
        assert code == 2
        assert str(path) in err and says in err
    assert fake_kfp.requests == []


@integration
def test_unreachable_host_exits_7_naming_host_and_next_steps(fake_kfp, capsys) -> None:
    host = f"http://127.0.0.1:{free_port()}"  # bound then closed: nothing listens
    started = time.monotonic()
    for argv in (["submit", PACKAGE], ["runs"]):
        code, out, err = cli(capsys, *argv, "--host", host)
        assert code == 7
        assert out == ""
        assert f"cannot reach the Kubeflow Pipelines API at {host}" in err
        assert "kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80" in err
        assert "KF_PIPELINES_TOKEN" in err
    assert time.monotonic() - started < 5  # no 5 x 5 s healthz retry loop


@integration
def test_host_must_be_a_url(fake_kfp, capsys) -> None:
    code, _, err = cli(capsys, "runs", "--host", "localhost:8080")
    assert code == 2
    assert "--host 'localhost:8080': expected an http:// or https:// URL" in err


@integration
def test_host_defaults_to_kfp_host_env(fake_kfp, capsys, monkeypatch) -> None:
    monkeypatch.setenv("KFP_HOST", fake_kfp.url)
    code, out, _ = cli(capsys, "runs")
    assert code == 0
    assert out.strip() == "no runs"
    assert fake_kfp.calls("GET", RUNS)


# ----------------------------------------------------------------------------------- schedule


@integration
def test_schedule_sends_kfp_cron_concurrency_one_and_no_catchup(fake_kfp, capsys) -> None:
    code, out, _ = cli(
        capsys,
        "schedule", PACKAGE, "--host", fake_kfp.url, "--cron", "0 2 * * 0",
        "--name", "weekly-retrain", "--param", "model_name=fraud", "--format", "json",
    )  # fmt: skip
    assert code == 0
    result = json.loads(out)
    [create] = fake_kfp.calls("POST", RECURRING)
    body = create.body
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 2 * * 0"}}
    assert body["max_concurrency"] == 1
    assert body["no_catchup"] is True
    assert body["mode"] == "ENABLE"
    assert body["display_name"] == "weekly-retrain"
    assert body["runtime_config"]["parameters"] == {"model_name": "fraud"}
    [exp] = fake_kfp.experiments.values()
    assert body["experiment_id"] == exp["experiment_id"] == result["experiment_id"]
    assert result["cron"] == "0 0 2 * * 0"
    assert result["name"] == "weekly-retrain"
    assert result["recurring_run_id"] in fake_kfp.recurring_runs
    assert len(result["next_runs"]) == 3
    times = [datetime.fromisoformat(t) for t in result["next_runs"]]
    assert times == sorted(times) and times[0] > datetime.now(UTC)
    assert all((t.weekday(), t.hour, t.minute, t.utcoffset()) == (6, 2, 0, UTC.utcoffset(None))
               for t in times)  # fmt: skip


@integration
def test_schedule_catchup_flag(fake_kfp, capsys) -> None:
    code, out, _ = cli(
        capsys, "schedule", PACKAGE, "--host", fake_kfp.url, "--cron", "*/30 * * * *",
        "--catchup",
    )  # fmt: skip
    assert code == 0
    [create] = fake_kfp.calls("POST", RECURRING)
    assert create.body["no_catchup"] is False
    assert create.body["trigger"]["cron_schedule"]["cron"] == "0 */30 * * * *"
    assert create.body["display_name"] == "fraud-training"  # default: the pipeline's name
    assert "catch-up on" in out and "0 */30 * * * *" in out


@integration
@pytest.mark.parametrize("cron", ["0 2 * *", "0 25 * * *", "every sunday"])
def test_invalid_cron_exits_2_naming_it_and_sends_nothing(fake_kfp, capsys, cron) -> None:
    code, _, err = cli(capsys, "schedule", PACKAGE, "--host", fake_kfp.url, "--cron", cron)
    assert code == 2
    assert f"--cron '{cron}'" in err
    assert fake_kfp.requests == []


@integration
@pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")
def test_duplicate_schedule_name_exits_2_and_creates_nothing(fake_kfp, capsys) -> None:
    argv = ["schedule", PACKAGE, "--host", fake_kfp.url, "--cron", "0 2 * * 0", "--name", "weekly"]
    assert cli(capsys, *argv)[0] == 0
    code, _, err = cli(capsys, *argv[:-1], "weekly")
    assert code == 2
    [rr] = fake_kfp.recurring_runs.values()
    assert "a recurring run named 'weekly' already exists in experiment 'conveyor' " in err
    assert f"delete_recurring_run('{rr['recurring_run_id']}')" in err
    assert len(fake_kfp.calls("POST", RECURRING)) == 1
    # a different name is a different schedule; the same name after deleting the old one works
    assert cli(capsys, *argv[:-1], "daily", "--cron", "0 3 * * *")[0] == 0
    import kfp

    kfp.Client(host=fake_kfp.url).delete_recurring_run(rr["recurring_run_id"])
    assert cli(capsys, *argv)[0] == 0
    names = sorted(r["display_name"] for r in fake_kfp.recurring_runs.values())
    assert names == ["daily", "weekly"]


# --------------------------------------------------------------------------------------- runs


def _submit(fake_kfp, name: str, experiment: str = "conveyor") -> str:
    return kfp_submit.submit(PACKAGE, fake_kfp.url, experiment=experiment, run_name=name)["run_id"]


@integration
def test_runs_newest_first_with_verdicts(fake_kfp, capsys) -> None:
    ids = {name: _submit(fake_kfp, name) for name in
           ("approved", "held", "rejected", "bad-data", "register-failed", "running")}  # fmt: skip
    gate = {"validate data": "SUCCEEDED", "train": "SUCCEEDED", "quality gate": "SUCCEEDED"}
    fake_kfp.finish_run(ids["approved"], tasks={**gate, "register (approve)": "SUCCEEDED"})
    fake_kfp.finish_run(ids["held"], tasks={**gate, "register (hold)": "SUCCEEDED"})
    fake_kfp.finish_run(ids["rejected"], tasks=gate)
    fake_kfp.finish_run(ids["bad-data"], state="FAILED", tasks={"validate data": "FAILED"})
    fake_kfp.finish_run(
        ids["register-failed"], state="FAILED", tasks={**gate, "register (approve)": "FAILED"}
    )
    fake_kfp.finish_run(ids["running"], state="RUNNING", tasks={"validate data": "RUNNING"})

    code, out, _ = cli(capsys, "runs", "--host", fake_kfp.url, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == [
        "running", "register-failed", "bad-data", "rejected", "held", "approved",
    ]  # fmt: skip
    verdicts = {r["name"]: r["verdict"] for r in rows}
    assert verdicts == {
        "approved": "approve",
        "held": "hold",
        "rejected": "reject",
        "bad-data": "-",
        "register-failed": "-",
        "running": "-",
    }
    by_name = {r["name"]: r for r in rows}
    assert by_name["approved"]["run_id"] == ids["approved"]
    assert by_name["approved"]["state"] == "SUCCEEDED"
    assert by_name["running"]["finished_at"] is None  # KFP answers 1970-01-01 for "not yet"
    assert by_name["approved"]["finished_at"] > by_name["approved"]["created_at"]
    [listing] = fake_kfp.calls("GET", RUNS)
    assert listing.query["sort_by"] == "created_at desc"
    assert listing.query["page_size"] == "10"
    # the list leaves task details out (as the fake's default); each run was fetched for them
    assert {
        r.path.rsplit("/", 1)[1] for r in fake_kfp.requests if r.path.startswith(RUNS + "/")
    } == set(ids.values())

    code, out, _ = cli(capsys, "runs", "--host", fake_kfp.url, "--limit", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[-1] == "VERDICT" and len(lines) == 3
    assert lines[1].startswith(ids["running"]) and lines[2].startswith(ids["register-failed"])


@integration
def test_runs_use_task_details_from_the_list_when_present(fake_kfp, capsys) -> None:
    fake_kfp.list_includes_tasks = True
    run_id = _submit(fake_kfp, "approved")
    fake_kfp.finish_run(
        run_id, tasks={"quality gate": "SUCCEEDED", "register (approve)": "SUCCEEDED"}
    )
    rows = kfp_submit.list_runs(fake_kfp.url)
    assert [r["verdict"] for r in rows] == ["approve"]
    assert fake_kfp.calls("GET", f"{RUNS}/{run_id}") == []


@integration
def test_runs_of_one_experiment(fake_kfp, capsys) -> None:
    mine = _submit(fake_kfp, "mine", experiment="fraud")
    _submit(fake_kfp, "other", experiment="conveyor")
    code, out, _ = cli(
        capsys, "runs", "--host", fake_kfp.url, "--experiment", "fraud", "--format", "json"
    )
    assert code == 0
    assert [r["run_id"] for r in json.loads(out)] == [mine]
    code, _, err = cli(capsys, "runs", "--host", fake_kfp.url, "--experiment", "nope")
    assert code == 2
    assert "experiment 'nope'" in err and "No experiment is found with name nope" in err


# -------------------------------------------------------------------------------------- token


@integration
def test_token_is_sent_as_bearer_and_never_printed(fake_kfp, capsys, monkeypatch) -> None:
    fake_kfp.token = TOKEN  # the fake now answers 401 to any request without it
    monkeypatch.setenv("KF_PIPELINES_TOKEN", TOKEN)
    outputs = []
    for argv in (
        ["submit", PACKAGE, "--format", "json"],
        ["schedule", PACKAGE, "--cron", "0 2 * * 0"],
        ["runs"],
    ):
        code, out, err = cli(capsys, *argv, "--host", fake_kfp.url)
        assert code == 0, err
        outputs += [out, err]
    assert fake_kfp.requests
    assert {r.headers.get("authorization") for r in fake_kfp.requests} == {f"Bearer {TOKEN}"}

    monkeypatch.setenv("KF_PIPELINES_TOKEN", "wrong-" + TOKEN)
    code, out, err = cli(capsys, "runs", "--host", fake_kfp.url)
    assert code == 7
    assert f"the KFP API at {fake_kfp.url} refused" in err and "HTTP 401" in err
    assert "set KF_PIPELINES_TOKEN" in err
    outputs += [out, err]
    assert not any(TOKEN in text for text in outputs)


# --------------------------------------------------------------- the fake validates like KFP


@integration
@pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")
def test_fake_rejects_what_the_kfp_api_rejects(fake_kfp) -> None:
    import kfp
    import kfp_server_api

    client = kfp.Client(host=fake_kfp.url)
    exp = client.create_experiment("checks")

    def refused(call, *args, **kwargs) -> str:
        with pytest.raises(kfp_server_api.ApiException) as info:
            call(*args, **kwargs)
        assert info.value.status == 400
        doc = json.loads(info.value.body)
        assert doc["code"] == 3
        return doc["message"]

    msg = refused(client.run_pipeline, exp.experiment_id, "r", str(PACKAGE), params={"nope": "1"})
    assert "Invalid runtime parameters ['nope']" in msg and "model_name" in msg
    assert "expected exactly 6 fields" in refused(
        client.create_recurring_run, exp.experiment_id, "j", cron_expression="0 2 * * 0",
        pipeline_package_path=str(PACKAGE),
    )  # fmt: skip
    assert "Support 1-10. Received 11." in refused(
        client.create_recurring_run, exp.experiment_id, "j", cron_expression="0 0 2 * * 0",
        max_concurrency=11, pipeline_package_path=str(PACKAGE),
    )  # fmt: skip
    assert "Invalid experiment id" in refused(client.run_pipeline, "no-such-id", "r", str(PACKAGE))
    api = client._run_api
    no_source = kfp_server_api.V2beta1Run(experiment_id=exp.experiment_id, display_name="r")
    assert "neither pipeline_spec nor pipeline_version_reference" in refused(
        api.run_service_create_run, run=no_source
    )
    not_ir = kfp_server_api.V2beta1Run(
        experiment_id=exp.experiment_id, display_name="r", pipeline_spec={"name": "x"}
    )
    assert "pipelineInfo.name is missing" in refused(api.run_service_create_run, run=not_ir)
    assert fake_kfp.runs == {} and fake_kfp.recurring_runs == {}
