"""The golden set: canonical examples a model must reproduce, checked and passed to the
evaluate component as JSON records. Kept apart from ``evaluation`` (which imports
scikit-learn) so computing a training key stays cheap."""

from pathlib import Path

import pandas as pd

from conveyor.config import EvaluationSpec, one_line_json
from conveyor.errors import BadInputError
from conveyor.tables import read_table

__all__ = [
    "GOLDEN_TARGET",
    "check_golden",
    "component_inputs",
    "golden_records_json",
    "load_golden",
]


GOLDEN_TARGET = "expected_prediction"  # the golden-set column holding the expected 0/1 output


def check_golden(golden: pd.DataFrame, source: str) -> pd.DataFrame:
    """A golden set needs ``label`` and ``expected_prediction`` (0/1, no gaps) and rows."""
    if len(golden) == 0:
        raise BadInputError(f"{source}: golden set has no rows")
    missing = [c for c in ("label", GOLDEN_TARGET) if c not in golden.columns]
    if missing:
        raise BadInputError(f"{source}: golden set lacks column(s) {missing}")
    expected = golden[GOLDEN_TARGET]
    bad = sorted({str(v) for v in expected if pd.isna(v) or v not in (0, 1)})
    if bad:
        raise BadInputError(
            f"{source}: golden set column {GOLDEN_TARGET!r} must be 0 or 1, got {bad}"
        )
    golden.attrs["source"] = source
    return golden


def load_golden(path: str | Path, version: str | None = None) -> pd.DataFrame:
    """Read and check a golden-set CSV; its version is the file name stem (``golden_v1``)."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{p}: golden set file not found")
    golden = check_golden(read_table(p), str(p))
    golden.attrs["version"] = version or p.stem
    return golden


def golden_records_json(path: str | Path) -> str:
    """The golden set as one-line JSON records (a KFP string parameter; NaN becomes null)."""
    return str(load_golden(path).to_json(orient="records"))


def component_inputs(spec: EvaluationSpec, golden_path: str | None) -> dict[str, str]:
    """The evaluate component's string inputs for a pipeline: ``evaluation_spec`` (the spec
    as one-line JSON, without ``golden_set``), ``golden_set`` (records) and its version."""
    return {
        "evaluation_spec": one_line_json(spec.model_dump(mode="json", exclude={"golden_set"})),
        "golden_set": golden_records_json(golden_path) if golden_path else "[]",
        "golden_set_version": Path(golden_path).stem if golden_path else "",
    }
