"""Shadow replay: the same requests to champion and candidate, compared side by side.

What an Istio mirror gives on a cluster, done offline before the candidate takes traffic: the
holdout rows go to both servers (in batches, the way a caller would send them), and the report
shows how often the two agree on the decision, how far the score distribution moved (PSI with
bins from the champion's scores) and the single-row latency of each.
"""

from typing import Any

import numpy as np
import pandas as pd

from conveyor import distributions, progress
from conveyor.errors import BadInputError, ServingError
from conveyor.serving.client import ModelClient, percentile_ms, v1_payload

__all__ = ["render_markdown", "shadow_replay"]


def _scores(client: ModelClient, frame: pd.DataFrame, batch: int, who: str) -> np.ndarray:
    parts = []
    for start in range(0, len(frame), batch):
        progress.step(f"shadow replay: {who} scored rows", start, len(frame))
        reply, scores = client.predict(frame.iloc[start : start + batch], "v1")
        if not reply.ok:
            raise ServingError(
                f"shadow replay: {client.url} answered HTTP {reply.status} for rows "
                f"{start}..{start + batch - 1}: {str(reply.body)[:200]}"
            )
        parts.append(scores)
    progress.step(f"shadow replay: {who} scored rows", len(frame), len(frame))
    return np.concatenate(parts) if parts else np.empty(0)


def _latency(client: ModelClient, frame: pd.DataFrame, calls: int) -> dict[str, float]:
    samples = []
    for i in range(calls):
        samples.append(client.v1(v1_payload(frame.iloc[[i % len(frame)]])).ms)
    return {"p50": percentile_ms(samples, 50), "p99": percentile_ms(samples, 99)}


def shadow_replay(
    champion: tuple[str, str],
    candidate: tuple[str, str],
    rows: pd.DataFrame,
    feature_spec: dict[str, Any],
    *,
    threshold: float = 0.5,
    batch: int = 500,
    latency_calls: int = 100,
) -> dict[str, Any]:
    """``champion`` / ``candidate`` are (url, model name) pairs; returns the replay report."""
    features = list(feature_spec["numeric"]) + list(feature_spec["categorical"])
    frame = rows[features].reset_index(drop=True)
    if frame.empty:
        raise BadInputError("rows: the shadow replay needs at least one row")
    with ModelClient(*champion) as a, ModelClient(*candidate) as b:
        old, new = _scores(a, frame, batch, "champion"), _scores(b, frame, batch, "candidate")
        progress.step(f"shadow replay: timing {latency_calls} single-row calls to each")
        lat_old = _latency(a, frame, latency_calls)
        lat_new = _latency(b, frame, latency_calls)
    agree = float(np.mean((old >= threshold) == (new >= threshold)))
    profile = distributions.profile_column(pd.Series(old, name="score"))
    score_psi = distributions.column_psi(profile, pd.Series(new, name="score"))
    return {
        "rows": len(frame),
        "threshold": threshold,
        "agreement": agree,
        "flipped": int(np.sum((old >= threshold) != (new >= threshold))),
        "mean_abs_score_diff": float(np.mean(np.abs(old - new))),
        "score_psi": score_psi,
        "score_psi_band": distributions.band(score_psi),
        "positive_rate": {"champion": float(np.mean(old >= threshold)),
                          "candidate": float(np.mean(new >= threshold))},
        "latency_ms": {"champion": lat_old, "candidate": lat_new,
                       "p99_ratio": lat_new["p99"] / lat_old["p99"] if lat_old["p99"] else None},
        "champion": {"url": champion[0], "model": champion[1]},
        "candidate": {"url": candidate[0], "model": candidate[1]},
    }  # fmt: skip


def render_markdown(report: dict[str, Any]) -> str:
    lat = report["latency_ms"]
    pr = report["positive_rate"]
    return "\n".join(
        [
            f"# Shadow replay: {report['rows']} holdout rows to champion and candidate",
            "",
            "| measure | champion | candidate |",
            "|---|---|---|",
            f"| positive rate at {report['threshold']:g} | {pr['champion']:.4f} | "
            f"{pr['candidate']:.4f} |",
            f"| single-row p50 ms | {lat['champion']['p50']:.1f} | {lat['candidate']['p50']:.1f} |",
            f"| single-row p99 ms | {lat['champion']['p99']:.1f} | {lat['candidate']['p99']:.1f} |",
            "",
            f"Decision agreement {report['agreement']:.2%} ({report['flipped']} rows flipped); "
            f"mean |score difference| {report['mean_abs_score_diff']:.4f}; score PSI "
            f"{report['score_psi']:.4f} ({report['score_psi_band']}).",
            "",
        ]
    )
