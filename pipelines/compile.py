"""Write every committed compiled file: components/*/component.yaml, pipelines/*/pipeline.yaml.

Run with ``make compile``; tests/test_compiled.py fails when a committed file is stale.
"""

import sys
import tempfile
from pathlib import Path

from kfp import compiler

from conveyor.components.analyse_rollout.component import analyse_rollout
from conveyor.components.check_drift.component import check_drift
from conveyor.components.check_trigger.component import check_trigger
from conveyor.components.deploy_canary.component import deploy_canary
from conveyor.components.deploy_shadow.component import deploy_shadow
from conveyor.components.evaluate.component import evaluate
from conveyor.components.finalize_rollout.component import finalize_rollout
from conveyor.components.prepare_features.component import prepare_features
from conveyor.components.promote.component import promote
from conveyor.components.quality_gate.component import quality_gate
from conveyor.components.register_model.component import register_model
from conveyor.components.rollback.component import rollback
from conveyor.components.smoke_test.component import smoke_test
from conveyor.components.train.component import train
from conveyor.components.validate_data.component import validate_data
from conveyor.config import load_pipeline_config

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = {
    "validate_data": validate_data,
    "prepare_features": prepare_features,
    "train": train,
    "evaluate": evaluate,
    "quality_gate": quality_gate,
    "register_model": register_model,
    "deploy_canary": deploy_canary,
    "smoke_test": smoke_test,
    "deploy_shadow": deploy_shadow,
    "promote": promote,
    "rollback": rollback,
    "analyse_rollout": analyse_rollout,
    "check_drift": check_drift,
    "check_trigger": check_trigger,
    "finalize_rollout": finalize_rollout,
}
EXAMPLE_CONFIG = ROOT / "examples" / "fraud" / "pipeline.yaml"
EXAMPLE_PLAN = ROOT / "examples" / "fraud" / "rollout.yaml"


def compiled_files(out_root: Path) -> dict[str, Path]:
    """Compile everything under ``out_root`` (same relative layout as the repo)."""
    from conveyor.pipelines.training.pipeline import build_pipeline

    written: dict[str, Path] = {}
    for name, component in COMPONENTS.items():
        path = out_root / "components" / name / "component.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        compiler.Compiler().compile(component, str(path))
        written[f"components/{name}/component.yaml"] = path
    config = load_pipeline_config(EXAMPLE_CONFIG)
    # Cluster defaults: the batch URI is given at submit time and MLflow comes from the
    # environment (MLFLOW_TRACKING_URI), so no local path is baked into the compiled file.
    pipeline = build_pipeline(config, tracking_uri="", artifact_root="")
    path = out_root / "pipelines" / "training" / "pipeline.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, str(path))
    written["pipelines/training/pipeline.yaml"] = path

    from conveyor.pipelines.rollout.pipeline import build_pipeline as build_rollout
    from conveyor.pipelines.rollout.pipeline import example_rows
    from conveyor.rollout.plan import load_plan

    rollout = build_rollout(
        load_plan(EXAMPLE_PLAN),
        config.model_name,
        config.name,
        example_rows(config.resolve(config.evaluation.golden_set)),
    )
    path = out_root / "pipelines" / "rollout" / "pipeline.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(rollout, str(path))
    written["pipelines/rollout/pipeline.yaml"] = path

    from conveyor.pipelines.continuous_training.pipeline import build_pipeline as build_ct

    ct = build_ct(
        config,
        load_plan(EXAMPLE_PLAN),
        tracking_uri="",
        artifact_root="",
        examples=example_rows(config.resolve(config.evaluation.golden_set)),
    )
    path = out_root / "pipelines" / "continuous_training" / "pipeline.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(ct, str(path))
    written["pipelines/continuous_training/pipeline.yaml"] = path
    return written


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for rel, path in compiled_files(Path(tmp)).items():
            target = ROOT / rel
            target.write_bytes(path.read_bytes())
            print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
