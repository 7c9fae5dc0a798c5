"""The local end of ``conveyor run``: serve the new version, smoke test it, and replay the
holdout against the champion, the way a cluster rollout would before any traffic moves."""

import contextlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from conveyor import progress
from conveyor.local.model_server import LocalServer
from conveyor.model import SPEC_FILE
from conveyor.registry import CHAMPION, ModelRegistry
from conveyor.serving import replay, smoke
from conveyor.tables import write_json, write_text

__all__ = ["serve_and_check"]


REPLAY_ROWS = 5000


def serve_and_check(
    registry: ModelRegistry,
    version: dict[str, Any],
    served_name: str,
    holdout: pd.DataFrame,
    out_dir: str | Path,
    *,
    threshold: float = 0.5,
    policy: smoke.SmokePolicy | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """Serve ``version`` (checksum-verified) on 127.0.0.1, smoke test it and, when another
    version is champion, replay the holdout to both. Every server is stopped on return."""
    out = Path(out_dir)
    name, number = version["name"], version["version"]
    candidate_dir = registry.download(version, out / f"v{number}")
    spec = json.loads((candidate_dir / SPEC_FILE).read_text(encoding="utf-8"))
    lines: list[str] = []
    reports: dict[str, Any] = {}
    champion = registry.by_alias(name, CHAMPION)
    if champion is not None and champion["version"] == number:
        champion = None

    def server_for(row: dict[str, Any], folder: Path) -> LocalServer:
        return LocalServer(folder, served_name, row["version"], log=out / f"v{row['version']}.log")

    server = server_for(version, candidate_dir)
    servers = [server]
    if champion is not None:
        servers.append(
            server_for(champion, registry.download(champion, out / f"v{champion['version']}"))
        )
    both = f" and champion v{champion['version']}" if champion else ""
    progress.step(f"starting kserve.ModelServer for v{number}{both}")
    with contextlib.ExitStack() as running:
        # launched together: the champion's server loads while the candidate's does, instead
        # of after the smoke test (one server start saved per run); every one is stopped
        for s in servers:
            running.callback(s.stop)
            s.launch()
        for s in servers:
            s.wait_ready()
        progress.step(f"smoke test of v{number}")
        report = smoke.smoke_test(
            server.url, served_name, holdout, spec, expected_version=number, policy=policy
        )
        reports["smoke"] = report
        write_json(report, out / f"v{number}" / "smoke.json")
        md = write_text(smoke.render_markdown(report), out / f"v{number}" / "smoke.md")
        lat = report["latency_ms"]["v1"]
        verdict = "passed" if report["passed"] else f"FAILED ({smoke.failed_checks(report)})"
        lines.append(
            f"serving: {name} v{number} served by kserve.ModelServer at {server.url}; smoke test "
            f"{verdict}; single-row V1 p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms"
        )
        lines.append(f"smoke report      : {md}")
        if champion is None:
            lines.append("shadow replay     : skipped (no other champion to compare with)")
            return lines, reports
        rows = holdout.head(REPLAY_ROWS)
        result = replay.shadow_replay(
            (servers[1].url, served_name), (server.url, served_name), rows, spec,
            threshold=threshold,
        )  # fmt: skip
    reports["replay"] = result
    write_json(result, out / f"v{number}" / "replay.json")
    md = write_text(replay.render_markdown(result), out / f"v{number}" / "replay.md")
    lat = result["latency_ms"]
    lines.append(
        f"shadow replay     : v{number} vs champion v{champion['version']} on {result['rows']} "
        f"holdout rows: agreement {result['agreement']:.2%}, score PSI {result['score_psi']:.4f} "
        f"({result['score_psi_band']}), p99 {lat['candidate']['p99']:.1f} ms vs "
        f"{lat['champion']['p99']:.1f} ms"
    )
    lines.append(f"replay report     : {md}")
    return lines, reports
