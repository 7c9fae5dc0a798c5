"""prepare_features: a deterministic split and preprocessing fitted on the training rows only.

The split is by key hash (stable when the table grows: a row keeps its side) or by seeded
shuffle, stratified on the label in both cases. The fitted preprocessor, the feature spec and a
per-feature profile (bin edges for later drift checks) are written next to the splits.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from conveyor import distributions, progress
from conveyor.config import FeatureSpec
from conveyor.errors import BadInputError
from conveyor.tables import write_json, write_table

if TYPE_CHECKING:
    from conveyor.contracts import Contract

__all__ = [
    "SPLITS",
    "FeatureOutputs",
    "PreparedFeatures",
    "binary_label",
    "check_columns",
    "feature_frame",
    "prepare",
    "served_rules",
    "split_positions",
]


# A fixed key makes pandas' row hash reproducible across processes and machines.
HASH_KEY = "conveyor-split-1"
SPLITS = ("train", "validation", "holdout")
POSITION_NOTE = (
    "features.key is not set: each row is identified by its position in the table, so a row "
    "keeps its split only while new rows are appended at the end; name a column unique per "
    "row in features.key to make the split stable under any change"
)


def check_columns(df: pd.DataFrame, spec: FeatureSpec) -> None:
    """Fail early, naming every configured column the table lacks."""
    needed = [*spec.key_columns, spec.label, *spec.numeric, *spec.categorical, *spec.passthrough]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise BadInputError(
            f"features: configured column(s) {missing} not in the table "
            f"(has {len(df.columns)} columns: {', '.join(map(str, df.columns[:25]))})"
        )
    values = df[spec.label].dropna().unique()
    labels = sorted((v.item() if hasattr(v, "item") else v for v in values), key=str)
    if spec.positive is not None:
        if len(labels) != 2 or str(spec.positive) not in map(str, labels):
            raise BadInputError(
                f"features.positive {spec.positive!r}: the label {spec.label!r} must hold exactly "
                f"two values, one of them the positive class; found {labels[:10]}"
            )
        if df[spec.label].isna().any():
            raise BadInputError(
                f"features.label {spec.label!r}: {int(df[spec.label].isna().sum())} row(s) have "
                "no label; a row without its class cannot train or score"
            )
        return
    if not set(labels) <= {0, 1} or len(labels) < 2:
        hint = (
            f"; to use these values, set features.positive to the positive one (e.g. "
            f"{labels[-1]!r})"
            if len(labels) == 2
            else ""
        )
        raise BadInputError(
            f"features.label {spec.label!r}: expected both classes 0 and 1, found "
            f"{labels[:10]}{hint}"
        )


def binary_label(df: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The table with its label as 0/1: ``positive`` -> 1, the other value -> 0 (compared as
    text, so YAML's 1 and a CSV's "1" agree). Unchanged when the label is already 0/1."""
    if spec.positive is None:
        return df
    hit = df[spec.label].astype(str) == str(spec.positive)
    return df.assign(**{spec.label: hit.astype(np.int64)})


def split_positions(df: pd.DataFrame, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Row positions of each split, stratified on the label, sorted for stable output order."""
    s = spec.split
    if s.method == "hash":
        # without a key, the row's position stands in for it (see ``POSITION_NOTE``)
        ids = df[spec.key].astype(str) if spec.key else pd.Series(np.arange(len(df)).astype(str))
        order_key = pd.util.hash_pandas_object(
            ids, index=False, hash_key=HASH_KEY.ljust(16)[:16]
        ).to_numpy()
    else:
        order_key = np.random.default_rng(s.seed).permutation(len(df)).astype(np.uint64)
    out: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    labels = df[spec.label].to_numpy()
    for value in np.unique(labels):
        pos = np.flatnonzero(labels == value)
        pos = pos[np.argsort(order_key[pos], kind="stable")]
        n_train = round(len(pos) * s.train)
        n_val = round(len(pos) * s.validation)
        out["train"].append(pos[:n_train])
        out["validation"].append(pos[n_train : n_train + n_val])
        out["holdout"].append(pos[n_train + n_val :])
    return {name: np.sort(np.concatenate(parts)) for name, parts in out.items()}


def build_preprocessor(spec: FeatureSpec) -> ColumnTransformer:
    """Impute + scale numerics, impute + one-hot categoricals (unknown categories ignored)."""
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy=spec.impute_numeric))]
    if spec.scale:
        numeric_steps.append(("scale", StandardScaler()))
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
            (
                "onehot",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist"
                    if spec.min_category_frequency > 1
                    else "ignore",
                    min_frequency=spec.min_category_frequency
                    if spec.min_category_frequency > 1
                    else None,
                    sparse_output=False,
                    dtype=np.float64,
                ),
            ),
        ]
    )
    transformers: list[tuple[str, Any, list[str]]] = []
    if spec.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), list(spec.numeric)))
    if spec.categorical:
        transformers.append(("categorical", categorical, list(spec.categorical)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)


def feature_frame(df: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Model inputs with stable dtypes: float numerics, object categoricals, NaN for missing.

    NaN (not None) marks a missing category: SimpleImputer's NaN mask does not see None.
    """
    out = pd.DataFrame(index=df.index)
    for col in numeric:
        out[col] = pd.to_numeric(df[col], errors="coerce").astype(np.float64)
    for col in categorical:
        values = df[col].astype(object)
        out[col] = values.mask(values.isna(), np.nan)
    return out


@dataclass
class PreparedFeatures:
    rows: dict[str, int]
    positive_rate: dict[str, float]
    n_features_out: int
    feature_spec: dict[str, Any]


@dataclass
class FeatureOutputs:
    """Where prepare writes: one folder per split (``data.parquet`` inside), one folder for the
    fitted preprocessing (``preprocessor.joblib`` + ``feature_spec.json``), one profile file."""

    train: Path
    validation: Path
    holdout: Path
    preprocessing: Path
    profile: Path

    @classmethod
    def under(cls, root: str | Path) -> "FeatureOutputs":
        r = Path(root)
        return cls(r / "train", r / "validation", r / "holdout", r / "preprocessing",
                   r / "feature_profile.json")  # fmt: skip


def served_rules(spec: FeatureSpec, contract: "Contract | None") -> dict[str, Any]:
    """What the data contract says of each model input, for the model server: a category
    outside ``allowed`` or a null where the contract allows none never reached training, so
    the server refuses it (400) instead of scoring it. Without a contract: nothing refused."""
    rules = {c: r for c in (*spec.numeric, *spec.categorical)
             if contract is not None and (r := contract.columns.get(c)) is not None}  # fmt: skip
    return {
        "allowed": {
            c: [str(v) for v in r.allowed]
            for c, r in rules.items()
            if c in spec.categorical and r.allowed is not None
        },
        "not_null": [c for c, r in rules.items() if not r.nullable],
    }


def prepare(
    df: pd.DataFrame,
    spec: FeatureSpec,
    outputs: FeatureOutputs,
    contract: "Contract | None" = None,
) -> PreparedFeatures:
    """Split ``df``, fit preprocessing on train only, and write every output."""
    check_columns(df, spec)
    df = binary_label(df, spec)
    if spec.key is None and spec.split.method == "hash":
        progress.note(POSITION_NOTE)
    kept = [*spec.key_columns, *spec.numeric, *spec.categorical, *spec.passthrough]
    keep = list(dict.fromkeys(kept))
    positions = split_positions(df, spec)
    rows: dict[str, int] = {}
    rate: dict[str, float] = {}
    frames: dict[str, pd.DataFrame] = {}
    for name, pos in positions.items():
        part = df.iloc[pos][[*keep, spec.label]].reset_index(drop=True)
        if part[spec.label].nunique() < 2:
            raise BadInputError(
                f"split {name!r} has {len(part)} rows and a single class; "
                "need more rows or a larger split fraction"
            )
        frames[name] = part
        rows[name] = len(part)
        rate[name] = round(float(part[spec.label].mean()), 6)

    preprocessor = build_preprocessor(spec)
    # Fitted on training rows only: validation and holdout never inform imputation or scaling.
    preprocessor.fit(feature_frame(frames["train"], spec.numeric, spec.categorical))
    names_out = [str(n) for n in preprocessor.get_feature_names_out()]
    onehot = (
        preprocessor.named_transformers_["categorical"].named_steps["onehot"].categories_
        if spec.categorical
        else []
    )
    feature_spec = {
        "label": spec.label,
        "positive": spec.positive,  # the raw label value scored as 1 (None: already 0/1)
        "key": spec.key,
        "numeric": list(spec.numeric),
        "categorical": list(spec.categorical),
        "passthrough": list(spec.passthrough),
        "input_columns": [*spec.numeric, *spec.categorical],
        "features_out": names_out,
        "categories": {
            col: [str(c) for c in cats] for col, cats in zip(spec.categorical, onehot, strict=True)
        },
        "split": spec.split.model_dump(),
        **served_rules(spec, contract),
        "rows": rows,
        "positive_rate": rate,
    }
    profile = distributions.profile_frame(
        frames["train"], [*spec.numeric, *spec.categorical], bins=spec.profile_bins
    )
    profile["source"] = "train split"

    for name in SPLITS:
        write_table(frames[name], Path(getattr(outputs, name)) / "data.parquet")
    outputs.preprocessing.mkdir(parents=True, exist_ok=True)
    joblib.dump(preprocessor, outputs.preprocessing / "preprocessor.joblib")
    write_json(feature_spec, outputs.preprocessing / "feature_spec.json")
    write_json(profile, outputs.profile)
    return PreparedFeatures(rows, rate, len(names_out), feature_spec)
