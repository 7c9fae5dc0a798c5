"""Benchmark: what an unchanged re-run costs next to the first run (skip-if-unchanged).

Why this exists: a scheduled retraining loop mostly finds nothing new. Conveyor fingerprints
the batch, the code and the config (seeds included) into a training key; when a registered
version (or finished training run) has the same key, training is skipped with a message
naming it. The issue's goal: an unchanged re-run costs under 5 % of the first run's time.

Two paths, each in a fresh folder with its own MLflow sqlite store, as subprocesses with the
project's own CLI (wall time, the same way a user or a CronJob pays it):

1. ``conveyor run`` (what ``make run`` calls; the first run trains, gates, registers, serves
   and smoke tests) then the same command again: the key is checked in-process before the
   kfp.local pipeline starts.
2. ``conveyor retrain`` (the continuous_training pipeline on kfp.local): the first run on a
   batch trains; the same batch again runs import + check_drift + check_trigger and stops.

The re-runs are repeated ``--repeats`` times (median reported); the first runs once each.
Results are printed and written to bench/RESULTS.md under their own heading.

Run: ``.venv/bin/python bench/ct_cache.py`` (``--rows 50000`` default, as ``make run``).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section

ROOT = Path(__file__).resolve().parent.parent
CONVEYOR = str(Path(sys.executable).parent / "conveyor")
HEADING = "## Skip-if-unchanged (bench/ct_cache.py)"
GOAL = 0.05


def _run(args: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(
        [CONVEYOR, *args], cwd=cwd, capture_output=True, text=True, env=os.environ.copy()
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"conveyor {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def _workspace(parent: Path, name: str, rows: int) -> Path:
    folder = parent / name
    shutil.copytree(ROOT / "examples" / "fraud", folder / "fraud")
    config = folder / "fraud" / "pipeline.yaml"
    config.write_text(config.read_text().replace("{rows: 50000,", f"{{rows: {rows},"))
    return folder


def bench_run(parent: Path, rows: int, repeats: int) -> dict:
    folder = _workspace(parent, "run", rows)
    first, out = _run(["run", "--config", "fraud/pipeline.yaml"], folder)
    assert "registry: fraud v1" in out, out[-2000:]
    again = []
    for _ in range(repeats):
        seconds, out = _run(["run", "--config", "fraud/pipeline.yaml"], folder)
        assert "skipped: unchanged inputs" in out, out[-2000:]
        again.append(seconds)
    return {"first": first, "rerun": statistics.median(again), "reruns": again, "message": out}


def bench_retrain(parent: Path, rows: int, repeats: int) -> dict:
    folder = _workspace(parent, "retrain", rows)
    _run(["sample", "--rows", str(rows), "--out", "batch.parquet", "--seed", "31"], folder)
    args = ["retrain", "--config", "fraud/pipeline.yaml", "--data", "batch.parquet"]
    first, out = _run(args, folder)
    assert "Retrain trigger: RETRAIN" in out, out[-2000:]
    again = []
    for _ in range(repeats):
        seconds, out = _run(args, folder)
        assert "Retrain trigger: SKIP" in out and "unchanged inputs" in out, out[-2000:]
        again.append(seconds)
    skip_line = next(line for line in out.splitlines() if "unchanged inputs" in line)
    return {"first": first, "rerun": statistics.median(again), "reruns": again,
            "message": skip_line}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000, help="sample rows (default 50000)")
    parser.add_argument("--repeats", type=int, default=3, help="unchanged re-runs per path")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-ct-bench-") as tmp:
        results = {
            "conveyor run": bench_run(Path(tmp), args.rows, args.repeats),
            "conveyor retrain (continuous_training on kfp.local)": bench_retrain(
                Path(tmp), args.rows, args.repeats
            ),
        }
    lines = [
        HEADING,
        "",
        f"{args.rows:,} sample rows, 2-core machine; wall seconds of the CLI as a user runs it, "
        f"first run once, unchanged re-run the median of {args.repeats}. Goal: re-run < "
        f"{GOAL:.0%} of the first run.",
        "",
        "| path | first run (s) | unchanged re-run (s) | re-run / first | goal |",
        "|---|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        ratio = r["rerun"] / r["first"]
        verdict = "met" if ratio < GOAL else "not met"
        lines.append(f"| {name} | {r['first']:.1f} | {r['rerun']:.2f} | {ratio:.1%} | {verdict} |")
    lines += [
        "",
        "What a skipped run costs: `conveyor run` hashes the batch and asks MLflow for the "
        "training key before any pipeline task starts; `conveyor retrain` still runs the "
        "continuous_training pipeline's first three steps (import, check_drift with the "
        "champion scoring the batch, check_trigger), each a kfp.local subprocess.",
        "",
        f"Skip message: `{results['conveyor run']['message'].strip().splitlines()[-1]}`",
        "",
        "Rerun: `make bench-ct` (or `.venv/bin/python bench/ct_cache.py --rows 50000`).",
    ]
    print("\n".join(lines))
    if not args.no_record:
        write_section(HEADING, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
