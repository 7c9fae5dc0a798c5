"""YAML configuration validated by pydantic; a bad file is rejected with the field path."""

import itertools
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from conveyor.errors import BadInputError

__all__ = [
    "DEFAULT_FAIRNESS_BINS",
    "MAX_FAIRNESS_VALUES",
    "ClusterSpec",
    "DriftPolicy",
    "EvaluationSpec",
    "FeatureSpec",
    "LatencySpec",
    "PipelineConfig",
    "RetrainPolicy",
    "SliceSpec",
    "SplitSpec",
    "StepResources",
    "StrictModel",
    "TrackingSpec",
    "TrainingSpec",
    "load_model",
    "load_pipeline_config",
    "model_from_data",
    "model_from_yaml",
    "one_line_json",
    "redact_url",
    "refuse_credentials",
]


M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a policy must never be silently ignored."""

    model_config = ConfigDict(extra="forbid")


def one_line_json(doc: object) -> str:
    """Sorted, compact, one-line JSON: how config reaches a KFP string parameter (kfp copies
    string defaults into the compiled file's header comment, where a multi-line default would
    break the YAML)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
# Query parameters that carry a credential (?token=, &api_key=, &X-Amz-Signature=, &sig=).
SECRET_PARAM = re.compile(
    r"([?&](?:[\w.-]*(?:token|secret|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key|"
    r"signature|credential|auth)[\w.-]*|key|sig|code)=)[^&#\s]*",
    re.IGNORECASE,
)
# A Slack incoming-webhook path is itself the secret: /services/T.../B.../<token>.
SLACK_PATH = re.compile(r"(/services/T[A-Z0-9]+/B[A-Z0-9]+/)[A-Za-z0-9]+")


def redact_url(text: str) -> str:
    """``text`` with a URL's user:password, credential query values and Slack token hidden."""
    text = URL_USERINFO.sub(r"\1<redacted>@", text)
    text = SECRET_PARAM.sub(r"\1<redacted>", text)
    return SLACK_PATH.sub(r"\1<redacted>", text)


def refuse_credentials(field_name: str, url: str, instead: str) -> None:
    """Refuse a URL that carries a credential: the config is compiled into pipeline YAML (and
    echoed in logs), where a password or token is published. Never quotes the URL."""
    if not url:
        return
    found = None
    if URL_USERINFO.search(url):
        found = "a user:password"
    elif SECRET_PARAM.search(url):
        found = "a credential in its query (token, key, signature...)"
    elif SLACK_PATH.search(url):
        found = "a Slack webhook token in its path"
    if found:
        raise ValueError(
            f"{field_name} must not carry credentials (it has {found}; the config is compiled "
            f"into the pipeline YAML, where they would be published): {instead}"
        )


def format_validation_error(source: str, exc: ValidationError, hide_input: bool = False) -> str:
    """One line per problem: ``source: field.path: message (got value)``; ``hide_input`` (a
    model whose text values may be secrets) leaves text values out, numbers and flags stay."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        got = err.get("input")
        if isinstance(got, str):  # a URL's credentials never reach an error message
            got = redact_url(got)
        hidden = isinstance(got, dict | list) or (hide_input and isinstance(got, str))
        shown = "" if hidden else f" (got {got!r})"
        lines.append(f"{source}: {loc}: {err['msg']}{shown}")
    return "\n".join(lines)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; syntax errors name the source and line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BadInputError(f"{source}:{where}: invalid YAML: {problem}") from exc


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """Read a config file, naming what it was meant to be when it is missing."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{p}: {what} file not found")
    return p.read_text(encoding="utf-8")


def model_from_data(model: type[M], data: Any, source: str) -> M:
    """Validate already-parsed data into ``model``; errors carry the field path."""
    if not isinstance(data, dict):
        raise BadInputError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        hide = bool(model.model_config.get("hide_input_in_errors"))
        raise BadInputError(format_validation_error(source, exc, hide)) from exc


def load_model(model: type[M], path: str | os.PathLike[str], what: str) -> M:
    """Load and validate a YAML file into ``model``."""
    return model_from_data(model, parse_yaml(read_text(path, what), str(path)), str(path))


def model_from_yaml(model: type[M], text: str, source: str) -> M:
    """Validate YAML text (as passed into a KFP component) into ``model``."""
    return model_from_data(model, parse_yaml(text, source), source)


# --------------------------------------------------------------------------- pipeline config


class SampleSpec(StrictModel):
    """The batch the shipped sample generator makes (``data.source: sample``)."""

    rows: int = Field(
        50_000,
        ge=100,
        le=50_000_000,
        description="rows generated for the batch and for the reference sample; the smoke "
        "profile caps it at smoke.rows",
    )
    seed: int = Field(7, description="the generator's seed for the batch")
    reference_seed: int = Field(
        1007,
        description="the generator's seed for the reference sample conveyor run profiles for "
        "the drift checks when no reference_profile is given",
    )


class DataSpec(StrictModel):
    """Where the batch comes from: a file, or the shipped sample generator."""

    source: Literal["sample", "file"] = Field(
        "sample",
        description="sample: the shipped fraud-transactions generator (data.sample); file: the "
        "table at path",
    )
    path: str | None = Field(
        None,
        description="the batch for source: file, a CSV or Parquet file relative to this file "
        "or an s3://, gs://, minio:// URI; also the compiled pipelines' default batch when "
        "cluster.data_uri is empty",
    )
    reference_profile: str | None = Field(
        None,
        description="conveyor run only: the profile JSON (from conveyor profile) validate_data "
        "checks drift against, relative to this file; null: one built from a reference sample "
        "when the batch is the generator's, else no drift checks",
    )
    sample: SampleSpec = Field(SampleSpec(), description="the generator's settings")

    @model_validator(mode="after")
    def _path_for_file(self) -> "DataSpec":
        if self.source == "file" and not self.path:
            raise ValueError("data.path is required when data.source is 'file'")
        return self


class SplitSpec(StrictModel):
    """How rows are split into train, validation and holdout (stratified on the label)."""

    method: Literal["hash", "random"] = Field(
        "hash",
        description="hash: a row's split follows from a hash of its features.key, so it stays "
        "put as the table grows; random: a seeded shuffle of the rows",
    )
    seed: int = Field(42, description="seed of the random method (the hash method ignores it)")
    train: float = Field(
        0.7,
        gt=0,
        lt=1,
        description="share (0-1) of each class's rows the model is fitted on; the three "
        "shares must sum to 1",
    )
    validation: float = Field(
        0.15,
        gt=0,
        lt=1,
        description="share (0-1) of rows train scores for its validation metrics and the "
        "reference profile's score distribution",
    )
    holdout: float = Field(
        0.15,
        gt=0,
        lt=1,
        description="share (0-1) of rows evaluate scores the candidate and the champion on",
    )

    @model_validator(mode="after")
    def _sums_to_one(self) -> "SplitSpec":
        total = self.train + self.validation + self.holdout
        if abs(total - 1.0) > 1e-9:
            raise ValueError(
                f"train + validation + holdout must be 1.0, got {total:g} "
                f"({self.train:g} + {self.validation:g} + {self.holdout:g})"
            )
        return self


class FeatureSpec(StrictModel):
    """Which columns are the label, the key and the model inputs, and how inputs are prepared."""

    label: str = Field(
        "label",
        description="the label column: 0/1, or two values with positive naming the class 1",
    )
    positive: str | int | None = Field(
        None,
        description="the label's positive-class value when the label is not already 0/1 (e.g. "
        "'Yes', 'fraud'); rows with it become 1, the other value 0",
    )
    key: str | None = Field(
        "id",
        description="a column unique per row: the hash split keeps each row on its side as the "
        "table grows; null: the row's position in the table stands in (stable only while new "
        "rows are appended at the end)",
    )
    numeric: list[str] = Field(
        min_length=0,
        description="numeric model inputs: gaps filled (impute_numeric), then standardised "
        "when scale is on; at least one numeric or categorical input is required",
    )
    categorical: list[str] = Field(
        default_factory=list,
        description="categorical model inputs, one-hot encoded with a missing value as a "
        "category of its own; a category unseen in training encodes as none (or as the "
        "infrequent one, see min_category_frequency)",
    )
    passthrough: list[str] = Field(
        default_factory=list, description="columns kept in the splits (slices, fairness)"
    )
    impute_numeric: Literal["median", "mean"] = Field(
        "median",
        description="what fills a missing numeric value: the training split's median or mean",
    )
    scale: bool = Field(
        True,
        description="standardise numeric inputs after imputing (a StandardScaler fitted on the "
        "training split); false: raw values",
    )
    min_category_frequency: int = Field(
        1,
        ge=1,
        description="categories in fewer training rows than this are merged into one "
        "infrequent category, which unseen categories join too; 1: every category is kept",
    )
    profile_bins: int = Field(
        10,
        ge=2,
        le=100,
        description="bins per input in prepare_features' profile of the training rows "
        "(feature_profile) and in the reference profile conveyor run builds from a sample",
    )
    split: SplitSpec = Field(SplitSpec(), description="how rows are split")

    @property
    def key_columns(self) -> list[str]:
        """The key as a list: empty when rows are identified by position."""
        return [self.key] if self.key else []

    @model_validator(mode="after")
    def _disjoint(self) -> "FeatureSpec":
        if not self.numeric and not self.categorical:
            raise ValueError("at least one numeric or categorical feature is required")
        seen: dict[str, str] = {}
        for role in ("numeric", "categorical"):
            for col in getattr(self, role):
                if col in seen:
                    raise ValueError(f"column {col!r} is listed as both {seen[col]} and {role}")
                seen[col] = role
        for special in (self.label, self.key):
            if special is not None and special in seen:
                raise ValueError(f"column {special!r} is the label/key and cannot be a feature")
        return self


class TrainingSpec(StrictModel):
    """The scikit-learn estimator the train stage fits after the prepared preprocessing."""

    estimator: Literal["logistic_regression", "hist_gradient_boosting"] = Field(
        "hist_gradient_boosting",
        description="LogisticRegression or HistGradientBoostingClassifier",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments of the estimator, over Conveyor's defaults for it; a "
        "name or value the estimator refuses stops train before it reads any data",
    )
    seed: int = Field(42, description="the estimator's random_state")


class TrackingSpec(StrictModel):
    """The MLflow store runs, metrics and models are logged to."""

    uri: str = Field(
        "sqlite:///.conveyor/mlflow.db",
        description="MLflow tracking URI of conveyor run and retrain (a relative sqlite path is "
        "from the current folder); compiled pipelines use cluster.mlflow_tracking_uri instead",
    )
    artifact_root: str = Field(
        ".conveyor/mlartifacts",
        description="local folder for the artifacts of an experiment the run creates (not "
        "used with an http(s) tracking server); relative to the current folder",
    )
    experiment: str = Field(
        "conveyor",
        description="MLflow experiment the runs are logged under (the smoke profile adds -smoke)",
    )

    @field_validator("uri", "artifact_root")
    @classmethod
    def _no_credentials(cls, url: str, info: ValidationInfo) -> str:
        refuse_credentials(
            f"tracking.{info.field_name}", url, "set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the environment instead",
        )  # fmt: skip
        return url


class SliceSpec(StrictModel):
    """A holdout subset scored on its own: ``where`` (one slice) or ``by`` (one per value)."""

    name: str = Field(
        pattern=r"^[a-z0-9_]+$",
        max_length=64,
        description="the slice's key under slices in evaluation.json, the prefix of each name "
        "a by slice makes",
    )
    where: str | None = Field(
        None, description="pandas DataFrame.query boolean expression, e.g. amount >= 1000"
    )
    by: str | None = Field(
        None, description="categorical column: one slice per value, named <name>_<value>"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> "SliceSpec":
        given = [k for k in ("where", "by") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"slice {self.name!r} needs exactly one of 'where' or 'by', got "
                f"{' and '.join(given) if given else 'neither'}"
            )
        if not str(getattr(self, given[0])).strip():
            raise ValueError(f"slice {self.name!r}: {given[0]} is empty")
        return self


class LatencySpec(StrictModel):
    """How many predict calls are timed (after ``warmup`` untimed ones)."""

    single_calls: int = Field(
        200,
        ge=1,
        le=100_000,
        description="timed single-row predict_proba calls on holdout rows in turn: "
        "latency_ms.p50, p95 and p99 (ms)",
    )
    batch_rows: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="rows per timed batch call (the holdout repeated when shorter), also the "
        "batch whose peak memory is measured",
    )
    batch_calls: int = Field(
        20,
        ge=1,
        le=10_000,
        description="timed batch calls: latency_ms.batch_p50, batch_p95 and batch_p99 (ms)",
    )
    warmup: int = Field(
        20, ge=0, le=10_000, description="untimed calls before each series (single-row, batch)"
    )
    threads: int = Field(
        1,
        ge=1,
        le=256,
        description="OpenMP/BLAS threads while timing: the serving runtime's OMP_NUM_THREADS "
        "(its CPU limit; 1 by default). Timed with OpenMP's default of one thread per core, "
        "a single-row predict measured 17-71 ms instead of 0.6 ms",
    )


DEFAULT_FAIRNESS_BINS = 4  # quartiles: groups large enough to compare on a typical holdout
MAX_FAIRNESS_VALUES = 10  # a numeric column with more values is binned, not grouped by value


class EvaluationSpec(StrictModel):
    """What the evaluate stage measures on the holdout, for the candidate and the champion."""

    threshold: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="score at or above which a row counts as positive: accuracy, precision, "
        "recall, f1, fairness and golden-set agreement are computed at it (train's validation "
        "metrics too)",
    )
    slices: list[SliceSpec] = Field(
        default_factory=list,
        description="holdout subsets scored on their own (slices.<name> in evaluation.json, "
        "which gate rules can bound)",
    )
    fairness: list[str] = Field(
        default_factory=list, description="group columns of the holdout to compare groups on"
    )
    latency: LatencySpec = Field(
        LatencySpec(),
        description="how predict_proba is timed on the holdout (latency_ms in evaluation.json)",
    )
    golden_set: str | None = Field(
        None, description="CSV of canonical examples, relative to the config file"
    )
    fairness_bins: dict[str, int | list[float]] = Field(
        default_factory=dict,
        description="groups of a numeric fairness column: a number of quantile bins, or the "
        "inner bin edges (e.g. age: [25, 40, 60] gives < 25, 25-40, 40-60, >= 60); default: "
        f"{DEFAULT_FAIRNESS_BINS} quantile bins when a numeric column holds more than "
        f"{MAX_FAIRNESS_VALUES} distinct values",
    )
    min_slice_rows: int = Field(
        30,
        ge=1,
        le=1_000_000,
        description="a slice with fewer holdout rows gets null metrics, and fairness groups "
        "this small are left out of max_gap and disparate_impact",
    )

    @model_validator(mode="after")
    def _bins_of_fairness_columns(self) -> "EvaluationSpec":
        for col, bins in self.fairness_bins.items():
            where = f"evaluation.fairness_bins.{col}"
            if col not in self.fairness:
                raise ValueError(f"{where}: {col!r} is not listed in evaluation.fairness")
            if isinstance(bins, int) and not 2 <= bins <= 20:
                raise ValueError(f"{where}: {bins} bins; between 2 and 20 groups can be compared")
            if isinstance(bins, list):
                if not bins or not all(math.isfinite(e) for e in bins):
                    raise ValueError(f"{where}: edges {bins} must be finite numbers, at least one")
                if any(b <= a for a, b in itertools.pairwise(bins)):
                    raise ValueError(f"{where}: edges {bins} must increase strictly")
        return self

    @field_validator("slices")
    @classmethod
    def _unique_slice_names(cls, slices: list[SliceSpec]) -> list[SliceSpec]:
        seen: set[str] = set()
        for s in slices:
            if s.name in seen:
                raise ValueError(f"slice name {s.name!r} is used more than once")
            seen.add(s.name)
        return slices

    @field_validator("fairness")
    @classmethod
    def _unique_columns(cls, columns: list[str]) -> list[str]:
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise ValueError(f"column(s) {dupes} listed more than once")
        if any(not c.strip() for c in columns):
            raise ValueError("a fairness column name is empty")
        return columns


class RegistrySpec(StrictModel):
    """Where approved models go: a registered model in the MLflow registry."""

    model_name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="default: <name>"
    )
    promote_first_locally: bool = Field(
        True,
        description="conveyor run only: promote the first approved version to champion so the "
        "next local run has a champion to compare against",
    )


class DriftPolicy(StrictModel):
    """When a batch counts as drifted (check_drift). Defaults follow the conventional PSI bands."""

    psi_threshold: float = Field(
        0.25, gt=0, description="a feature drifted when its PSI is above this (major band)"
    )
    ks_threshold: float | None = Field(
        0.1, gt=0, le=1, description="numeric: also drifted when KS is above this and p < alpha"
    )
    ks_alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="significance level of the KS test: a KS above ks_threshold counts only "
        "when its p-value is below this",
    )
    score_psi_threshold: float = Field(
        0.25, gt=0, description="the model's scores drifted when their PSI is above this"
    )
    min_drifted_features: int = Field(
        1, ge=1, description="drift when at least this many features drifted (or the scores)"
    )
    min_rows: int = Field(100, ge=1, description="fewer current rows is an error, not a verdict")
    features: list[str] | None = Field(
        None, description="features to check (default: every column of the reference profile)"
    )


def check_cron(value: str) -> str:
    """A standard 5-field cron expression (minute hour day month weekday), checked now rather
    than by the KFP scheduler later."""
    from croniter import croniter

    fields = value.split()
    if len(fields) != 5 or not croniter.is_valid(value):
        raise ValueError(
            f"{value!r} is not a 5-field cron expression (minute hour day-of-month month "
            "day-of-week), e.g. '0 2 * * 0' for Sundays at 02:00 UTC"
        )
    return " ".join(fields)


class RetrainPolicy(StrictModel):
    """What starts a retraining run (continuous_training) and what skips one."""

    on_new_data: bool = Field(
        False, description="retrain when the batch fingerprint differs from the champion's data"
    )
    on_drift: bool = Field(True, description="retrain when check_drift says drift")
    max_age_days: int | None = Field(
        30, ge=1, le=3650, description="retrain when the champion is older than this"
    )
    schedule: str | None = Field(
        None, description="cron (UTC) of the KFP recurring run that checks the triggers"
    )
    skip_if_unchanged: bool = Field(
        True, description="skip when data, code, config and seed match an earlier training run"
    )
    drift: DriftPolicy = Field(
        DriftPolicy(), description="when check_drift calls a batch drifted (for on_drift)"
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)


class SmokeProfile(StrictModel):
    """``--smoke``: the same line on sampled data with a small estimator, for pull requests.

    It registers under ``<model>-smoke`` in experiment ``<experiment>-smoke``, so a PR check
    never adds versions to the real model."""

    rows: int = Field(5000, ge=500, le=1_000_000, description="rows sampled from the batch")
    seed: int = Field(
        7,
        description="seed of the rows sampled from a file batch (a generated batch is made "
        "with data.sample.seed)",
    )
    training: TrainingSpec = Field(
        TrainingSpec(estimator="logistic_regression", params={"max_iter": 200}),
        description="the estimator used instead of training",
    )
    latency: LatencySpec = Field(
        LatencySpec(single_calls=20, batch_rows=200, batch_calls=3, warmup=2),
        description="the latency timing used instead of evaluation.latency",
    )


K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
K8S_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"


class StepResources(StrictModel):
    """Requests and limits of one pipeline step (Kubernetes quantities)."""

    cpu_request: str | None = Field(
        None,
        pattern=K8S_QUANTITY,
        description="CPU the step's container requests, e.g. 500m or 2; null: the default "
        "entry's, else none",
    )
    cpu_limit: str | None = Field(
        None,
        pattern=K8S_QUANTITY,
        description="CPU limit of the step's container; null: the default entry's, else none",
    )
    memory_request: str | None = Field(
        None,
        pattern=K8S_QUANTITY,
        description="memory the step's container requests, e.g. 1Gi; null: the default "
        "entry's, else none",
    )
    memory_limit: str | None = Field(
        None,
        pattern=K8S_QUANTITY,
        description="memory limit of the step's container; null: the default entry's, else none",
    )
    timeout_seconds: int | None = Field(
        None,
        ge=1,
        le=7 * 24 * 3600,
        description="seconds the step's pod may run before Kubernetes stops it (kfp-kubernetes "
        "set_timeout, at most a week); null: the default entry's, else no limit",
    )


class SecretRef(StrictModel):
    """A Kubernetes Secret by name, its keys exposed as environment variables (kfp-kubernetes
    ``use_secret_as_env``). Only the names are in the config and the compiled YAML."""

    name: str = Field(
        pattern=K8S_NAME,
        max_length=253,
        description="name of the Secret, in the namespace the pipeline's pods run in",
    )
    env: dict[str, str] = Field(
        min_length=1, description="secret key -> environment variable, e.g. password: X_PASS"
    )
    steps: list[str] | None = Field(None, description="steps that get it (default: all)")

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        import re

        for key, var in env.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
                raise ValueError(f"env var name {var!r} (for key {key!r}) is not a valid name")
        return env


class ClusterSpec(StrictModel):
    """Compile-time environment: what differs between clusters, so nobody edits compiled YAML."""

    image: str | None = Field(
        None, description="component image (default: the Conveyor image of this version)"
    )
    namespace: str = Field(
        "kubeflow",
        pattern=K8S_NAME,
        max_length=63,
        description="namespace the compiled rollout deploys the InferenceService in, and that "
        "of the Pipeline objects conveyor compile --format kubernetes writes",
    )
    mlflow_tracking_uri: str = Field(
        "", description="MLflow on the cluster (empty: MLFLOW_TRACKING_URI in the pod)"
    )
    data_uri: str = Field("", description="default batch URI (s3://, gs://, minio://)")
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="node labels every step's pod is scheduled by, e.g. kubernetes.io/arch: amd64",
    )
    resources: dict[str, StepResources] = Field(
        default_factory=dict,
        description="per step (validate_data, train, ...) or 'default' for every step",
    )
    secrets: list[SecretRef] = Field(
        default_factory=list,
        description="Kubernetes Secrets whose keys become environment variables of the steps",
    )
    prometheus_url: str = Field(
        "",
        description="Prometheus the compiled rollout's analyse_rollout queries between steps; "
        "empty: the canary steps are walked without analysis and promoted",
    )

    @field_validator("mlflow_tracking_uri", "data_uri", "prometheus_url")
    @classmethod
    def _no_credentials(cls, url: str, info: ValidationInfo) -> str:
        instead = {
            "mlflow_tracking_uri": "keep the URI without them, put the user and password in a "
            "Kubernetes Secret and list it in cluster.secrets as MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)",
            "data_uri": "give the bucket path only; the pod's storage credentials come from a "
            "Secret in cluster.secrets (e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
        }.get(str(info.field_name), "reach it in-cluster, or put credentials in cluster.secrets")
        refuse_credentials(f"cluster.{info.field_name}", url, instead)
        return url


class PipelineConfig(StrictModel):
    """What a team writes to template the training pipeline (examples/fraud/pipeline.yaml)."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="names the pipelines (<name>-training, <name>-continuous-training), the "
        "rollout's InferenceService and, unless registry.model_name is set, the model",
    )
    contract: str = Field(
        description="data contract YAML, relative to this file, that validate_data checks "
        "every batch against"
    )
    gate_policy: str | None = Field(
        None,
        description="gate policy YAML, relative to this file, that quality_gate applies; null: "
        "no rules, so every candidate is held (the gate fails closed)",
    )
    data: DataSpec = Field(DataSpec(), description="where the batch comes from")
    features: FeatureSpec = Field(description="the label, the key and the model inputs")
    training: TrainingSpec = Field(TrainingSpec(), description="the estimator train fits")
    evaluation: EvaluationSpec = Field(
        EvaluationSpec(), description="what evaluate measures on the holdout"
    )
    tracking: TrackingSpec = Field(
        TrackingSpec(), description="the MLflow store conveyor run and retrain log to"
    )
    registry: RegistrySpec = Field(
        RegistrySpec(), description="where approved models are registered"
    )
    retrain: RetrainPolicy = Field(
        RetrainPolicy(), description="what starts and what skips a training run"
    )
    smoke: SmokeProfile = Field(
        SmokeProfile(), description="the conveyor run --smoke profile, for pull requests"
    )
    team: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="the owning team, shown by conveyor validate-config (null: name); "
        "nothing else reads it",
    )
    rollout: str | None = Field(None, description="rollout plan YAML (continuous_training)")
    cluster: ClusterSpec = Field(
        ClusterSpec(), description="compile-time settings of the cluster the pipelines run on"
    )
    workdir: str = Field(
        ".conveyor",
        description="working folder of conveyor run and retrain (batches, pipeline outputs, "
        "logs, serving reports), relative to the current folder, not to this file",
    )
    base_dir: str = Field(".", exclude=True, description="folder the config file lives in")

    @property
    def model_name(self) -> str:
        return self.registry.model_name or self.name

    def smoke_profile(self) -> "PipelineConfig":
        """This config under its ``smoke`` profile (see SmokeProfile)."""
        cfg = self.model_copy(deep=True)
        cfg.data.sample.rows = min(cfg.data.sample.rows, self.smoke.rows)
        cfg.training = self.smoke.training
        cfg.evaluation.latency = self.smoke.latency
        cfg.registry.model_name = f"{self.model_name}-smoke"
        cfg.tracking.experiment = f"{self.tracking.experiment}-smoke"
        return cfg

    def resolve(self, path: str | None) -> str | None:
        """Paths in the config are relative to the config file's folder."""
        if path is None or os.path.isabs(path) or "://" in path:
            return path
        return str(Path(self.base_dir) / path)


def load_pipeline_config(path: str | os.PathLike[str]) -> PipelineConfig:
    """Load ``examples/<team>/pipeline.yaml``-style config."""
    cfg = load_model(PipelineConfig, path, "pipeline config")
    cfg.base_dir = str(Path(path).parent)
    return cfg
