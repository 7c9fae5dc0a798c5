"""prepare_features: split the validated batch, fit the preprocessing, profile the inputs."""

import os
from pathlib import Path

import pandas as pd

from conveyor.config import FeatureSpec
from conveyor.contracts import Contract
from conveyor.features import FeatureOutputs, PreparedFeatures, check_columns, prepare
from conveyor.stages._parts import spec
from conveyor.tables import column_names, read_table

__all__ = ["FeatureOutputs", "Result", "run"]

Result = PreparedFeatures


def run(
    dataset: str | os.PathLike[str],
    features: FeatureSpec | str,
    outputs: FeatureOutputs,
    contract: Contract | str = "",
) -> Result:
    """Writes one folder per split, the fitted preprocessing and the reference profile; with
    the batch's ``contract``, what it allows of each input goes to the model server."""
    checked = spec(Contract, contract, "contract") if contract else None
    parsed = spec(FeatureSpec, features, "features")
    needed = [*parsed.key_columns, parsed.label, *parsed.numeric, *parsed.categorical,
              *parsed.passthrough]  # fmt: skip
    have = column_names(Path(dataset))
    if any(c not in have for c in needed):
        check_columns(pd.DataFrame(columns=have), parsed)  # names every missing column
    # only the columns the split, the preprocessing and the profile use are read
    return prepare(read_table(Path(dataset), list(dict.fromkeys(needed))), parsed, outputs, checked)
