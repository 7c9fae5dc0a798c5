"""Compile-time cluster settings from the pipeline config, applied to every task.

Resources, timeouts, node selectors and Secrets-as-env come from ``config.cluster`` and are
written by kfp (resources) and kfp-kubernetes (the rest) while a pipeline is being defined:
builders call ``configure(task)`` and ``settings(cluster)`` decides what it does. The component
image is replaced in the compiled spec (``set_image``): lightweight components bake their
``base_image`` in at decoration time. Only Secret *names* and keys reach the compiled YAML.
"""

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from conveyor import COMPONENT_IMAGE
from conveyor.config import ClusterSpec, StepResources
from conveyor.errors import BadInputError

_CLUSTER: contextvars.ContextVar[ClusterSpec | None] = contextvars.ContextVar(
    "conveyor_cluster", default=None
)

# Every step a template can name (component function names).
STEPS = (
    "validate_data", "prepare_features", "train", "evaluate", "quality_gate", "register_model",
    "check_drift", "check_trigger", "deploy_canary", "deploy_shadow", "smoke_test", "promote",
    "rollback", "analyse_rollout", "finalize_rollout",
)  # fmt: skip


def check_steps(cluster: ClusterSpec) -> list[str]:
    """Problems with step names in ``resources`` and ``secrets`` (field path, value, known)."""
    problems = []
    for step in cluster.resources:
        if step != "default" and step not in STEPS:
            problems.append(
                f"cluster.resources.{step}: unknown step {step!r}; known: default, "
                + ", ".join(STEPS)
            )
    for i, secret in enumerate(cluster.secrets):
        for step in secret.steps or []:
            if step not in STEPS:
                problems.append(
                    f"cluster.secrets.{i}.steps: unknown step {step!r}; known: " + ", ".join(STEPS)
                )
    return problems


@contextlib.contextmanager
def settings(cluster: ClusterSpec | None) -> Iterator[None]:
    """Within this block, ``configure`` applies ``cluster`` to each task a builder makes."""
    if cluster is not None:
        problems = check_steps(cluster)
        if problems:
            raise BadInputError("\n".join(problems))
    token = _CLUSTER.set(cluster)
    try:
        yield
    finally:
        _CLUSTER.reset(token)


def _step(task: Any) -> str:
    return str(task.component_spec.name).replace("-", "_")


def _resources(cluster: ClusterSpec, step: str) -> StepResources:
    base = cluster.resources.get("default", StepResources()).model_dump(exclude_none=True)
    own = cluster.resources.get(step, StepResources()).model_dump(exclude_none=True)
    return StepResources(**{**base, **own})


def configure(task: Any) -> Any:
    """Apply the active cluster settings to ``task`` (a no-op outside ``settings``)."""
    cluster = _CLUSTER.get()
    if cluster is None:
        return task
    from kfp import kubernetes

    step = _step(task)
    res = _resources(cluster, step)
    if res.cpu_request:
        task.set_cpu_request(res.cpu_request)
    if res.cpu_limit:
        task.set_cpu_limit(res.cpu_limit)
    if res.memory_request:
        task.set_memory_request(res.memory_request)
    if res.memory_limit:
        task.set_memory_limit(res.memory_limit)
    if res.timeout_seconds:
        kubernetes.set_timeout(task, res.timeout_seconds)
    for key, value in sorted(cluster.node_selector.items()):
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for secret in cluster.secrets:
        if secret.steps is None or step in secret.steps:
            kubernetes.use_secret_as_env(
                task, secret_name=secret.name, secret_key_to_env=dict(secret.env)
            )
    return task


def set_image(documents: list[dict[str, Any]], image: str | None) -> list[dict[str, Any]]:
    """Point every executor that runs the Conveyor image at ``image`` (None: unchanged)."""
    if not image:
        return documents
    for doc in documents:
        for executor in doc.get("deploymentSpec", {}).get("executors", {}).values():
            container = executor.get("container", {})
            if container.get("image") == COMPONENT_IMAGE:
                container["image"] = image
    return documents
