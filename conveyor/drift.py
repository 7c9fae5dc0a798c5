"""check_drift: is a recent batch still the population the champion was trained on?

Per feature: PSI in the reference's bins (numeric and categorical) and, for numeric features,
the KS statistic on the reference's ECDF grid with its p-value (``distributions.ks_pvalue``:
asymptotic, no scipy on large samples); plus the PSI of the model's scores when a model is
given. The decision (``drift`` or ``stable``) is what a retrain trigger reads. Each column is
sorted once; bins, ECDF and KS all read the sorted array (see ``bench/drift.py``).
"""

import html
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from conveyor import distributions
from conveyor.config import DriftPolicy
from conveyor.errors import BadInputError

__all__ = [
    "SCORE",
    "against_champion",
    "check_drift",
    "check_drift_frames",
    "compare",
    "load_reference",
    "metric_values",
    "not_measured",
    "policy_for",
    "render_html",
    "render_markdown",
    "render_text",
    "write_report_files",
    "write_reports",
]


SCORE = "score"  # key of the model-score profile in a reference profile
BAR_WIDTH = 24


def load_reference(path: str | os.PathLike[str], features: list[str] | None = None) -> dict:
    """A reference profile (.json), or data (.csv/.parquet) profiled on the fly."""
    from conveyor.contracts import load_profile
    from conveyor.tables import column_names, iter_frames

    if str(path).endswith(".json"):
        return load_profile(path)
    have = column_names(path)
    missing = [c for c in features or [] if c not in have]
    if missing:
        raise BadInputError(f"{path}: reference data has no column(s) {missing}")
    profile = distributions.profile_frames(lambda cols: iter_frames(path, cols), features)
    profile["source"] = str(path)
    return profile


class _FeatureCounts:
    """One feature of the batch in the reference's bins and ECDF grid, batch by batch: counts
    add, so the table in batches gives the PSI and KS of the table whole."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name, self.spec = name, spec
        self.total = 0
        self.present = 0
        self.bins: np.ndarray | int = 0
        self.below: np.ndarray | int = 0
        self.grid = distributions.ecdf_grid(spec) if spec["kind"] == "numeric" else None

    def add(self, series: pd.Series) -> None:
        self.total += len(series)
        if self.spec["kind"] != "numeric":
            self.bins = self.bins + distributions.current_counts(self.spec, series)
            return
        if not distributions.is_numeric(series):
            raise BadInputError(
                f"column {self.name!r}: the reference profile says numeric, the batch has "
                f"{series.dtype} values"
            )
        values = distributions.sorted_present(series)
        self.present += len(values)
        self.bins = self.bins + distributions.numeric_counts(self.spec, values)
        if self.grid is not None:
            self.below = self.below + distributions.counts_below_grid(self.grid, values)

    def row(self, policy: DriftPolicy) -> dict[str, Any]:
        spec = self.spec
        row: dict[str, Any] = {
            "feature": self.name, "kind": spec["kind"], "ks": None, "ks_pvalue": None
        }  # fmt: skip
        if spec["kind"] == "numeric":
            counts = np.append(self.bins, self.total - self.present)
            if self.grid is not None and self.present:
                ks = distributions.ks_of_counts(spec, np.asarray(self.below), self.present)
                n_ref = int(spec["count"]) - int(spec["nulls"])
                row["ks"] = round(ks, 6)
                row["ks_pvalue"] = distributions.ks_pvalue(ks, n_ref, self.present)
        else:
            counts = np.asarray(self.bins)
        value = distributions.psi_of_counts(spec, counts, self.total)
        reasons = []
        if value > policy.psi_threshold:
            reasons.append(f"PSI {value:.4f} > {policy.psi_threshold:g}")
        if (
            policy.ks_threshold is not None
            and row["ks"] is not None
            and row["ks"] > policy.ks_threshold
            and row["ks_pvalue"] < policy.ks_alpha
        ):
            reasons.append(
                f"KS {row['ks']:.4f} > {policy.ks_threshold:g} (p {row['ks_pvalue']:.2g} "
                f"< {policy.ks_alpha:g})"
            )
        row.update(
            psi=round(value, 6), band=distributions.band(value), drifted=bool(reasons),
            reasons=reasons,
        )  # fmt: skip
        return row


def _feature(name: str, spec: dict[str, Any], series: pd.Series, policy: DriftPolicy) -> dict:
    counts = _FeatureCounts(name, spec)
    counts.add(series)
    return counts.row(policy)


Scorer = Callable[[pd.DataFrame], np.ndarray]


def check_drift(
    reference: dict[str, Any],
    current: pd.DataFrame,
    policy: DriftPolicy | None = None,
    current_scores: np.ndarray | None = None,
    reference_scores: np.ndarray | None = None,
) -> dict[str, Any]:
    """Compare ``current`` with the ``reference`` profile; returns the drift report.

    Scores: the reference's own ``score`` profile is used unless ``reference_scores`` (the same
    model on the reference rows) are given; without ``current_scores`` score PSI is skipped.
    """
    scorer = None if current_scores is None else (lambda _df: current_scores)
    return check_drift_frames(reference, [current], policy, scorer, reference_scores)


def check_drift_frames(
    reference: dict[str, Any],
    frames: Iterable[pd.DataFrame],
    policy: DriftPolicy | None = None,
    scorer: Scorer | None = None,
    reference_scores: np.ndarray | None = None,
) -> dict[str, Any]:
    """:func:`check_drift` of a batch read in row batches (``tables.iter_frames``): memory is
    one row batch, plus 8 bytes a row for the model's scores when ``scorer`` is given; the
    report is the one the whole batch in memory gives."""
    policy = policy or DriftPolicy()
    columns = reference.get("columns", {})
    wanted = policy.features or list(columns)
    unknown = [c for c in wanted if c not in columns]
    if unknown:
        raise BadInputError(
            f"drift policy features {unknown} are not in the reference profile "
            f"(it has {sorted(columns)})"
        )
    counts = {c: _FeatureCounts(c, columns[c]) for c in wanted}
    scores: list[np.ndarray] = []
    rows = 0
    for i, frame in enumerate(frames):
        if i == 0:
            missing = [c for c in wanted if c not in frame.columns]
            if missing:
                raise BadInputError(
                    f"current batch: column(s) {missing} of the reference profile are missing; "
                    "the batch does not have the features the champion was trained on"
                )
        rows += len(frame)
        for c in wanted:
            counts[c].add(frame[c])
        if scorer is not None:
            scores.append(np.asarray(scorer(frame), dtype=np.float64))
    if rows < policy.min_rows:
        raise BadInputError(
            f"current batch: {rows} rows, below drift policy min_rows {policy.min_rows}; "
            "too few rows to judge drift"
        )
    features = [counts[c].row(policy) for c in wanted]
    score = None
    if scorer is not None:
        ref_spec = (
            distributions.profile_column(pd.Series(reference_scores, name=SCORE))
            if reference_scores is not None
            else reference.get(SCORE)
        )
        if ref_spec is not None:
            current_scores = pd.Series(np.concatenate(scores), name=SCORE)
            row = _feature(SCORE, ref_spec, current_scores, policy)
            over = row["psi"] > policy.score_psi_threshold
            row["drifted"] = over
            row["reasons"] = (
                [f"score PSI {row['psi']:.4f} > {policy.score_psi_threshold:g}"] if over else []
            )
            score = row
    drifted = [f["feature"] for f in features if f["drifted"]]
    is_drift = len(drifted) >= policy.min_drifted_features or bool(score and score["drifted"])
    moderate = [f["feature"] for f in features if f["band"] != "stable" and not f["drifted"]]
    return {
        "decision": "drift" if is_drift else "stable",
        "drifted": drifted,
        "moderate": moderate,
        "features": sorted(features, key=lambda f: -f["psi"]),
        "score": score,
        "rows": {"reference": reference.get("rows"), "current": rows},
        "reference_source": reference.get("source", ""),
        "policy": policy.model_dump(mode="json"),
        "summary": summary("drift" if is_drift else "stable", drifted, score, len(features)),
    }


def summary(decision: str, drifted: list[str], score: dict | None, n: int) -> str:
    """One line: the decision, which features drifted, the score PSI."""
    parts = [f"{len(drifted)} of {n} features drifted"]
    if drifted:
        parts[0] += f" ({', '.join(drifted[:5])}{', ...' if len(drifted) > 5 else ''})"
    if score is not None:
        parts.append(f"score PSI {score['psi']:.4f}" + (" (drifted)" if score["drifted"] else ""))
    return f"{decision}: " + "; ".join(parts)


def _bar(value: float, scale: float) -> str:
    filled = min(BAR_WIDTH, round(BAR_WIDTH * value / scale)) if scale else 0
    return "█" * filled + "·" * (BAR_WIDTH - filled)


def _rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [*report["features"], *([report["score"]] if report["score"] else [])]


def _fmt_ks(row: dict[str, Any]) -> str:
    return "-" if row["ks"] is None else f"{row['ks']:.4f} (p {row['ks_pvalue']:.2g})"


def render_text(report: dict[str, Any]) -> str:
    scale = max(report["policy"]["psi_threshold"] * 2, *(r["psi"] for r in _rows(report)))
    lines = [report["summary"], f"{'feature':<28} {'PSI':>8}  {'KS':<18} band      bar"]
    for r in _rows(report):
        flag = " DRIFT" if r["drifted"] else ""
        lines.append(
            f"{r['feature']:<28} {r['psi']:>8.4f}  {_fmt_ks(r):<18} {r['band']:<9} "
            f"{_bar(r['psi'], scale)}{flag}"
        )
    return "\n".join(lines)


def render_markdown(report: dict[str, Any]) -> str:
    policy = report["policy"]
    scale = max(policy["psi_threshold"] * 2, *(r["psi"] for r in _rows(report)))
    out = [
        f"# Drift check: {report['decision'].upper()}",
        "",
        report["summary"],
        "",
        f"Reference: {report['reference_source'] or 'profile'} ({report['rows']['reference']} "
        f"rows); current batch: {report['rows']['current']} rows. A feature drifted when PSI > "
        f"{policy['psi_threshold']:g} or KS > {policy['ks_threshold']} with p < "
        f"{policy['ks_alpha']:g}; scores when PSI > {policy['score_psi_threshold']:g}.",
        "",
        "| feature | kind | PSI | band | KS | drifted | |",
        "|---|---|---:|---|---|---|---|",
    ]
    for r in _rows(report):
        out.append(
            f"| {r['feature']} | {r['kind']} | {r['psi']:.4f} | {r['band']} | {_fmt_ks(r)} | "
            f"{'**yes**: ' + '; '.join(r['reasons']) if r['drifted'] else 'no'} | "
            f"`{_bar(r['psi'], scale)}` |"
        )
    return "\n".join(out) + "\n"


def render_html(report: dict[str, Any]) -> str:
    policy = report["policy"]
    scale = max(policy["psi_threshold"] * 2, *(r["psi"] for r in _rows(report)))
    rows = []
    for r in _rows(report):
        width = min(100.0, 100.0 * r["psi"] / scale) if scale else 0.0
        color = "#c0392b" if r["drifted"] else "#e6a23c" if r["band"] != "stable" else "#2e8b57"
        rows.append(
            f"<tr><td>{html.escape(r['feature'])}</td><td>{r['kind']}</td>"
            f"<td style='text-align:right'>{r['psi']:.4f}</td><td>{r['band']}</td>"
            f"<td>{html.escape(_fmt_ks(r))}</td>"
            f"<td>{html.escape('; '.join(r['reasons'])) if r['drifted'] else 'no'}</td>"
            f"<td style='width:240px'><div style='background:{color};height:12px;"
            f"width:{width:.1f}%'></div></td></tr>"
        )
    threshold_at = min(100.0, 100.0 * policy["psi_threshold"] / scale)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Drift check</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "</style></head><body>"
        f"<h1>Drift check: {report['decision'].upper()}</h1>"
        f"<p>{html.escape(report['summary'])}</p>"
        f"<p>Bars: PSI; the threshold {policy['psi_threshold']:g} sits at {threshold_at:.0f}% "
        "of the bar width.</p><table><tr><th>feature</th><th>kind</th><th>PSI</th><th>band</th>"
        "<th>KS</th><th>drifted</th><th></th></tr>" + "".join(rows) + "</table></body></html>"
    )


def not_measured(decision: str, summary: str) -> dict[str, Any]:
    """The report of a drift check that did not run (``no_reference``, ``not_checked``): the
    reason is all it says."""
    return {"decision": decision, "summary": summary, "features": [], "score": None,
            "drifted": []}  # fmt: skip


def metric_values(report: dict[str, Any]) -> dict[str, float]:
    """What the KFP UI shows of a report: ``psi_<feature>``, ``score_psi``, drifted count."""
    values = {f"psi_{row['feature']}": float(row["psi"]) for row in report["features"]}
    if report.get("score"):
        values["score_psi"] = float(report["score"]["psi"])
    values["drifted_features"] = float(len(report["drifted"]))
    return values


def write_report_files(
    report: dict[str, Any], json_path: str | Path, md_path: str | Path, html_path: str | Path
) -> None:
    """The report as JSON, Markdown and HTML at the given paths (a check that did not run:
    its reason is the whole page)."""
    from conveyor.tables import write_json, write_text

    write_json(report, json_path)
    if "policy" in report:  # a check that ran
        write_text(render_markdown(report), md_path)
        write_text(render_html(report), html_path)
        return
    text = f"# Drift check: {report['decision'].upper()}\n\n{report['summary']}\n"
    write_text(text, md_path)
    write_text(f"<html><body><pre>{html.escape(text)}</pre></body></html>", html_path)


def write_reports(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """drift.json, drift.md and drift.html in ``out_dir``."""
    out = Path(out_dir)
    paths = {"json": out / "drift.json", "markdown": out / "drift.md", "html": out / "drift.html"}
    write_report_files(report, paths["json"], paths["markdown"], paths["html"])
    return paths


def against_champion(
    batch: str,
    model_name: str,
    policy: DriftPolicy,
    registry: Any,
    champion: dict[str, Any] | None,
) -> dict[str, Any]:
    """The drift check against the registry: the batch vs the profile ``champion``'s training
    run logged, scores from the champion itself (sha256-checked). ``decision`` is
    ``no_reference`` when there is no champion or it was trained before profiles were logged.
    The caller has the registry and the champion already (check_trigger looks them up too)."""
    import tempfile

    from conveyor.model import load_model, predict_proba
    from conveyor.tables import iter_frames

    with tempfile.TemporaryDirectory(prefix="conveyor-drift-") as tmp:
        profile_path = registry.reference_profile(champion, tmp) if champion else None
        if champion is None or profile_path is None:
            why = "no champion" if champion is None else f"v{champion['version']} has no profile"
            return not_measured("no_reference", f"no_reference: {why}; drift not measured")
        profile = load_reference(profile_path)
        model, spec = load_model(registry.download(champion, Path(tmp) / "model"))
        report = check_drift_frames(
            profile, iter_frames(batch), policy, lambda frame: predict_proba(model, frame, spec)
        )
    report["reference_source"] = f"{model_name} v{champion['version']} (champion) training run"
    return report


def models_uri(value: str) -> tuple[str, str] | None:
    """``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` -> (name, alias or version); None
    for anything else (a file)."""
    if not value.startswith("models:/"):
        return None
    rest = value[len("models:/") :]
    name, sep, ref = rest.partition("@") if "@" in rest else rest.partition("/")
    if not name or not sep or not ref:
        raise BadInputError(f"{value!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    return name, ref


def policy_for(
    config_path: str | None, features: str | None, psi_threshold: float | None
) -> DriftPolicy:
    """The drift policy of ``conveyor drift``: the config's ``retrain.drift`` (limited to the
    model's inputs) or the defaults, then the command line's overrides."""
    from conveyor.config import load_pipeline_config, model_from_data

    policy = DriftPolicy()
    if config_path:
        config = load_pipeline_config(config_path)
        policy = config.retrain.drift
        if policy.features is None:  # the model's inputs, not keys, labels or timestamps
            inputs = [*config.features.numeric, *config.features.categorical]
            policy = policy.model_copy(update={"features": inputs})
    if features:
        policy = policy.model_copy(update={"features": features.split(",")})
    if psi_threshold is not None:
        data = {**policy.model_dump(), "psi_threshold": psi_threshold}
        policy = model_from_data(DriftPolicy, data, "--psi-threshold")
    return policy


def compare(
    reference: str,
    current: str | Path,
    policy: DriftPolicy,
    *,
    model: str | None = None,
    scores: bool = True,
    tracking_uri: str = "",
) -> dict[str, Any]:
    """``current`` against ``reference`` (a profile, a data file, or ``models:/NAME@ALIAS``:
    the profile that version's training run logged, its model scoring the batch unless
    ``scores`` is off); ``model`` (a folder or ``models:/``) scores it for score PSI."""
    import tempfile

    from conveyor.tables import iter_frames, probe_table

    probe_table(current)
    with tempfile.TemporaryDirectory(prefix="conveyor-drift-") as tmp:
        model_ref = models_uri(model) if model else None
        ref = models_uri(reference)
        registry = None
        if ref or model_ref:
            from conveyor.registry import ModelRegistry

            registry = ModelRegistry(tracking_uri)
        if ref:
            assert registry is not None
            row = registry.resolve(*ref)
            path = registry.reference_profile(row, tmp)
            if path is None:
                raise BadInputError(
                    f"{reference}: v{row['version']} was trained before reference "
                    "profiles were logged; pass a profile or data file as --reference"
                )
            profile = load_reference(path)
            profile["source"] = f"{ref[0]} v{row['version']} training run"
            if model_ref is None and scores:
                model_ref = (ref[0], row["version"])
        else:
            profile = load_reference(reference, policy.features)
        scorer = None
        if model_ref or model:
            from conveyor.model import load_model, predict_proba

            if model_ref:
                assert registry is not None
                folder = registry.download(registry.resolve(*model_ref), Path(tmp) / "m")
            else:
                folder = Path(str(model))
            fitted, spec = load_model(folder)  # sha256 checked
            scorer = lambda frame: predict_proba(fitted, frame, spec)  # noqa: E731
        # without a model to feed, only the features are read
        wanted = None if scorer else (policy.features or list(profile.get("columns", {})))
        return check_drift_frames(profile, iter_frames(current, wanted), policy, scorer)
