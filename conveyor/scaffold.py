"""``conveyor new TEAM``: a working pipeline template a platform team hands to a new team.

The files run as written on the shipped sample generator (``conveyor validate-config``, then
``conveyor run --smoke``); each field says what to change for the team's own data and cluster.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor import COMPONENT_IMAGE
from conveyor.errors import BadInputError

__all__ = ["scaffold"]


PIPELINE = """\
# Pipeline template for team {team} (conveyor.config.PipelineConfig; paths relative to this file).
# Check it with `conveyor validate-config {folder}/pipeline.yaml`; compile it with
# `conveyor compile {folder}/pipeline.yaml -o {team}.yaml`.
name: {team}
team: {team}
contract: contract.yaml         # data contract of the incoming batch
gate_policy: gate_policy.yaml   # approve / hold / reject rules
rollout: rollout.yaml           # canary plan used by continuous_training after an approval
{data_and_features}
training:
  estimator: hist_gradient_boosting   # or logistic_regression
  params: {{max_iter: 200, learning_rate: 0.1}}
  seed: 42
tracking:
  experiment: {team}
retrain:                        # what starts a retraining run (continuous_training)
  on_new_data: false            # true: every new batch fingerprint retrains
  on_drift: true                # check_drift over threshold retrains
  max_age_days: 30              # a champion older than this retrains
  schedule: "0 2 * * 0"         # cron (UTC) for `conveyor schedule`: Sundays 02:00
  skip_if_unchanged: true       # same data, code, config and seed: skip, naming the version
  drift: {{psi_threshold: 0.25, ks_threshold: 0.1, score_psi_threshold: 0.25}}
{evaluation}smoke: {{rows: 5000}}             # `conveyor run --smoke`: few rows, small model (PRs)
cluster:                        # compile-time environment: nothing is patched in compiled YAML
  image: {image}
  namespace: {team}
  mlflow_tracking_uri: http://mlflow.mlflow.svc.cluster.local:5000
  data_uri: ""                  # default batch URI, e.g. s3://{team}-data/transactions.parquet
  node_selector: {{}}             # e.g. {{kubernetes.io/arch: amd64}}
  resources:
    default: {{cpu_request: 500m, memory_request: 1Gi, memory_limit: 2Gi, timeout_seconds: 3600}}
    train: {{cpu_request: "2", memory_request: 4Gi, memory_limit: 8Gi, timeout_seconds: 7200}}
  secrets:                      # Kubernetes Secrets by NAME; values never enter this file
    - name: {team}-mlflow
      env: {{username: MLFLOW_TRACKING_USERNAME, password: MLFLOW_TRACKING_PASSWORD}}
      steps: [check_drift, check_trigger, train, evaluate, quality_gate, register_model]
"""

SAMPLE_DATA = """\
data:
  source: sample                # `file` + `path:` (a local file or s3://, gs://, minio:// URI)
  sample: {rows: 50000, seed: 7, reference_seed: 1007}
features:                       # replace with your columns
  label: label
  key: id
  numeric: [amount, customer_age, account_age_days, txn_count_24h, avg_amount_30d,
            distance_from_home_km, minutes_since_last_txn, credit_limit, merchant_risk_score,
            hour_of_day, device_trust_score, cards_on_account]
  categorical: [merchant_category, channel, country, card_type]
  min_category_frequency: 20"""

CONTRACT = """\
# Data contract for team {team} (conveyor.contracts.Contract): replace with your columns.
name: {team}-transactions
version: 1
key: [id]
rows: {{min: 500}}
drift: {{max_psi: 0.25}}
columns:                  # every column pipeline.yaml names must be declared here
  id:                     {{dtype: int, min: 1}}
  event_time:             {{dtype: datetime}}
  label:                  {{dtype: int, min: 0, max: 1}}
  amount:                 {{dtype: float, min: 0}}
  customer_age:           {{dtype: float, nullable: true, min: 18, max: 120}}
  account_age_days:       {{dtype: float, min: 0}}
  txn_count_24h:          {{dtype: int, min: 0}}
  avg_amount_30d:         {{dtype: float, nullable: true, min: 0}}
  distance_from_home_km:  {{dtype: float, nullable: true, min: 0}}
  minutes_since_last_txn: {{dtype: float, min: 0}}
  credit_limit:           {{dtype: float, min: 0}}
  merchant_risk_score:    {{dtype: float, min: 0, max: 1}}
  hour_of_day:            {{dtype: int, min: 0, max: 23}}
  device_trust_score:     {{dtype: float, nullable: true, min: 0, max: 1}}
  cards_on_account:       {{dtype: int, min: 1}}
  merchant_category:      {{dtype: string}}
  channel:                {{dtype: string, allowed: [pos, online, atm, phone]}}
  country:                {{dtype: string}}
  card_type:              {{dtype: string, allowed: [debit, credit, prepaid]}}
  group:                  {{dtype: string}}
"""

GATE = """\
# Quality gate for team {team} (conveyor.gate.GatePolicy).
rules:
  - {{metric: metrics.roc_auc, min: 0.8, max_drop: 0.01}}
  - {{metric: metrics.recall, min: 0.3, on_fail: hold}}
"""

ROLLOUT = """\
# Rollout plan for team {team} (conveyor.rollout.plan.RolloutPlan); the analysis defaults follow
# the progressive-delivery table (error rate, p99 against the champion, score PSI).
strategy: canary
steps: [5, 25, 50, 100]
require_approval: false
smoke:                   # before any traffic; `conveyor run` holds its local smoke test to it
  max_p99_ms: 250        # single-row V1 p99 bound; raise it on a slow or shared machine
  max_batch_rows: 1000
"""


def scaffold(team: str, parent: str | Path = ".", force: bool = False, **data: Any) -> list[Path]:
    """Write ``<parent>/<team>/`` with pipeline, contract, gate policy, rollout plan and the
    rollout's least-privilege Role. With ``data`` (``table``, ``label`` and optionally
    ``positive``, ``key``, ``sensitive``) the contract, the columns and the gate come from
    that table (see ``_from_table``); without, the template runs on the sample generator."""
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", team):
        raise BadInputError(
            f"team: {team!r} must be lowercase letters, digits and '-', at most 63 characters "
            "(it names the pipeline, the model and the namespace)"
        )
    folder = Path(parent) / team
    templates = {
        "pipeline.yaml": PIPELINE,
        "contract.yaml": CONTRACT,
        "gate_policy.yaml": GATE,
        "rollout.yaml": ROLLOUT,
    }
    # everything rendered before anything is written
    table = _from_table(folder, team, **data) if data else None
    blocks = {
        "data_and_features": table.pipeline if table else SAMPLE_DATA,
        "evaluation": table.evaluation if table else "",
    }
    files = {
        name: template.format(team=team, folder=folder, image=COMPONENT_IMAGE, **blocks)
        for name, template in templates.items()
    }
    if table:
        files["contract.yaml"], files["gate_policy.yaml"] = table.contract, table.gate
    files["rbac.yaml"] = _rbac(team)  # generated: conveyor.rollout.rbac
    existing = [name for name in files if (folder / name).exists()]
    if existing and not force:
        raise BadInputError(
            f"{folder}: {', '.join(existing)} already exist; nothing was written "
            "(--force overwrites)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written


def _rbac(team: str) -> str:
    """The team's least-privilege Role and RoleBinding (conveyor.rollout.rbac)."""
    import yaml

    from conveyor.rollout import rbac
    from conveyor.rollout.cluster import RUNTIME_READER

    head = (
        f"# What the rollout of InferenceService {team} may do in namespace {team}: patch only\n"
        f"# {team} and {team}-shadow, delete only the shadow and its mirror, read the\n"
        "# namespace's ServingRuntimes (conveyor.rollout.rbac).\n"
        f"# Apply with: kubectl apply -n {team} -f rbac.yaml\n"
        "# Deploy also reads the cluster-scoped ClusterServingRuntime (its scikit-learn version),\n"
        f"# which only the ClusterRole {RUNTIME_READER} (manifests/runtime) grants; a cluster\n"
        "# admin binds it once for this namespace:\n"
        f"#   kubectl create clusterrolebinding {RUNTIME_READER}-{team} \\\n"
        f"#     --clusterrole={RUNTIME_READER} --serviceaccount={team}:pipeline-runner\n"
    )
    return head + yaml.safe_dump_all(rbac.manifests([team]), sort_keys=False)


# ------------------------------------------------------------------- from the team's table

MAX_ALLOWED = 30  # a string column with at most this many values gets an `allowed` list
MAX_CATEGORIES = 100  # more distinct strings than this: an id or free text, not a feature
MARGIN = 0.1  # ranges widened by this share of the observed span


@dataclass(frozen=True)
class Inferred:
    """The parts of a team's files a table decides."""

    pipeline: str  # the data: and features: blocks
    evaluation: str  # the evaluation: block (fairness on the sensitive columns), or ""
    contract: str
    gate: str


def _dtype(series: Any) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        # a float column of whole numbers with nulls is an int column pandas widened
        present = series.dropna()
        return (
            "int"
            if len(present) and (present % 1 == 0).all() and present.abs().max() < 2**53
            else "float"
        )
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "string"


def _num(x: float, dtype: str) -> str:
    return str(int(x)) if dtype == "int" else f"{x:.6g}"


def _yaml_value(v: Any) -> str:
    import json

    return json.dumps(v) if isinstance(v, str) else str(v)


def _rule(series: Any, dtype: str, *, unique: bool = False) -> tuple[str, str]:
    """(the contract rule as a flow mapping, a comment on what was seen)."""
    import math

    parts = [f"dtype: {dtype}"]
    nulls = int(series.isna().sum())
    if nulls:
        parts.append("nullable: true")
    seen = f"{nulls} null(s)" if nulls else "no nulls"
    present = series.dropna()
    if dtype in ("int", "float") and len(present):
        lo, hi = float(present.min()), float(present.max())
        pad = (hi - lo) * MARGIN or abs(hi) * MARGIN or 1.0
        low = 0.0 if lo >= 0 and lo - pad < 0 else lo - pad
        high = hi + pad
        if dtype == "int":
            low, high = math.floor(low), math.ceil(high)
        parts += [f"min: {_num(low, dtype)}", f"max: {_num(high, dtype)}"]
        seen += f", seen {_num(lo, dtype)}..{_num(hi, dtype)} (+{MARGIN:.0%} margin)"
    elif dtype == "string":
        values = sorted(present.astype(str).unique())
        if len(values) <= MAX_ALLOWED and not unique:
            parts.append("allowed: [" + ", ".join(_yaml_value(v) for v in values) + "]")
        seen += f", {len(values)} distinct value(s)"
    if unique:
        parts.append("unique: true")
    return "{" + ", ".join(parts) + "}", seen


def _from_table(
    folder: Path,
    team: str,
    *,
    table: str,
    label: str,
    positive: str | None = None,
    key: str | None = None,
    sensitive: list[str] | None = None,
) -> Inferred:
    """Profile the team's table into a contract, the pipeline's columns and a gate whose
    rules name metrics evaluate writes. Every bad choice is refused naming the column."""
    import os

    from conveyor.tables import read_table

    path = Path(table)
    df = read_table(path)
    columns = [str(c) for c in df.columns]
    sensitive = list(sensitive or [])
    for what, name in [
        ("--label", label),
        ("--key", key),
        *(("--sensitive", c) for c in sensitive),
    ]:
        if name is not None and name not in columns:
            raise BadInputError(
                f"{what} {name!r}: not a column of {path} (columns: {columns[:25]})"
            )
    labels = sorted(df[label].dropna().astype(str).unique())
    if len(labels) != 2:
        raise BadInputError(
            f"--label {label!r}: a binary label has exactly two values; {path} has "
            f"{len(labels)}: {labels[:10]}"
        )
    if positive is None and set(labels) != {"0", "1"}:
        raise BadInputError(
            f"--label {label!r} holds {labels}, not 0/1: name the positive class with "
            f"--positive (e.g. --positive {labels[-1]})"
        )
    if positive is not None and positive not in labels:
        raise BadInputError(f"--positive {positive!r}: the label holds {labels}")
    if key is None:
        unique = [c for c in columns if c not in (label, *sensitive) and df[c].is_unique
                  and _dtype(df[c]) in ("int", "string") and df[c].notna().all()]  # fmt: skip
        named = [c for c in unique if c.lower().endswith("id")]
        if named:
            key = named[0]
        else:
            from conveyor import progress

            progress.note(
                f"{path}: no key column (unique per row, named like *id), so features.key is "
                "null and a row's position in the table identifies it; name one with --key"
                f"{f' (unique columns: {unique[:5]})' if unique else ''}"
            )
    elif not df[key].is_unique or df[key].isna().any():
        raise BadInputError(f"--key {key!r}: not unique per row in {path}; a key names one row")

    rules: list[str] = []
    numeric: list[str] = []
    categorical: list[str] = []
    left_out: list[str] = []
    for col in columns:
        dtype = _dtype(df[col])
        if col == label:
            rule = "{dtype: int, min: 0, max: 1}"
            if positive is not None:  # the two values seen, typed as the column is
                typed = int if dtype == "int" else lambda v: v
                values = sorted({typed(v.item() if hasattr(v, "item") else v)
                                 for v in df[col].dropna()}, key=str)  # fmt: skip
                rule = f"{{dtype: {dtype}, allowed: [{', '.join(map(_yaml_value, values))}]}}"
            rules.append(f"  {col}: {rule}  # the label")
            continue
        rule, seen = _rule(df[col], dtype, unique=col == key)
        rules.append(f"  {col}: {rule}  # {seen}")
        if col == key or col in sensitive:
            continue
        distinct = df[col].nunique()
        if dtype in ("int", "float"):
            numeric.append(col)
        elif dtype in ("string", "bool") and distinct <= MAX_CATEGORIES:
            categorical.append(col)
        else:
            left_out.append(f"{col} ({dtype}, {distinct} distinct)")
    if not numeric and not categorical:
        raise BadInputError(f"{path}: no column can be a model input besides the key and label")
    rows = len(df)
    contract = (
        f"# Data contract for team {team}, inferred from {path.name} ({rows:,} rows) by "
        "`conveyor new --data`.\n"
        "# Ranges carry a 10 % margin over what was seen; `allowed` lists every value seen in a\n"
        "# column of few values. Tighten or widen them: a batch breaking a rule trains nothing.\n"
        f"name: {team}-data\nversion: 1\nkey: [{key or ''}]\n"
        f"rows: {{min: {max(1, rows // 10)}}}           # a batch a tenth of this table's size\n"
        "drift: {max_psi: 0.25}\ncolumns:\n" + "\n".join(rules) + "\n"
    )
    source = os.path.relpath(path.resolve(), folder.resolve())
    lines = [
        "data:",
        "  source: file",
        f"  path: {source}             # relative to this file; or an s3://, gs:// URI",
        "features:",
        f"  label: {label}",
    ]
    if positive is not None:
        lines.append(
            f"  positive: {_yaml_value(positive)}           # this label value is the class 1"
        )
    lines += [
        f"  key: {key}"
        if key
        else "  key: null              # no key column: rows are known by position",
        f"  numeric: [{', '.join(numeric)}]",
        f"  categorical: [{', '.join(categorical)}]",
    ]
    if sensitive:
        lines.append(f"  passthrough: [{', '.join(sensitive)}]   # kept for fairness, not inputs")
    if left_out:
        lines.append(f"  # not model inputs: {', '.join(left_out)}")
    evaluation = ""
    gate = [
        f"# Quality gate for team {team} (conveyor.gate.Policy): every rule names a number the",
        "# evaluate stage writes (`conveyor validate-config` checks). Start lenient, then raise.",
        "rules:",
        "  - {metric: metrics.roc_auc, min: 0.6, max_drop: 0.02, on_fail: reject}",
        "  - {metric: metrics.log_loss, max_increase_pct: 10, on_fail: hold}",
    ]
    if sensitive:
        evaluation = (
            "evaluation:\n"
            f"  fairness: [{', '.join(sensitive)}]  # per-group recall, precision, selection\n"
        )
        gate += [
            f"  - {{metric: fairness.{c}.disparate_impact, min: 0.8, on_fail: hold}}  # four-fifths"
            for c in sensitive
        ]
    return Inferred("\n".join(lines), evaluation, contract, "\n".join(gate) + "\n")
