"""The evaluation section of the pipeline config: invalid values are named by field path."""

import pytest

from conveyor.config import EvaluationSpec, LatencySpec, load_pipeline_config
from conveyor.errors import BadInputError
from tests.conftest import EXAMPLES, copy_examples

pytestmark = pytest.mark.unit


def test_example_evaluation_section(config):
    ev = config.evaluation
    assert ev.threshold == 0.5
    assert [(s.name, s.where, s.by) for s in ev.slices] == [
        ("high_value", "amount >= 1000", None),
        ("online", "channel == 'online'", None),
        ("channel", None, "channel"),
    ]
    assert ev.fairness == ["group"]
    assert ev.min_slice_rows == 30
    assert config.resolve(ev.golden_set) == str(EXAMPLES / "golden_v1.csv")


def test_defaults_assume_nothing():
    spec = EvaluationSpec()
    assert (spec.slices, spec.fairness, spec.golden_set) == ([], [], None)
    assert spec.latency == LatencySpec(single_calls=200, batch_rows=1000, batch_calls=20, warmup=20)
    assert spec.min_slice_rows == 30


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('{name: high_value, where: "amount >= 1000"}',
             '{name: high_value, where: "amount >= 1000", by: channel}'),
            r"evaluation\.slices\.0: Value error, slice 'high_value' needs exactly one of 'where' "
            r"or 'by', got where and by",
        ),
        (
            ('{name: high_value, where: "amount >= 1000"}', "{name: high_value}"),
            r"evaluation\.slices\.0: Value error, .*got neither",
        ),
        (
            ("{name: high_value,", "{name: High Value,"),
            r"evaluation\.slices\.0\.name: String should match pattern",
        ),
        (
            ("{name: high_value,", "{name: online,"),
            r"evaluation\.slices: Value error, slice name 'online' is used more than once",
        ),
        (
            ("{name: online, where:", "{name: online, were:"),
            r"evaluation\.slices\.1\.were: Extra inputs are not permitted",
        ),
        (
            ('where: "amount >= 1000"', 'where: "  "'),
            r"evaluation\.slices\.0: Value error, slice 'high_value': where is empty",
        ),
        (
            ("fairness: [group]", "fairness: [group, group]"),
            r"evaluation\.fairness: Value error, column\(s\) \['group'\] listed more than once",
        ),
        (
            ("{single_calls: 100,", "{single_calls: 0,"),
            r"evaluation\.latency\.single_calls: Input should be greater than or equal to 1",
        ),
        (
            ("batch_rows: 1000,", "batch_rows: 5000000,"),
            r"evaluation\.latency\.batch_rows: Input should be less than or equal to 1000000",
        ),
        (
            ("warmup: 5}", "warmup: 5, repeats: 3}"),
            r"evaluation\.latency\.repeats: Extra inputs",
        ),
        (
            ("min_slice_rows: 30", "min_slice_rows: 0"),
            r"evaluation\.min_slice_rows: Input should be greater than or equal to 1",
        ),
        (
            ("golden_set: golden_v1.csv", "golden_set: [golden_v1.csv]"),
            r"evaluation\.golden_set: Input should be a valid string",
        ),
    ],
)  # fmt: skip
def test_invalid_evaluation_config_names_the_field(tmp_path, edit, message):
    folder = copy_examples(tmp_path)
    path = folder / "pipeline.yaml"
    text = path.read_text()
    assert edit[0] in text, edit
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(BadInputError, match=message) as err:
        load_pipeline_config(path)
    assert str(path) in str(err.value)
