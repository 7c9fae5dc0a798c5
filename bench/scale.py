"""Scale: what a user waits for, and how much memory, at 50k, 500k, 2M and 20M rows.

Why this exists: the data stages used to load the whole table into pandas, so memory grew with
the table (a 2M-row run peaked at 3.3 GB, and 4-5M rows were OOM-killed under the templates'
2Gi limit). They now stream Parquet in row batches. This measures, as whole processes (wall
seconds and the process tree's peak RSS via ``os.wait4``), on one Parquet table per size:

* ``conveyor validate --contract examples/fraud/contract.yaml T`` against the **numpy pass**
  (``bench/validate.py``'s baseline: ``pd.read_parquet`` of the whole table, then the cheapest
  vectorised op per rule), run as ``python bench/scale.py --numpy-validate T``;
* ``conveyor drift --reference R --current T`` against the **numpy PSI pass** of
  ``bench/drift_process.py`` (``--numpy-pass R T``), R being the 16 model features of the 50k
  table for both (each reads T whole or in batches, as it does);
* ``conveyor run --data T --force`` (the whole local pipeline; sizes from ``--run-rows``).

Goals (from issue 16): validate of 20M rows under 1 GiB peak RSS and at most 1.3x the numpy
pass's time per row; drift at most 1.2x the numpy PSI pass.

Tables: ``conveyor.sample.generate`` in parts of 1M rows (seed 7 + part, disjoint ids), written
with one ``pyarrow.parquet.ParquetWriter`` (row groups of 1M rows), cached in bench/out/scale/.

Run: ``.venv/bin/python bench/scale.py [--rows 50000 500000 2000000 20000000] [--run-rows ...]``
(``make bench``). Results go to bench/RESULTS.md under their own heading.
"""

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out" / "scale"
CONTRACT = ROOT / "examples" / "fraud" / "contract.yaml"
PART = 1_000_000
BUILD = 1  # bump when the way the tables are made changes
HEADING = "## Scale: validate, drift and a full run at 50k to 20M rows (bench/scale.py)"
VALIDATE_MAX_RSS_MIB = 1024
VALIDATE_MAX_RATIO = 1.3
DRIFT_MAX_RATIO = 1.2


def numpy_validate(path: str) -> None:
    """The peer: the whole table read with pandas, then bench/validate.py's numpy floor."""
    sys.path.insert(0, str(BENCH))
    import pandas as pd
    from validate import build_baseline

    from conveyor.contracts import load_contract

    contract = load_contract(CONTRACT)
    result = build_baseline(contract, dt.datetime.now())(pd.read_parquet(path))
    print(json.dumps({"passed": result["passed"]}))


def table(rows: int) -> Path:
    """The table of ``rows`` rows, made in a child process: a child's peak RSS counts the
    memory of the parent it was forked from, so this process stays small to measure others."""
    path = OUT / f"fraud_{rows}.parquet"
    subprocess.run([sys.executable, __file__, "--make-table", str(rows)], check=True)
    return path


def make_table(rows: int) -> Path:
    """The sample table of ``rows`` rows as Parquet, made once in parts (bounded memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from conveyor import sample

    as_of = sample.default_as_of()
    path = OUT / f"fraud_{rows}.parquet"
    meta = path.with_suffix(".json")
    recipe = {"build": BUILD, "rows": rows, "part": PART, "as_of": as_of.isoformat()}
    if path.is_file() and meta.is_file() and json.loads(meta.read_text()) == recipe:
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"table: generating {rows:,} rows in {path} (once)", flush=True)
    tmp = path.with_suffix(".tmp")
    writer = None
    try:
        for start in range(0, rows, PART):
            n = min(PART, rows - start)
            part = sample.generate(n, seed=7 + start // PART, as_of=as_of, start_id=start + 1)
            batch = pa.Table.from_pandas(part, preserve_index=False)
            writer = writer or pq.ParquetWriter(tmp, batch.schema)
            writer.write_table(batch, row_group_size=PART)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)
    meta.write_text(json.dumps(recipe))
    return path


def features_reference() -> Path:
    """The 16 model features of the 50k table: drift's reference, for conveyor and its peer
    (made in a child process, as the tables are)."""
    path = OUT / "reference_features.parquet"
    source = table(50_000)
    if not path.is_file() or path.stat().st_mtime < source.stat().st_mtime:
        script = (
            "import sys, pandas as pd; from conveyor import sample; "
            "cols = [*sample.NUMERIC_FEATURES, *sample.CATEGORICAL_FEATURES]; "
            "pd.read_parquet(sys.argv[1], columns=cols).to_parquet(sys.argv[2], index=False)"
        )
        subprocess.run([sys.executable, "-c", script, str(source), str(path)], check=True)
    return path


def run_once(argv: list[str], cwd: Path, expect: tuple[int, ...]) -> dict:
    """One whole process: wall seconds and the peak RSS (MiB) of it and its children."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if code not in expect:
        sys.exit(f"{' '.join(map(str, argv))}: exit {code}\n{stderr[-3000:]}")
    return {"s": seconds, "rss_mib": usage.ru_maxrss / 1024}


def median_of(argv: list[str], cwd: Path, expect: tuple[int, ...], repeats: int) -> dict:
    runs = [run_once(argv, cwd, expect) for _ in range(repeats)]
    return {
        "s": statistics.median(r["s"] for r in runs),
        "rss_mib": max(r["rss_mib"] for r in runs),
        "n": repeats,
    }


def workdir() -> Path:
    """A copy of examples/fraud, so runs write their own .conveyor/ store."""
    folder = Path(tempfile.mkdtemp(prefix="conveyor-scale-"))
    shutil.copytree(ROOT / "examples", folder / "examples")
    return folder


def measure(rows: list[int], run_rows: list[int], repeats: int) -> list[dict]:
    py, conveyor = sys.executable, str(Path(sys.executable).parent / "conveyor")
    reference = features_reference()
    out = []
    for n in rows:
        path = table(n)
        big = n >= 5_000_000
        reps = 1 if big else repeats
        row: dict = {"rows": n, "mib": path.stat().st_size / 2**20}
        print(f"{n:,} rows:", flush=True)
        row["validate"] = median_of(
            [conveyor, "validate", "--contract", str(CONTRACT), str(path)], OUT, (0, 4), reps
        )
        row["numpy_validate"] = median_of(
            [py, str(BENCH / "scale.py"), "--numpy-validate", str(path)], OUT, (0,), reps
        )
        row["drift"] = median_of(
            [conveyor, "drift", "--reference", str(reference), "--current", str(path)],
            OUT, (0, 5), reps,
        )  # fmt: skip
        row["numpy_drift"] = median_of(
            [py, str(BENCH / "drift_process.py"), "--numpy-pass", str(reference), str(path)],
            OUT, (0,), reps,
        )  # fmt: skip
        if n in run_rows:
            folder = workdir()
            config = folder / "examples/fraud/pipeline.yaml"
            row["run"] = run_once(
                [conveyor, "run", "--config", str(config), "--data", str(path), "--force"],
                folder, (0, 3),
            )  # fmt: skip
            shutil.rmtree(folder, ignore_errors=True)
        for k in ("validate", "numpy_validate", "drift", "numpy_drift", "run"):
            if k in row:
                print(f"  {k}: {row[k]['s']:.2f} s, {row[k]['rss_mib']:,.0f} MiB", flush=True)
        out.append(row)
    return out


def cell(m: dict | None) -> str:
    return "-" if m is None else f"{m['s']:.1f} s, {m['rss_mib']:,.0f} MiB"


def report(results: list[dict], started: float) -> list[str]:
    sys.path.insert(0, str(BENCH))
    from drift_process import versions
    from results import load_average, machine

    lines = [
        HEADING,
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {machine()}; {versions()}; load "
        f"average at the end {load_average()}; total {(time.perf_counter() - started) / 60:.0f}"
        " min. Each cell: wall seconds (median of the runs shown) and peak RSS of the process "
        "tree. Validate and drift read the same Parquet file as their peer, in the same run.",
        "",
        "| rows | Parquet | validate | numpy pass | x | drift | numpy PSI | x | full run |",
        "|---:|---:|---|---|---:|---|---|---:|---|",
    ]
    for r in results:
        v = r["validate"]["s"] / r["numpy_validate"]["s"]
        d = r["drift"]["s"] / r["numpy_drift"]["s"]
        lines.append(
            f"| {r['rows']:,} | {r['mib']:,.0f} MiB | {cell(r['validate'])} | "
            f"{cell(r['numpy_validate'])} | {v:.2f}x | {cell(r['drift'])} | "
            f"{cell(r['numpy_drift'])} | {d:.2f}x | {cell(r.get('run'))} |"
        )
    top = max(results, key=lambda r: r["rows"])
    ratio_v = top["validate"]["s"] / top["numpy_validate"]["s"]
    ratio_d = top["drift"]["s"] / top["numpy_drift"]["s"]
    rss = top["validate"]["rss_mib"]

    def verdict(ok: bool) -> str:
        return "**PASS**" if ok else "**FAIL**"

    lines += [
        "",
        f"Goals at {top['rows']:,} rows:",
        "",
        f"- validate peak RSS under {VALIDATE_MAX_RSS_MIB} MiB: "
        f"{verdict(rss < VALIDATE_MAX_RSS_MIB)} ({rss:,.0f} MiB; the numpy pass "
        f"{top['numpy_validate']['rss_mib']:,.0f} MiB)",
        f"- validate at most {VALIDATE_MAX_RATIO}x the numpy pass: "
        f"{verdict(ratio_v <= VALIDATE_MAX_RATIO)} ({ratio_v:.2f}x)",
        f"- drift at most {DRIFT_MAX_RATIO}x the numpy PSI pass: "
        f"{verdict(ratio_d <= DRIFT_MAX_RATIO)} ({ratio_d:.2f}x)",
        "",
    ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numpy-validate", metavar="TABLE")
    parser.add_argument("--make-table", type=int, metavar="ROWS", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000, 500_000, 2_000_000,
                                                               20_000_000])  # fmt: skip
    parser.add_argument("--run-rows", type=int, nargs="*", default=[50_000, 500_000, 2_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.numpy_validate:
        numpy_validate(args.numpy_validate)
        return 0
    if args.make_table:
        make_table(args.make_table)
        return 0
    started = time.perf_counter()
    results = measure(sorted(args.rows), args.run_rows, args.repeats)
    lines = report(results, started)
    print("\n".join(lines))
    if not args.no_write:
        sys.path.insert(0, str(BENCH))
        from results import write_section

        write_section(HEADING, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
