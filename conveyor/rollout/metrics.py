"""Metrics providers for the rollout analysis (Flagger's metric providers, for models).

A provider answers one query with a number or ``None`` ("no data": no series, no samples, NaN).
``None`` is never healthy: the analysis counts it as inconclusive. A provider that cannot be
reached raises ``MetricsUnavailable``, which the analysis also treats as inconclusive (it holds,
it never promotes).
"""

from collections.abc import Iterable, Mapping
from typing import Protocol

from conveyor.errors import MetricsUnavailable

__all__ = [
    "FEEDBACK_SCORE_METRIC",
    "SCORE_BUCKETS",
    "SCORE_METRIC",
    "MetricsProvider",
    "StaticMetrics",
]

# The series the model server and the score-log receiver export and the analysis reads.
SCORE_METRIC = "conveyor_prediction_score"
SCORE_BUCKETS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 21))
FEEDBACK_SCORE_METRIC = "conveyor_feedback_score"  # conveyor.rollout.scorelog exports it


class MetricsProvider(Protocol):
    """One number per query, or None for no data."""

    def query(self, expr: str) -> float | None: ...


class StaticMetrics:
    """Test double and offline provider: answers from a script of values per query.

    ``script`` maps a query to one value or a sequence consumed one per call (the last value
    repeats). ``down`` makes every query raise ``MetricsUnavailable``.
    """

    def __init__(self, script: Mapping[str, float | Iterable[float | None] | None]) -> None:
        self.script: dict[str, list[float | None]] = {}
        for expr, value in script.items():
            if value is None or isinstance(value, int | float):
                self.script[expr] = [value]
            else:
                self.script[expr] = list(value)
        self.down = False
        self.calls: list[str] = []

    def query(self, expr: str) -> float | None:
        self.calls.append(expr)
        if self.down:
            raise MetricsUnavailable("static metrics: marked down")
        values = self.script.get(expr)
        if not values:
            return None
        return values.pop(0) if len(values) > 1 else values[0]
