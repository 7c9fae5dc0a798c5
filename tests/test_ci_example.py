"""examples/ci/github-actions.yml: triggers, verbs, secrets and permissions of the CI example."""

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.cli import build_parser

pytestmark = pytest.mark.unit

WORKFLOW = Path(__file__).resolve().parents[1] / "examples" / "ci" / "github-actions.yml"
# The verbs the CI example is allowed to call (the CLI contract it was written against).
CI_VERBS = {"validate-config", "run", "gate", "compile", "submit", "schedule", "drift"}
COMMAND = re.compile(r"(?<![\w/.$-])conveyor[ \t]+(?P<args>[^\n;&|]*)")
VAR = re.compile(r"\$\{?(\w+)\}?")
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(doc, dict)
    return doc


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 (PyYAML) reads the bare key `on` as True; GitHub reads it as "on".
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict), "workflow has no `on:` mapping"
    return on


def _steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _scripts(workflow: dict[Any, Any]) -> list[str]:
    """Every run: script, backslash continuations joined into one line."""
    return [s["run"].replace("\\\n", " ") for s in _steps(workflow) if "run" in s]


def _env_value(value: object) -> str:
    """A sample value for an env entry: literals as written, an expression's `|| 'fallback'`,
    else a placeholder."""
    text = str(value)
    fallback = re.fullmatch(r"\$\{\{.*\|\|\s*'([^']*)'\s*\}\}", text)
    if fallback:
        return fallback.group(1)
    return "x" if text.startswith("${{") else text


def _expand(token: str, env: dict[str, str]) -> str:
    return VAR.sub(lambda m: env.get(m.group(1), "x"), token)


def _commands(workflow: dict[Any, Any]) -> list[list[str]]:
    """argv (after `conveyor`) of every conveyor invocation in a run: script, with $VARS
    replaced by sample values from the workflow, job and step env."""
    found: list[list[str]] = []
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            if "run" not in step:
                continue
            env = {"GITHUB_SHA": "0" * 40}
            for scope in (workflow, job, step):
                env.update({k: _env_value(v) for k, v in scope.get("env", {}).items()})
            script = step["run"].replace("\\\n", " ")
            for m in COMMAND.finditer(script):
                argv = shlex.split(m.group("args"), comments=True)
                found.append([_expand(a, env) for a in argv])
    return found


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """GitHub's filter globs: `*` and `?` stay inside one folder, `**` crosses folders, and a
    `**/` prefix (or `/**` suffix) also matches zero folders."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out, i = out + "(?:/.*)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def runs_for(patterns: list[str], changed: list[str]) -> bool:
    """Whether a `paths:` filter starts the workflow for these changed files: patterns apply
    in order, a `!pattern` excludes again what an earlier one included; one included file is
    enough."""

    def included(path: str) -> bool:
        keep = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            if _glob_regex(pattern.lstrip("!")).fullmatch(path):
                keep = not negated
        return keep

    return any(included(path) for path in changed)


def test_matcher_follows_github_glob_semantics() -> None:
    assert runs_for(["docs/**"], ["docs/a/b.md"])
    assert runs_for(["**/*.md"], ["README.md"])
    assert not runs_for(["src/*"], ["src/a/b.py"])
    assert runs_for(["src/**", "!**/*.md"], ["src/a.md", "src/b.py"])
    assert not runs_for(["src/**", "!**/*.md"], ["src/a.md"])
    assert runs_for(["!**/*.md", "**"], ["README.md"])  # order matters


@pytest.mark.parametrize("event", ["pull_request", "push"])
def test_readme_and_docs_changes_do_not_train(workflow: dict[Any, Any], event: str) -> None:
    paths = _triggers(workflow)[event]["paths"]
    for changed in (
        ["README.md"],
        ["docs/guide.md", "docs/img/line.png"],
        ["conveyor/README.md", "src/README.md"],
        ["examples/ci/README.md"],
    ):
        assert not runs_for(paths, changed), f"{event} runs for a docs-only change {changed}"
    for changed in (
        ["conveyor/pipeline.yaml"],
        ["conveyor/contract.yaml", "README.md"],
        ["conveyor/gate_policy.yaml"],
        ["src/fraud/features.py"],
        ["requirements.lock"],
        [".github/workflows/conveyor.yml"],
    ):
        assert runs_for(paths, changed), f"{event} does not run for {changed}"


def test_triggers(workflow: dict[Any, Any]) -> None:
    on = _triggers(workflow)
    assert on["push"]["branches"] == ["main"]
    assert on["push"]["paths"] == on["pull_request"]["paths"]
    assert {"cron": "0 2 * * 0"} in on["schedule"]
    assert "workflow_dispatch" in on
    group = workflow["concurrency"]["group"]
    assert "pull_request" in group and "kfp-submit" in group  # one submitter for main


def test_every_verb_is_a_cli_subcommand(workflow: dict[Any, Any]) -> None:
    used = {argv[0] for argv in _commands(workflow)}
    assert {"validate-config", "run", "compile", "submit"} <= used
    assert used <= CI_VERBS, f"verbs outside the CI contract: {sorted(used - CI_VERBS)}"
    parser = build_parser()
    choices = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = sorted(used - set(choices))
    assert not missing, f"the workflow calls conveyor {missing}, which the CLI does not know"


def test_every_command_line_parses(workflow: dict[Any, Any]) -> None:
    """Flags too: each invocation goes through conveyor.cli's parser (no file is opened)."""
    parser = build_parser()
    bad = []
    for argv in _commands(workflow):
        try:
            parser.parse_args(argv)
        except SystemExit:
            bad.append(f"conveyor {shlex.join(argv)}")
    assert not bad, "these lines do not parse (stderr names the reason):\n" + "\n".join(bad)


def test_smoke_run_and_submission(workflow: dict[Any, Any]) -> None:
    commands = [shlex.join(argv) for argv in _commands(workflow)]
    assert any(c.startswith("run ") and "--smoke" in c for c in commands)
    assert any(c.startswith("compile ") and "--pipeline continuous_training" in c for c in commands)
    check = workflow["jobs"]["check"]
    upload = [s for s in check["steps"] if "upload-artifact" in s.get("uses", "")]
    assert upload and upload[0]["if"] == "always()"  # a failed gate still leaves its reports
    for job in workflow["jobs"].values():
        setup = [s for s in job["steps"] if "setup-python" in s.get("uses", "")]
        assert setup[0]["with"]["python-version"] == "3.11"
        installs = [s["run"] for s in job["steps"] if "pip install" in s.get("run", "")]
        assert installs == ["pip install -r requirements.lock && pip install --no-deps ."]


def test_actions_pinned_by_commit_sha(workflow: dict[Any, Any]) -> None:
    for step in _steps(workflow):
        if "uses" in step:
            assert SHA_PIN.fullmatch(step["uses"]), f"{step['uses']} is not pinned to a SHA"


def test_permissions_are_read_only(workflow: dict[Any, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        assert isinstance(granted, dict), f"job {name}: permissions {granted!r}"
        assert set(granted.values()) <= {"read", "none"}, f"job {name} asks for {granted}"
    for step in _steps(workflow):
        if "actions/checkout" in step.get("uses", ""):
            assert step["with"]["persist-credentials"] is False


def test_no_secret_is_written_into_the_workflow(workflow: dict[Any, Any]) -> None:
    text = WORKFLOW.read_text()
    for leak in (
        r"gh[pousr]_[A-Za-z0-9]{20,}",
        r"github_pat_\w{20,}",
        r"eyJ[\w-]{10,}\.[\w-]{10,}",  # a JWT (service-account tokens are JWTs)
        r"AKIA[0-9A-Z]{16}",
        r"xox[abpr]-[\w-]{10,}",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
        r"://[^/\s:@]+:[^/\s@]+@",  # a URL with a password
    ):
        assert not re.search(leak, text), f"workflow matches secret pattern {leak}"
    secretish = re.compile(r"(?i)token|password|secret|api_?key")
    envs = [workflow.get("env", {})]
    envs += [job.get("env", {}) for job in workflow["jobs"].values()]
    envs += [step.get("env", {}) for step in _steps(workflow)]
    tokens = 0
    for env in envs:
        for key, value in env.items():
            if secretish.search(key):
                assert value == f"${{{{ secrets.{key} }}}}", f"{key} is not read from secrets"
                tokens += 1
    assert tokens >= 1  # KF_PIPELINES_TOKEN reaches the submit steps
    for script in _scripts(workflow):
        assert "KF_PIPELINES_TOKEN" not in script, "a run: script touches the token"
        assert "secrets." not in script and "${{" not in script, "expression inside run:"
        assert not re.search(r"(^|\s)set -[a-z]*x", script), "xtrace would echo the env"
