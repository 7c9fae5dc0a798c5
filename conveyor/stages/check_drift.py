"""check_drift: the batch against a reference profile (the champion's, by default)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor import context, drift
from conveyor.config import DriftPolicy
from conveyor.stages._parts import spec
from conveyor.tables import iter_frames

__all__ = ["Result", "run"]

PathLike = str | Path


@dataclass(frozen=True)
class Result:
    report: dict[str, Any]  # drift.json: per-feature PSI, band, KS, score PSI, decision

    @property
    def decision(self) -> str:
        """``drift``, ``stable`` or ``no_reference``."""
        return str(self.report["decision"])

    @property
    def summary(self) -> str:
        return str(self.report["summary"])

    @property
    def metrics(self) -> dict[str, float]:
        """``psi_<feature>``, ``score_psi`` and ``drifted_features`` for the KFP UI."""
        return drift.metric_values(self.report)


def run(
    batch: PathLike,
    policy: DriftPolicy | str,
    model_name: str,
    drift_json: PathLike,
    report_md: PathLike,
    report_html: PathLike,
    tracking_uri: str = "",
    reference_profile: PathLike | None = None,
) -> Result:
    """Against ``reference_profile`` when given (no score PSI then), else against the profile
    the champion's training run logged, the champion (sha256-checked) scoring the batch."""
    parsed = spec(DriftPolicy, policy, "policy")
    if reference_profile is not None:
        profile = drift.load_reference(reference_profile)
        features = parsed.features or list(profile.get("columns", {}))
        report = drift.check_drift_frames(profile, iter_frames(batch, features), parsed)
    else:
        from conveyor.registry import ModelRegistry

        registry = ModelRegistry(context.tracking_uri(tracking_uri))
        champion = registry.by_alias(model_name, "champion")
        report = drift.against_champion(str(batch), model_name, parsed, registry, champion)
    drift.write_report_files(report, drift_json, report_md, report_html)
    return Result(report)
