"""Time from fault onset to 100 % traffic back on the champion, in analysis intervals.

Runs the fault scenarios of `conveyor rollout-sim` on real local parts (two kserve.ModelServer
processes, nginx, Prometheus) and counts, for each, the analysis intervals from the first one in
which the candidate served traffic to the decision. The peer is Flagger's default analysis
(`threshold: 5` failed checks at `interval`), which needs 5 intervals by construction: Flagger
itself cannot run here (no cluster), so its number is the arithmetic of its defaults.

    make bench-rollback      # or: .venv/bin/python bench/rollback.py [--repeat 3]
"""

import argparse
import datetime as dt
import statistics
import sys
from pathlib import Path

from conveyor.local.sim import EXPECTED, run_scenario

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section

FAULTS = ["errors", "latency", "drift", "no-traffic", "metrics-down", "shadow-errors"]
FLAGGER_THRESHOLD = 5


def intervals_after_traffic(lines: list[str]) -> int:
    """Intervals counted from the first one with candidate traffic (the fault's onset)."""
    waiting = 0
    for line in lines:
        if any(wait in line for wait in ("0 candidate requests", "0 mirrored requests",
                                         "no prediction scores yet")):  # fmt: skip
            waiting += 1
        else:
            break
    return len(lines) - waiting


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--interval", type=float, default=3.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = []
    for name in FAULTS:
        counts, seconds, decisions = [], [], []
        for _ in range(args.repeat):
            r = run_scenario(name, interval=args.interval)
            decisions.append(r.decision)
            counts.append(intervals_after_traffic(r.intervals) if name != "no-traffic"
                          else len(r.intervals))  # fmt: skip
            seconds.append(r.intervals_to_decision * args.interval)
            print(f"{name}: {r.decision} after {counts[-1]} interval(s); lost "
                  f"{r.lost_requests}", flush=True)  # fmt: skip
        rows.append((name, EXPECTED[name], decisions, max(counts), statistics.median(seconds)))
    lines = [
        "## Rollback: fault onset to a decision, in analysis intervals (bench/rollback.py)",
        "",
        f"{dt.date.today()}, this 2-core machine, interval {args.interval:g} s, "
        f"{args.repeat} run(s) per scenario, failure_threshold 2, max_inconclusive 5. "
        "Intervals count from the first interval with candidate traffic. Peer: Flagger's "
        f"default analysis needs threshold ({FLAGGER_THRESHOLD}) x interval for a rollback.",
        "",
        "| scenario | expected | decisions | worst intervals | Flagger default | median s |",
        "|---|---|---|---|---|---|",
    ]
    for name, expected, decisions, worst, secs in rows:
        peer = FLAGGER_THRESHOLD if name in ("errors", "latency", "shadow-errors") else "-"
        lines.append(f"| {name} | {expected} | {', '.join(decisions)} | {worst} | {peer} | "
                     f"{secs:.0f} |")  # fmt: skip
    lines += [
        "",
        "shadow-errors: the faulty v2 answers mirrored copies only; its rollback "
        "removes the shadow and the mirror (callers never saw its answers).",
    ]
    goal = all(w <= 2 for n, _, _, w, _ in rows if n in ("errors", "latency", "shadow-errors"))
    right = all(set(d) == {e} for _, e, d, _, _ in rows)
    verdict = "met" if goal else "NOT met"
    lines += ["", f"Goal (<= 2 intervals for error-rate and latency faults, shadow or canary): "
              f"{verdict}; "
              f"every decision as expected: {right}.", ""]  # fmt: skip
    print("\n".join(lines))
    if not args.no_write:
        write_section(lines[0], lines)
    return 0 if goal and right else 1


if __name__ == "__main__":
    sys.exit(main())
