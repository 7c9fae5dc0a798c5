"""docs/reference.md: committed, complete, and what the models say (generated, not hand-edited)."""

import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from conveyor import reference
from conveyor.config import PipelineConfig, RetrainPolicy, load_model
from conveyor.contracts import Contract
from conveyor.gate import Policy
from conveyor.rollout.plan import RolloutPlan

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "reference.md"
ROOTS: tuple[type[BaseModel], ...] = (Contract, PipelineConfig, Policy, RolloutPlan)


def _inner(tp: Any, path: str) -> Iterator[tuple[str, type[BaseModel]]]:
    """Models inside an annotation and where their fields hang (written apart from the
    module's walker on purpose: the two must agree on every path)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        yield path, tp
    elif get_origin(tp) in (Union, types.UnionType):
        for arg in get_args(tp):
            yield from _inner(arg, path)
    elif get_origin(tp) is list:
        yield from _inner(get_args(tp)[0], path + "[]")
    elif get_origin(tp) is dict:
        yield from _inner(get_args(tp)[1], path + ".<name>")


def _paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        yield path
        for sub_path, sub in _inner(field.annotation, path):
            yield from _paths(sub, sub_path)


def _row(text: str, path: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith(f"| `{path}` |")]
    assert len(rows) == 1, f"{path}: {len(rows)} table rows"
    return rows[0]


def test_the_committed_reference_is_what_the_models_render() -> None:
    assert COMMITTED.is_file(), "docs/reference.md is missing: run `make reference`"
    assert COMMITTED.read_text(encoding="utf-8") == reference.render(), (
        "docs/reference.md is stale (a config model changed): run `make reference` and commit it"
    )


def test_the_reference_says_it_is_generated() -> None:
    head = reference.render().splitlines()[:2]
    assert all("make reference" in line for line in head)
    assert "Do not edit by hand" in head[1]


@pytest.mark.parametrize("model", ROOTS, ids=lambda m: m.__name__)
def test_every_field_of_every_model_has_its_row(model: type[BaseModel]) -> None:
    text = reference.render()
    expected = list(_paths(model))
    assert len(expected) > len(model.model_fields)  # the walk reached nested models
    missing = [p for p in expected if f"| `{p}` |" not in text]
    assert not missing, f"fields without a row: {missing}"


def test_the_file_kinds_are_the_four_files_a_team_writes() -> None:
    assert [k.model for k in reference.KINDS] == list(ROOTS)


@pytest.mark.parametrize("kind", reference.KINDS, ids=lambda k: k.title)
def test_each_kind_links_an_example_that_loads(kind: reference.FileKind) -> None:
    load_model(kind.model, ROOT / kind.example, kind.title)
    assert f"[{kind.example}](../{kind.example})" in reference.render()


def test_a_row_holds_the_fields_type_default_bounds_and_description() -> None:
    text = reference.render()
    bins = _row(text, "features.profile_bins")
    assert "`int`" in bins and "`10`" in bins and ">= 2, <= 100" in bins
    threshold = _row(text, "evaluation.threshold")
    assert "`float`" in threshold and "`0.5`" in threshold and "> 0, < 1" in threshold
    age = _row(text, "retrain.max_age_days")
    description = RetrainPolicy.model_fields["max_age_days"].description
    assert description and description in age
    assert "`int \\| null`" in age and "`30`" in age and ">= 1, <= 3650" in age
    assert "required" in _row(text, "features.numeric")
    assert '`"median" \\| "mean"`' in _row(text, "features.impute_numeric")
    assert "pattern `^[a-z0-9_]+$`" in _row(text, "evaluation.slices[].name")
    assert "`dict[str, ColumnRule]`" in _row(text, "columns")


def test_a_nested_default_is_the_enclosing_default_objects() -> None:
    """``smoke.training`` defaults to logistic regression, unlike ``training``."""
    text = reference.render()
    assert '`"logistic_regression"`' in _row(text, "smoke.training.estimator")
    assert '`"hist_gradient_boosting"`' in _row(text, "training.estimator")
    assert '`{"max_iter": 200}`' in _row(text, "smoke.training.params")


def test_the_class_docstring_heads_its_table() -> None:
    text = reference.render()
    doc = RolloutPlan.__doc__
    assert doc
    assert " ".join(doc.split("\n\n")[0].split())[:40] in text


def test_prose_outside_code_is_escaped_for_markdown() -> None:
    """``<name>`` would vanish as an HTML tag; a pipe would end a table cell."""
    text = reference.render()
    assert "named &lt;name>_&lt;value>" in _row(text, "evaluation.slices[].by")
    assert "``--smoke``" in text  # code spans are left as written


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor.reference", "--check", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_fails_on_a_stale_copy_and_passes_on_a_fresh_one(tmp_path: Path) -> None:
    fresh = reference.render()
    stale = tmp_path / "stale.md"
    stale.write_text(fresh.replace("`features.profile_bins`", "`features.bins`"), "utf-8")
    done = _check(stale)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == f"{stale} is stale: run make reference"
    assert _check(tmp_path / "missing.md").returncode == 1

    current = tmp_path / "fresh.md"
    current.write_text(fresh, "utf-8")
    done = _check(current)
    assert (done.returncode, done.stderr) == (0, "")


def test_the_module_prints_the_reference_without_kfp() -> None:
    """kfp blocked: the reference needs only pydantic and the model modules."""
    code = (
        "import sys; sys.modules['kfp'] = None\n"
        "from conveyor.reference import main\n"
        "sys.exit(main([]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode("utf-8") == reference.render()
