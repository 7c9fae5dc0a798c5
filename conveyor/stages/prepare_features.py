"""prepare_features: split the validated batch, fit the preprocessing, profile the inputs."""

import os
from pathlib import Path

from conveyor.config import FeatureSpec
from conveyor.contracts import Contract
from conveyor.features import FeatureOutputs, PreparedFeatures, prepare
from conveyor.stages._parts import spec
from conveyor.tables import read_table

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
    return prepare(
        read_table(Path(dataset)), spec(FeatureSpec, features, "features"), outputs, checked
    )
