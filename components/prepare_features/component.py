"""KFP component: split and preprocess (logic: conveyor.stages.prepare_features)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def prepare_features(
    dataset: Input[Dataset],
    features: str,
    train: Output[Dataset],
    validation: Output[Dataset],
    holdout: Output[Dataset],
    preprocessing: Output[Model],
    feature_profile: Output[Artifact],
    contract: str = "",
):
    """Split deterministically (stratified on the label) and fit preprocessing on train only.

    Args:
        dataset: The validated batch (output of validate_data).
        features: The feature config as YAML or JSON text (label, key, numeric, categorical,
            passthrough, split; see examples/fraud/pipeline.yaml under ``features``).
        train: Training rows (``data.parquet``).
        validation: Validation rows (``data.parquet``).
        holdout: Frozen holdout rows for evaluation (``data.parquet``).
        preprocessing: The fitted ColumnTransformer (``preprocessor.joblib``) and
            ``feature_spec.json``.
        feature_profile: Per-feature statistics and bin edges of the training rows, the
            reference for later drift checks.
        contract: The data contract the batch passed (YAML or JSON text; empty: none). Its
            ``allowed`` values and nullability of each input go into ``feature_spec.json``,
            so the model server refuses what the contract forbids.
    """
    from pathlib import Path

    from conveyor.stages.prepare_features import FeatureOutputs, run

    outputs = FeatureOutputs(
        Path(train.path),
        Path(validation.path),
        Path(holdout.path),
        Path(preprocessing.path),
        Path(feature_profile.path),
    )
    result = run(dataset.path, features, outputs, contract)
    for name, artifact in (("train", train), ("validation", validation), ("holdout", holdout)):
        artifact.metadata.update(
            {"rows": result.rows[name], "positive_rate": result.positive_rate[name]}
        )
    preprocessing.metadata["features_out"] = result.n_features_out
