"""evaluate: score the candidate (and the champion) on the holdout, golden set and slices."""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.config import EvaluationSpec, TrackingSpec
from conveyor.evaluation import (
    MLFLOW_BATCH,
    evaluate,
    flat_metrics,
    golden_from_records,
    render_markdown,
)
from conveyor.stages._parts import spec
from conveyor.tables import write_json, write_text

__all__ = ["Result", "run"]

PathLike = str | Path


@dataclass(frozen=True)
class Result:
    evaluation: dict[str, Any]  # the document written to evaluation.json

    @property
    def metrics(self) -> dict[str, float]:
        """The candidate's flat, finite metrics (what the KFP UI and MLflow receive)."""
        return flat_metrics(self.evaluation)

    @property
    def model_sha256(self) -> str:
        return str(self.evaluation["model"]["sha256"])

    @property
    def holdout_rows(self) -> int:
        return int(self.evaluation["holdout"]["rows"])

    @property
    def champion_sha256(self) -> str:
        return str(((self.evaluation["champion"] or {}).get("model") or {}).get("sha256", ""))


def run(
    model_dir: PathLike,
    holdout: PathLike,
    evaluation: EvaluationSpec | str,
    evaluation_json: PathLike,
    report_md: PathLike,
    tracking: TrackingSpec | None = None,
    run_id: str = "",
    *,
    golden_path: PathLike | None = None,
    golden_records: str = "",
    golden_version: str = "",
    champion_dir: PathLike | None = None,
    champion_name: str = "",
) -> Result:
    """evaluation.json + Markdown, attached to the training run ``run_id`` if given.

    The golden set is a file (``golden_path``) or JSON records (``golden_records``, as the
    component receives them). With ``champion_name`` (and no ``champion_dir``),
    ``champion_name@champion`` is fetched from the registry (sha256 verified) and scored on
    the same holdout; none yet means none. The run receives ``test_<flat metric>`` for the
    candidate and ``champion_test_<metric>`` for the champion's headline metrics.
    """
    parsed = spec(EvaluationSpec, evaluation, "evaluation")
    with tempfile.TemporaryDirectory() as tmp:
        if golden_path is None and golden_records:
            golden_path = golden_from_records(golden_records, golden_version, tmp)
        if champion_dir is None and champion_name and tracking is not None:
            from conveyor.registry import CHAMPION, ModelRegistry

            champion_dir = ModelRegistry(tracking.uri).fetch(
                champion_name, CHAMPION, Path(tmp) / "champion"
            )
        result = evaluate(
            model_dir, holdout, parsed, str(golden_path) if golden_path else None, champion_dir
        )
    write_json(result, evaluation_json)
    markdown = render_markdown(result)
    write_text(markdown, report_md)
    if run_id and tracking is not None:
        _track(result, markdown, tracking, run_id)
    return Result(result)


def _track(result: dict[str, Any], markdown: str, tracking: TrackingSpec, run_id: str) -> None:
    from conveyor.registry import tracker_for

    tracker = tracker_for(tracking.uri, tracking.experiment, tracking.artifact_root)
    metrics = {f"test_{k}": v for k, v in flat_metrics(result).items()}
    tags = {"conveyor.evaluated": "true"}
    if result["champion"] is not None:
        champ = result["champion"]
        metrics.update(
            {f"champion_test_{k}": float(v) for k, v in champ["metrics"].items() if v is not None}
        )
        tags["conveyor.champion.sha256"] = champ["model"]["sha256"]
    items = sorted(metrics.items())
    for start in range(0, max(len(items), 1), MLFLOW_BATCH):
        chunk = dict(items[start : start + MLFLOW_BATCH])
        tracker.log(run_id, metrics=chunk, tags=tags if start == 0 else None)
    with tempfile.TemporaryDirectory() as tmp:
        write_json(result, Path(tmp) / "evaluation.json")
        write_text(markdown, Path(tmp) / "evaluation.md")
        tracker.log_artifacts(run_id, tmp, "evaluation")
