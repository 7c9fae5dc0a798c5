"""Pipeline config: pydantic-validated YAML, errors carry the field path and the value."""

import pytest

from conveyor.config import load_pipeline_config
from conveyor.errors import BadInputError
from tests.conftest import copy_examples

pytestmark = pytest.mark.unit


def test_example_config_loads(config):
    assert config.name == "fraud"
    assert config.training.estimator == "hist_gradient_boosting"
    assert config.resolve(config.contract).endswith("examples/fraud/contract.yaml")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("estimator: hist_gradient_boosting", "estimator: xgboost"),
            r"training\.estimator: Input",
        ),
        (("{rows: 50000,", "{rows: 5,"), r"data\.sample\.rows: Input should be greater than or"),
        (("holdout: 0.15,", "holdout: 0.25,"), r"features\.split: Value error, train \+ valid"),
        (("name: fraud", "name: Fraud Team"), r"name: String should match pattern"),
        (("threshold: 0.5", "threshold: 1.5"), r"evaluation\.threshold: Input should be less"),
        (("threshold: 0.5", "treshold: 0.5"), r"evaluation\.treshold: Extra inputs"),
        (("source: sample ", "source: file "), "data.path is required when data.source is 'file'"),
    ],
)
def test_invalid_config_names_the_field(tmp_path, edit, message):
    folder = copy_examples(tmp_path)
    path = folder / "pipeline.yaml"
    text = path.read_text()
    assert edit[0] in text, edit
    path.write_text(text.replace(edit[0], edit[1]))
    with pytest.raises(BadInputError, match=message) as err:
        load_pipeline_config(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("edit", "field", "secret"),
    [
        (
            ("mlflow_tracking_uri: http://", "mlflow_tracking_uri: https://admin:pw-7731@"),
            "cluster.mlflow_tracking_uri",
            "pw-7731",
        ),
        (
            ("latest.parquet", "latest.parquet?X-Amz-Signature=sig-9920&X-Amz-Expires=3600"),
            "cluster.data_uri",
            "sig-9920",
        ),
        (
            ("mlflow_tracking_uri: http://mlflow.mlflow.svc.cluster.local:5000",
             "mlflow_tracking_uri: http://mlflow.mlflow:5000/?access_token=tok-4410"),
            "cluster.mlflow_tracking_uri",
            "tok-4410",
        ),
    ],
)  # fmt: skip
def test_credentials_in_a_uri_are_refused_without_echoing_them(tmp_path, edit, field, secret):
    """Issue 17, item 3: config is compiled into pipeline YAML; a credential there is published."""
    folder = copy_examples(tmp_path)
    path = folder / "pipeline.yaml"
    text = path.read_text()
    assert edit[0] in text, edit
    path.write_text(text.replace(edit[0], edit[1]))
    with pytest.raises(BadInputError, match=f"{field}: Value error, {field} must not carry") as err:
        load_pipeline_config(path)
    assert secret not in str(err.value)
    assert "cluster.secrets" in str(err.value)  # says the Secret-by-name way


def test_a_slack_webhook_in_a_plan_is_refused() -> None:
    from conveyor.config import model_from_data
    from conveyor.rollout.notify import NotificationSpec

    url = "https://hooks.slack.com/services/T0AAA1111/B0BBB2222/abcdefSECRET123"
    with pytest.raises(BadInputError, match=r"webhooks\[0\] must not carry credentials") as err:
        model_from_data(NotificationSpec, {"webhooks": [url]}, "plan")
    assert "abcdefSECRET123" not in str(err.value) and "webhook_envs" in str(err.value)


def test_no_compiled_file_carries_a_credential() -> None:
    """Every compiled spec shipped in the repo, grepped: redacting changes nothing."""
    from pathlib import Path

    from conveyor.config import redact_url

    root = Path(__file__).resolve().parents[1]
    compiled = [*root.glob("pipelines/*/pipeline.yaml"), *root.glob("components/*/component.yaml")]
    assert len(compiled) >= 18
    leaks = [str(p) for p in compiled if redact_url(p.read_text()) != p.read_text()]
    assert not leaks
