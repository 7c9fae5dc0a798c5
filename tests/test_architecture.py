"""The import rules of ARCHITECTURE.md, checked on the source (an AST walk, nothing imported):
every module sits on a floor and imports only from its own floor or lower ones, no import
circle, MLflow only in the registry, KFP never in the engine, the local stand-ins reached only
from the entry points. A new module fails here until it is given a floor."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "conveyor"

# Floor of every module (ARCHITECTURE.md): a module may import its own floor and lower ones.
FLOORS: dict[int, tuple[str, ...]] = {
    0: (  # foundations: no Conveyor imports but each other
        "conveyor", "conveyor.errors", "conveyor.lifecycle", "conveyor.sample",
        "conveyor.distributions", "conveyor.progress",
        "conveyor.serving", "conveyor.serving.client", "conveyor.rollout",
        "conveyor.rollout.kserve_status",
    ),
    1: (  # formats and environment
        "conveyor.config", "conveyor.tables", "conveyor.context", "conveyor.containers",
        "conveyor.httpd",
    ),
    2: (  # records: the registry is the one MLflow user
        "conveyor.registry", "conveyor.golden", "conveyor.rollout.metrics",
        "conveyor.rollout.notify",
    ),
    3: ("conveyor.contracts", "conveyor.features", "conveyor.model"),  # data and the model
    4: (  # judgement: the training-side stages' logic
        "conveyor.training", "conveyor.evaluation", "conveyor.gate", "conveyor.drift",
        "conveyor.trigger",
    ),
    5: (  # serving a model
        "conveyor.serving.isvc", "conveyor.serving.smoke", "conveyor.serving.server",
        "conveyor.serving.replay", "conveyor.serving.runtime", "conveyor.serving.payload",
    ),
    6: (  # the cluster-facing rollout
        "conveyor.rollout.cluster", "conveyor.rollout.plan", "conveyor.rollout.prometheus",
        "conveyor.rollout.actions", "conveyor.rollout.analysis", "conveyor.rollout.rbac",
        "conveyor.rollout.scorelog",
    ),
    7: (  # the stages: one module per component, named like it
        "conveyor.stages", "conveyor.stages._parts", "conveyor.stages._rollout",
        *(f"conveyor.stages.{p.parent.name}" for p in (ROOT / "components").glob("*/component.py")),
    ),
    8: (  # local stand-ins for cluster parts, scaffolding, the config reference
        "conveyor.local", "conveyor.local.model_server", "conveyor.local.prometheus",
        "conveyor.local.alertmanager", "conveyor.local.router", "conveyor.local.sim",
        "conveyor.local.release", "conveyor.local.run", "conveyor.scaffold",
        "conveyor.reference",
    ),
    9: (  # entry points: the command lines
        "conveyor.cli", "conveyor.cli.__main__", "conveyor.cli._table", "conveyor.cli.commands",
        "conveyor.cli.submit", "conveyor.cli.kubectl",
    ),
}  # fmt: skip
FLOOR = {module: floor for floor, modules in FLOORS.items() for module in modules}
ENTRY_POINTS = FLOORS[9]
# Only these modules may import a third-party package of this list.
ONLY = {"mlflow": ("conveyor.registry",), "kfp": ()}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every module named by an import in ``path`` (module level or inside a function)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module, node.lineno
            for alias in node.names:  # `from conveyor import distributions` names a module
                if f"{node.module}.{alias.name}" in MODULES:
                    yield f"{node.module}.{alias.name}", node.lineno


def _edges() -> dict[str, set[str]]:
    return {
        name: {target for target, _ in _imports(path) if target in MODULES and target != name}
        for name, path in MODULES.items()
    }


def test_every_module_has_a_floor() -> None:
    missing = sorted(set(MODULES) - set(FLOOR))
    assert not missing, f"give {missing} a floor in ARCHITECTURE.md and FLOORS here"
    gone = sorted(set(FLOOR) - set(MODULES))
    assert not gone, f"{gone} no longer exist: remove them from FLOORS and ARCHITECTURE.md"


def test_imports_go_down_the_floors() -> None:
    upward = [
        f"{name} (floor {FLOOR[name]}) imports {target} (floor {FLOOR[target]})"
        for name, targets in _edges().items()
        for target in sorted(targets)
        if name in FLOOR and target in FLOOR and FLOOR[target] > FLOOR[name]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circle() -> None:
    edges = _edges()
    circles: list[list[str]] = []

    def visit(node: str, path: list[str], seen: set[str]) -> None:
        for nxt in sorted(edges[node]):
            if nxt == path[0] and len(path) > 1:
                circles.append([*path, nxt])
            elif nxt not in seen and nxt > path[0]:  # each circle once, from its least module
                seen.add(nxt)
                visit(nxt, [*path, nxt], seen)
                seen.discard(nxt)

    for start in sorted(edges):
        visit(start, [start], {start})
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("package", sorted(ONLY))
def test_third_party_boundaries(package: str) -> None:
    users = sorted(
        f"{name}:{line}"
        for name, path in MODULES.items()
        if name not in ONLY[package]
        for target, line in _imports(path)
        if target == package or target.startswith(f"{package}.")
    )
    assert not users, f"{package} is used outside {ONLY[package] or 'the engine'}: {users}"


def test_local_stand_ins_are_reached_only_from_entry_points() -> None:
    leaks = sorted(
        f"{name} imports {target}"
        for name, targets in _edges().items()
        if not name.startswith("conveyor.local") and name not in ENTRY_POINTS
        for target in targets
        if target.startswith("conveyor.local")
    )
    assert not leaks, "\n".join(leaks)


def test_no_module_imports_an_entry_point() -> None:
    callers = sorted(
        f"{name} imports {target}"
        for name, targets in _edges().items()
        if name not in ENTRY_POINTS
        for target in targets
        if target in ENTRY_POINTS
    )
    assert not callers, "\n".join(callers)


def test_the_rules_see_a_real_violation(tmp_path: Path) -> None:
    """The walk must find imports in functions too, or every rule above passes vacuously."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from conveyor.cli import main\n    import mlflow.sklearn\n")
    names = {target for target, _ in _imports(module)}
    assert {"conveyor.cli", "mlflow.sklearn"} <= names


COMPONENTS = sorted(p.parent.name for p in (ROOT / "components").glob("*/component.py"))


def test_every_component_has_its_stage_by_the_same_name() -> None:
    from conveyor.stages import STAGES

    assert sorted(STAGES) == COMPONENTS
    missing = [s for s in COMPONENTS if not (PACKAGE / "stages" / f"{s}.py").is_file()]
    assert not missing, f"no conveyor/stages/<name>.py for {missing}"


@pytest.mark.parametrize("stage", COMPONENTS)
def test_a_stage_runs_to_a_typed_result(stage: str) -> None:
    """``run`` returns the module's ``Result``, a dataclass (never a bare dict)."""
    import dataclasses
    import importlib
    import typing

    module = importlib.import_module(f"conveyor.stages.{stage}")
    assert typing.get_type_hints(module.run)["return"] is module.Result
    assert dataclasses.is_dataclass(module.Result), f"{stage}.Result is not a dataclass"
    assert {"Result", "run"} <= set(module.__all__)


@pytest.mark.parametrize("stage", COMPONENTS)
def test_a_component_calls_its_stage_and_nothing_deeper(stage: str) -> None:
    allowed = {"conveyor", f"conveyor.stages.{stage}", "conveyor.stages._parts"}
    path = ROOT / "components" / stage / "component.py"
    deeper = sorted(
        f"{target}:{line}"
        for target, line in _imports(path)
        if target.startswith("conveyor") and target not in allowed
    )
    assert not deeper, f"components/{stage} reaches past conveyor.stages.{stage}: {deeper}"


@pytest.mark.parametrize("module", sorted(m for m in FLOORS[9]))
def test_the_command_lines_hold_no_domain_logic(module: str) -> None:
    """A command line parses, calls a stage or one engine function, and prints: it works on
    no table, model or registry itself."""
    data = ("pandas", "numpy", "sklearn", "mlflow", "kfp", "pyarrow")
    used = sorted(
        f"{target}:{line}"
        for target, line in _imports(MODULES[module])
        if target.split(".")[0] in data
    )
    assert not used, f"{module} does domain work itself: {used}"


def _all(path: Path) -> list[str] | None:
    """The module's literal ``__all__``, or None."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    return None


def test_every_module_names_its_public_surface() -> None:
    missing = sorted(name for name, path in MODULES.items() if _all(path) is None)
    assert not missing, f"no __all__ in {missing}"


def test_the_code_imports_only_public_names() -> None:
    """Engine, components and pipelines import from a module only what its ``__all__`` names
    (tests may reach further); a name needed elsewhere is added to ``__all__`` on purpose."""
    surfaces = {name: set(_all(path) or []) for name, path in MODULES.items()}
    sources = [*PACKAGE.rglob("*.py"), *(ROOT / "components").rglob("*.py"),
               *(ROOT / "pipelines").rglob("*.py")]  # fmt: skip
    reach = sorted(
        f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name} from {node.module}"
        for path in sources
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module in surfaces and not node.level
        for alias in node.names
        if f"{node.module}.{alias.name}" not in MODULES and alias.name not in surfaces[node.module]
    )
    assert not reach, "\n".join(reach)
