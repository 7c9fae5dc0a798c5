"""A team's pipeline from its config file: check it, compile it (KFP IR or Kubernetes objects).

``conveyor validate-config``, ``conveyor compile`` and ``conveyor new`` call this. Everything
that differs between clusters (image, MLflow URI, namespace, data URI, resources, node
selector, Secrets by name) comes from ``config.cluster``, so nobody edits compiled YAML.
"""

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import yaml
from kfp import compiler

from conveyor.config import PipelineConfig
from conveyor.errors import BadInputError
from conveyor.pipelines.checks import problems
from conveyor.pipelines.platform import set_image, settings

PIPELINES = ("training", "rollout", "continuous_training")


def describe(config: PipelineConfig) -> list[str]:
    """What ``conveyor validate-config`` says of a valid config: pipeline, training, retrain
    policy, rollout, cluster and, with a schedule, its next runs."""
    cluster = config.cluster
    lines = [
        f"  pipeline   : {config.name} (team {config.team or config.name}), model "
        f"{config.model_name}",
        f"  training   : {config.training.estimator}, seed {config.training.seed}",
        f"  retrain    : on_new_data {config.retrain.on_new_data}, on_drift "
        f"{config.retrain.on_drift}, max_age_days {config.retrain.max_age_days}, "
        f"skip_if_unchanged {config.retrain.skip_if_unchanged}",
        f"  rollout    : {config.rollout or 'none (continuous_training stops at register)'}",
        f"  cluster    : namespace {cluster.namespace}, image {cluster.image or '(default)'}, "
        f"secrets {[s.name for s in cluster.secrets] or 'none'}",
    ]
    if config.retrain.schedule:
        runs = ", ".join(next_runs(config.retrain.schedule))
        lines.append(f"  schedule   : {config.retrain.schedule!r} (UTC); next {runs}")
    return lines


def next_runs(cron: str, count: int = 3) -> list[str]:
    """The next ``count`` firing times of a (UTC) cron expression, ISO 8601."""
    from datetime import UTC, datetime

    from croniter import croniter

    it = croniter(cron, datetime.now(UTC))
    return [it.get_next(datetime).isoformat() for _ in range(count)]


def build(config: PipelineConfig, pipeline: str) -> Any:
    """The pipeline object for ``pipeline`` with the cluster settings applied."""
    from conveyor.pipelines.rollout.pipeline import example_rows
    from conveyor.rollout.plan import load_plan

    if pipeline not in PIPELINES:
        raise BadInputError(f"--pipeline: {pipeline!r} is not one of {', '.join(PIPELINES)}")
    cluster = config.cluster
    uri = cluster.mlflow_tracking_uri
    data_uri = cluster.data_uri or (config.data.path or "" if config.data.source == "file" else "")
    plan = load_plan(config.resolve(config.rollout)) if config.rollout else None
    examples = example_rows(config.resolve(config.evaluation.golden_set))
    with settings(cluster):
        if pipeline == "training":
            from conveyor.pipelines.training.pipeline import build_pipeline

            return build_pipeline(config, data_uri=data_uri, tracking_uri=uri, artifact_root="")
        if pipeline == "rollout":
            from conveyor.pipelines.rollout.pipeline import build_pipeline as build_rollout

            if plan is None:
                raise BadInputError(
                    "rollout: the config names no rollout plan; add `rollout: rollout.yaml`"
                )
            return build_rollout(
                plan, config.model_name, config.name, examples, uri,
                namespace=cluster.namespace, prometheus_url=cluster.prometheus_url,
            )  # fmt: skip
        from conveyor.pipelines.continuous_training.pipeline import build_pipeline as build_ct

        return build_ct(
            config, plan, data_uri, uri, "", examples,
            namespace=cluster.namespace, prometheus_url=cluster.prometheus_url,
        )  # fmt: skip


def compile_config(
    config: PipelineConfig,
    out: str | Path,
    pipeline: str = "continuous_training",
    output_format: str = "kfp",
    version: str | None = None,
) -> dict[str, Any]:
    """Compile ``pipeline`` for ``config`` to ``out``; ``output_format`` ``kubernetes`` writes
    Pipeline + PipelineVersion objects (version: content hash unless given)."""
    found = problems(config)
    if found:
        raise BadInputError("\n".join(found))
    built = build(config, pipeline)
    with tempfile.TemporaryDirectory(prefix="conveyor-compile-") as tmp:
        raw = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(built, str(raw))
        documents = [d for d in yaml.safe_load_all(raw.read_text()) if d]
        set_image(documents, config.cluster.image)
        text = yaml.safe_dump_all(documents, sort_keys=False)
        raw.write_text(text)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if output_format == "kubernetes":
            from conveyor.pipelines.k8s_native import dump_all, kubernetes_native

            objs = kubernetes_native(
                raw, namespace=config.cluster.namespace, version=version or f"v{digest[:10]}"
            )
            text = dump_all(objs)
        elif output_format != "kfp":
            raise BadInputError(f"--format: {output_format!r} is not kfp or kubernetes")
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    parameters = sorted(documents[0]["root"]["inputDefinitions"]["parameters"])
    return {"path": str(target), "pipeline": pipeline, "sha256": digest, "parameters": parameters}
