"""check_trigger: retrain or skip this batch (unchanged inputs, new data, drift, age)."""

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conveyor import context, drift, trigger
from conveyor.config import RetrainPolicy
from conveyor.stages._parts import spec
from conveyor.tables import resolve_table, sha256_file, write_text

__all__ = ["KeyInputs", "Reports", "Result", "run"]

PathLike = str | Path


@dataclass(frozen=True)
class KeyInputs:
    """The config texts the training key fingerprints besides the data and the code."""

    contract: str
    features: str
    training: str
    evaluation: str
    policy: str  # the gate policy


@dataclass(frozen=True)
class Result:
    decision: str  # retrain | skip
    reasons: list[str]
    skipped_because: str
    training_key: str
    data_sha256: str
    drift: dict[str, Any] | None = None  # the drift report, or why it did not run
    unchanged: dict[str, Any] | None = field(default=None)  # the run or version matched

    @property
    def drift_metrics(self) -> dict[str, float]:
        """The drift check's values for the KFP UI (none when it did not run)."""
        return drift.metric_values(self.drift) if self.drift else {}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(
    batch: PathLike,
    *,
    model_name: str,
    policy: RetrainPolicy | str,
    key_inputs: KeyInputs,
    tracking_uri: str = "",
    git_commit: str = "",
    drift_decision: str = "",
    force: bool = False,
    check_drift: bool = False,
    reports: "Reports | None" = None,
) -> Result:
    """Fingerprint the batch, look for an unchanged earlier run, apply the policy.

    With ``check_drift`` and no ``drift_decision`` from the caller, the drift check against
    the champion runs here, and only when its answer can matter: not for an unchanged re-run,
    a forced one, or a policy without ``on_drift``. ``drift`` is then its report (or why it
    did not run); without ``check_drift`` it is None. ``reports`` names the files to write.
    """
    from conveyor.registry import ModelRegistry

    parsed = spec(RetrainPolicy, policy, "policy")
    data_sha256 = sha256_file(resolve_table(batch))
    key = trigger.training_key(data_sha256, git_commit=git_commit, **asdict(key_inputs))
    registry = ModelRegistry(context.tracking_uri(tracking_uri))
    champion = registry.by_alias(model_name, "champion")
    unchanged = (
        trigger.find_unchanged(registry, model_name, key) if parsed.skip_if_unchanged else None
    )
    drift_report: dict[str, Any] | None = None
    if check_drift:
        if drift_decision:
            drift_report = drift.not_measured(
                drift_decision, f"given by the caller: {drift_decision}"
            )
        elif force or unchanged is not None or not parsed.on_drift or champion is None:
            why = (
                "forced" if force else "unchanged inputs" if unchanged is not None
                else "on_drift is off" if not parsed.on_drift else "no champion"
            )  # fmt: skip
            drift_report = drift.not_measured("not_checked", f"not checked: {why}")
        else:
            drift_report = drift.against_champion(
                str(batch), model_name, parsed.drift, registry, champion
            )
            drift_decision = str(drift_report["decision"])
    decided = trigger.decide(
        parsed,
        data_sha256=data_sha256,
        champion=champion,
        unchanged=unchanged,
        model_name=model_name,
        drift_decision=drift_decision,
        force=force,
    )
    result = Result(
        decided["decision"], list(decided["reasons"]), decided["skipped_because"], key,
        data_sha256, drift_report, decided.get("unchanged"),
    )  # fmt: skip
    if reports is not None:
        reports.write(result)
    return result


@dataclass(frozen=True)
class Reports:
    """Where the stage writes: its Markdown, the drift check's three files, the key."""

    markdown: PathLike
    drift_json: PathLike
    drift_md: PathLike
    drift_html: PathLike
    training_key: PathLike

    def write(self, result: Result) -> None:
        drift_report = result.drift or drift.not_measured("not_checked", "not checked")
        drift.write_report_files(drift_report, self.drift_json, self.drift_md, self.drift_html)
        write_text(
            trigger.render_markdown(result.to_dict(), drift_report["summary"]), self.markdown
        )
        write_text(result.training_key, self.training_key)
