"""Is the rollout analysis right every time? Each `conveyor rollout-sim` scenario, repeated.

A false rollback throws away a good model and teaches on-call to ignore the tool; a missed
one serves a bad model. So every scenario (real local parts: two kserve.ModelServer processes,
nginx, Prometheus, the analysis loop) runs ``--repeat`` times, on an idle machine and with
every core kept busy by CPU-burning processes (a loaded CI runner), and the table counts the
runs whose decision is the expected one. Goal: 10 of 10 in both conditions.

    .venv/bin/python bench/verdicts.py --repeat 10 [--condition idle|busy|both] [--only S ...]
"""

import argparse
import contextlib
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from conveyor.local.sim import EXPECTED, SCENARIOS, run_scenario

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section

HEADING = "## Rollout verdicts over repeated runs (bench/verdicts.py)"
BURN = "while True: pass"


@contextlib.contextmanager
def busy(cores: int) -> Iterator[None]:
    """``cores`` processes spinning on the CPU for as long as the block runs."""
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(cores)]
    try:
        yield
    finally:
        for p in burners:
            p.kill()
            p.wait()


def run(names: list[str], repeat: int, interval: float) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in names:
        out[name] = []
        for i in range(repeat):
            started = time.monotonic()
            r = run_scenario(name, interval=interval)
            out[name].append(r.decision)
            print(f"  {name} #{i + 1}: {r.decision} (expected {EXPECTED[name]}) in "
                  f"{time.monotonic() - started:.0f} s; {r.reason[:120]}", flush=True)  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--interval", type=float, default=3.0)
    parser.add_argument("--condition", choices=["idle", "busy", "both"], default="both")
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    cpu = platform.processor() or platform.machine()
    conditions = ["idle", "busy"] if args.condition == "both" else [args.condition]
    results: dict[str, dict[str, list[str]]] = {}
    load: dict[str, tuple[float, ...]] = {}
    started = time.monotonic()
    for condition in conditions:
        print(f"{condition}:", flush=True)
        with busy(cores) if condition == "busy" else contextlib.nullcontext():
            results[condition] = run(args.only, args.repeat, args.interval)
            load[condition] = os.getloadavg()
    lines = [
        HEADING,
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {cores} CPUs ({cpu}); "
        f"python {platform.python_version()}; interval {args.interval:g} s; {args.repeat} run(s) "
        f"per scenario and condition; busy: {cores} CPU-burning processes for the whole run; "
        f"load average (1/5/15 min) at the end of each condition: "
        + "; ".join(f"{c} {' '.join(f'{x:.2f}' for x in v)}" for c, v in load.items())
        + f"; total {(time.monotonic() - started) / 60:.0f} min.",
        "",
        "| scenario | expected | "
        + " | ".join(f"right ({c})" for c in conditions)
        + " | other decisions |",
        "|---|---|" + "---:|" * len(conditions) + "---|",
    ]
    right_everywhere = True
    for name in args.only:
        expected = EXPECTED[name]
        cells, others = [], []
        for c in conditions:
            decisions = results[c][name]
            right = sum(d == expected for d in decisions)
            right_everywhere &= right == len(decisions)
            cells.append(f"{right}/{len(decisions)}")
            others += [f"{c}: {d}" for d in decisions if d != expected]
        lines.append(f"| {name} | {expected} | {' | '.join(cells)} | {', '.join(others) or '-'} |")
    lines += ["", f"Goal (every run right, in every condition): "
              f"{'met' if right_everywhere else 'NOT met'}.", ""]  # fmt: skip
    print("\n".join(lines))
    if not args.no_write:
        write_section(HEADING, lines)
    return 0 if right_everywhere else 1


if __name__ == "__main__":
    sys.exit(main())
