"""The rollout plan: how an approved version reaches traffic (YAML, pydantic-validated)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from conveyor.config import StrictModel, load_model
from conveyor.serving.inference import Resources
from conveyor.serving.smoke import SmokePolicy


class RolloutPlan(StrictModel):
    """Strategy and steps. ``canary`` walks ``steps``; ``bluegreen`` deploys at 0 %, smoke
    tests the new revision on its ``latest-`` tag URL, then switches 100 % in one step and
    keeps the old revision for an instant rollback; ``shadow`` mirrors ``shadow_percent`` % of
    requests to a second InferenceService whose answers nobody sees."""

    strategy: Literal["canary", "bluegreen", "shadow"] = "canary"
    steps: list[int] = Field(default_factory=lambda: [5, 25, 50, 100], min_length=1)
    shadow_percent: float = Field(10.0, gt=0, le=100)
    require_approval: bool = Field(
        False, description="refuse versions without a person's recorded approval"
    )
    smoke: SmokePolicy = SmokePolicy()
    resources: Resources = Resources()
    service_account: str = "conveyor-model"
    tag_routing: bool = True

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[int]) -> list[int]:
        for i, p in enumerate(steps):
            if not 1 <= p <= 100:
                raise ValueError(f"steps[{i}] = {p} is outside 1..100")
            if i and p <= steps[i - 1]:
                raise ValueError(f"steps must increase: steps[{i}] = {p} <= {steps[i - 1]}")
        if steps[-1] != 100:
            raise ValueError(f"the last step must be 100 (a finished rollout), got {steps[-1]}")
        return steps

    @model_validator(mode="after")
    def _bluegreen(self) -> "RolloutPlan":
        if self.strategy == "bluegreen":
            self.steps = [100]
        return self


def load_plan(path: str | Path) -> RolloutPlan:
    return load_model(RolloutPlan, path, "rollout plan")
