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
