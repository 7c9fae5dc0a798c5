"""One module per pipeline stage, named exactly like its component in ``components/<stage>/``.

Each module has ``run(...) -> Result``: typed inputs (config as YAML/JSON text, as a KFP
component receives it, or the parsed pydantic model), a frozen dataclass out. ``run`` parses
the config, does the work through the engine below it, writes the stage's reports and logs to
the tracker. Components, pipelines and the CLI call ``run`` and nothing deeper, so a stage is
found, changed and tested by its one name.
"""

__all__ = ["STAGES"]


STAGES = (
    "validate_data",
    "prepare_features",
    "train",
    "evaluate",
    "quality_gate",
    "register_model",
    "check_drift",
    "check_trigger",
    "deploy_canary",
    "deploy_shadow",
    "smoke_test",
    "analyse_rollout",
    "promote",
    "rollback",
    "finalize_rollout",
)
