"""Rebuild golden_v1.csv: canonical, obvious fraud / legit transactions (run once per version).

A row is kept when three quite different models trained on sample data all score it
confidently and correctly (fraud > 0.8, legit < 0.02): the example config's model on 50,000
rows, a small 40-iteration model on 4,000 rows (as in the tests), and a logistic regression. Any
reasonable candidate must reproduce these; a new version gets a new file name (golden_v2.csv).

    .venv/bin/python examples/fraud/make_golden.py [out.csv]
"""

import sys
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from conveyor import features, training
from conveyor.config import TrackingSpec, TrainingSpec, load_pipeline_config
from conveyor.model import load_model
from conveyor.sample import generate

HERE = Path(__file__).resolve().parent
AS_OF = datetime(2026, 11, 1)
POSITIVES, NEGATIVES = 12, 24
FRAUD_MIN, LEGIT_MAX = 0.8, 0.02  # every model's score must clear these


def _fit(df: pd.DataFrame, spec: TrainingSpec, tmp: Path, name: str) -> tuple:
    config = load_pipeline_config(HERE / "pipeline.yaml")
    prep = features.FeatureOutputs.under(tmp / name / "prep")
    features.prepare(df, config.features, prep)
    tracking = TrackingSpec(uri="memory://", experiment="golden")
    training.train(
        prep.train, prep.validation, prep.preprocessing, spec, tracking, tmp / name / "model"
    )
    return load_model(tmp / name / "model")


def main(out: Path) -> None:
    config = load_pipeline_config(HERE / "pipeline.yaml")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        big = generate(50_000, seed=7, as_of=AS_OF)
        small = generate(4000, seed=7, as_of=AS_OF)
        models = [
            _fit(big, config.training, tmp, "example"),
            _fit(small, TrainingSpec(params={"max_iter": 40}, seed=3), tmp, "small"),
            _fit(big, TrainingSpec(estimator="logistic_regression"), tmp, "logistic"),
        ]
        pool = generate(20_000, seed=2027, as_of=AS_OF, start_id=9_000_001)
        probas = np.vstack([training.predict_proba(m, pool, s) for m, s in models])
    label = pool["label"].to_numpy()
    fraud = (probas.min(axis=0) > FRAUD_MIN) & (label == 1)
    legit = (probas.max(axis=0) < LEGIT_MAX) & (label == 0)

    # spread over channels: take rows round-robin by channel, in id order
    def pick(mask: np.ndarray, n: int) -> pd.DataFrame:
        rows = pool[mask].copy()
        rows["_rank"] = rows.groupby("channel").cumcount()
        return rows.sort_values(["_rank", "id"]).head(n).drop(columns="_rank")

    golden = pd.concat([pick(fraud, POSITIVES), pick(legit, NEGATIVES)]).sort_values("id")
    if len(golden) < POSITIVES + NEGATIVES:
        raise SystemExit(f"only {int(fraud.sum())} fraud / {int(legit.sum())} legit candidates")
    spec = models[0][1]
    golden = golden[["id", *spec["input_columns"], "label"]].assign(
        expected_prediction=golden["label"]
    )
    golden.to_csv(out, index=False)
    print(f"wrote {out}: {len(golden)} rows ({int(golden['label'].sum())} fraud)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "golden_v1.csv")
