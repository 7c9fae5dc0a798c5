"""What ``conveyor validate-config`` checks beyond a config's own schema, and what ``conveyor
run`` checks before it reads any data: everything a run would otherwise trip on later (a
column the contract does not declare, one dropped at the split, a gate rule on a metric no
stage writes). No kfp import: the run's preflight stays cheap."""

from pathlib import Path
from typing import Any

from conveyor.config import PipelineConfig
from conveyor.errors import ConveyorError, did_you_mean
from conveyor.pipelines.platform import check_steps

__all__ = ["problems"]


def problems(config: PipelineConfig) -> list[str]:
    """Everything wrong with a config beyond its own schema: the files it names (contract,
    gate policy, rollout plan, golden set) must load, and step names must exist."""
    from conveyor.contracts import load_contract
    from conveyor.evaluation import component_inputs
    from conveyor.gate import load_policy
    from conveyor.rollout.plan import load_plan

    found: list[str] = []
    checks: list[tuple[str, Any, str | None]] = [
        ("contract", load_contract, config.contract),
        ("gate_policy", load_policy, config.gate_policy),
        ("rollout", load_plan, config.rollout),
    ]
    loaded: dict[str, Any] = {}
    for field, load, path in checks:
        if path is None:
            continue
        try:
            loaded[field] = load(config.resolve(path))
        except ConveyorError as exc:
            found.append(f"{field}: {exc}")
    if "contract" in loaded:
        found += _against_contract(config, loaded["contract"])
    found += _kept_through_splits(config)
    if "gate_policy" in loaded:
        found += _gate_metrics(config, loaded["gate_policy"])
    try:
        component_inputs(config.evaluation, config.resolve(config.evaluation.golden_set))
    except ConveyorError as exc:
        found.append(f"evaluation.golden_set: {exc}")
    found += check_steps(config.cluster)
    drift_features = config.retrain.drift.features or []
    model_inputs = {*config.features.numeric, *config.features.categorical}
    for name in drift_features:
        if name not in model_inputs:
            found.append(
                f"retrain.drift.features: {name!r} is not a model input "
                f"(features.numeric / features.categorical)"
            )
    if config.data.source == "file" and config.data.path and "://" not in config.data.path:
        path = config.resolve(config.data.path)
        if path and not Path(path).is_file():
            found.append(f"data.path: {path} does not exist")
    return found


def _against_contract(config: PipelineConfig, contract: Any) -> list[str]:
    """Every column the config names is declared in the contract, with a type its role
    can use: a typo here used to fail the run in prepare_features, after validation."""
    found: list[str] = []
    f = config.features
    roles: list[tuple[str, str, tuple[str, ...]]] = [
        ("features.label", f.label, ("int", "bool", "string")),
        *((("features.key", f.key, ("int", "string")),) if f.key else ()),
        *(("features.numeric", c, ("int", "float", "bool")) for c in f.numeric),
        *(("features.categorical", c, ("string", "int", "bool")) for c in f.categorical),
        *(("features.passthrough", c, ("int", "float", "bool", "string", "datetime"))
          for c in f.passthrough),
    ]  # fmt: skip
    columns = contract.columns
    for field, col, dtypes in roles:
        if col not in columns:
            found.append(
                f"{field}: {col!r} is not a column of contract {contract.name!r}"
                + did_you_mean(col, columns)
            )
        elif columns[col].dtype not in dtypes:
            found.append(
                f"{field}: {col!r} is {columns[col].dtype} in the contract; this role takes "
                f"{' or '.join(dtypes)}"
            )
    label = columns.get(f.label)
    if label is not None and label.allowed is not None:
        allowed = [str(v) for v in label.allowed]
        if f.positive is not None and str(f.positive) not in allowed:
            found.append(
                f"features.positive: {f.positive!r} is not a value the contract allows for "
                f"{f.label!r} ({allowed}){did_you_mean(str(f.positive), allowed)}"
            )
        elif f.positive is None and not {v.lower() for v in allowed} <= {"0", "1", "true", "false"}:
            found.append(
                f"features.label: contract allows {allowed} for {f.label!r}, not 0/1; set "
                "features.positive to the positive class (e.g. features.positive: "
                f"{allowed[-1]!r})"
            )
    return found


def _query_columns(where: str) -> list[str] | str:
    """The column names a slice's DataFrame.query expression reads, or why it cannot parse."""
    import ast
    import re

    text = re.sub(r"`([^`]+)`", lambda m: "__bt_" + m.group(1).encode().hex(), where)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        return f"cannot parse {where!r} ({exc.msg})"
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in ("True", "False", "None"):
            name = node.id
            if name.startswith("__bt_"):
                name = bytes.fromhex(name[5:]).decode()
            names.append(name)
    return names


def _kept_through_splits(config: PipelineConfig) -> list[str]:
    """Columns the evaluation reads must reach the holdout: prepare_features keeps the key,
    the label, the features and features.passthrough; anything else is dropped at the split
    and the run used to fail in evaluate, after training."""
    f = config.features
    kept = {f.key, f.label, *f.numeric, *f.categorical, *f.passthrough}
    fix = "add it to features.passthrough (or use a model input)"
    found = [
        f"evaluation.fairness: {c!r} is not kept in the splits; {fix}"
        for c in config.evaluation.fairness
        if c not in kept
    ]
    for i, s in enumerate(config.evaluation.slices):
        field = f"evaluation.slices[{i}] ({s.name})"
        if s.by is not None and s.by not in kept:
            found.append(f"{field}.by: {s.by!r} is not kept in the splits; {fix}")
        if s.where is not None:
            names = _query_columns(s.where)
            if isinstance(names, str):
                found.append(f"{field}.where: {names}")
                continue
            for name in dict.fromkeys(names):
                if name not in kept:
                    hint = did_you_mean(name, kept)
                    found.append(f"{field}.where: {name!r} is not kept in the splits{hint}; {fix}")
    return found


def _gate_metrics(config: PipelineConfig, policy: Any) -> list[str]:
    """Every gate rule names a number evaluate produces for this config: a rule on a missing
    one holds every model on "missing evidence"."""
    from conveyor.evaluation import unknown_metric

    found = []
    for i, rule in enumerate(policy.rules):
        why = unknown_metric(rule.metric, config.evaluation)
        if why:
            found.append(f"gate_policy rules[{i}].metric: {why}")
    return found
