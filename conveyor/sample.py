"""Deterministic card-transaction fraud data: the sample problem every stage is shown on.

``generate`` is a pure function of (rows, seed, as_of, mode): the same arguments give the same
table, byte for byte once written (``recipe`` names everything its output depends on, so a
written copy can be reused). ``mode="drift"`` shifts several distributions the way a new
market or a fraud campaign would; ``mode="corrupt"`` injects the faults a contract must catch.
numpy and pandas are imported when a table is made, not with the module.
"""

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from conveyor.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CATEGORICAL_FEATURES",
    "NULLABLE_FEATURES",
    "NUMERIC_FEATURES",
    "Mode",
    "default_as_of",
    "generate",
    "recipe",
]


Mode = Literal["clean", "drift", "corrupt"]

MERCHANT_CATEGORIES = [
    "grocery", "fuel", "restaurants", "travel", "electronics", "fashion", "pharmacy",
    "entertainment", "utilities", "gaming", "jewelry", "digital_goods", "money_transfer",
    "home_improvement", "education",
]  # fmt: skip
CHANNELS = ["pos", "online", "atm", "phone"]
CARD_TYPES = ["debit", "credit", "prepaid"]
GROUPS = ["A", "B", "C"]
COUNTRIES = [f"C{i:02d}" for i in range(50)]  # ~50 values: the high-cardinality categorical

NUMERIC_FEATURES = [
    "amount", "customer_age", "account_age_days", "txn_count_24h", "avg_amount_30d",
    "distance_from_home_km", "minutes_since_last_txn", "credit_limit", "merchant_risk_score",
    "hour_of_day", "device_trust_score", "cards_on_account",
]  # fmt: skip
CATEGORICAL_FEATURES = ["merchant_category", "channel", "country", "card_type"]
NULLABLE_FEATURES = [
    "customer_age",
    "avg_amount_30d",
    "distance_from_home_km",
    "device_trust_score",
]
TARGET_POSITIVE_RATE = 0.04


def _zipf_probs(n: int, s: float) -> "np.ndarray":
    import numpy as np

    weights = 1.0 / np.arange(1, n + 1) ** s
    return weights / weights.sum()


def _calibrated_intercept(score: "np.ndarray", rate: float) -> float:
    """Intercept that makes mean(sigmoid(score + b)) == rate (bisection: deterministic)."""
    import numpy as np

    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(score + mid)))) > rate:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def generate(
    rows: int = 50_000,
    seed: int = 7,
    as_of: datetime | None = None,
    mode: Mode = "clean",
    start_id: int = 1,
) -> "pd.DataFrame":
    """Build the fraud table.

    Args:
        rows: number of transactions (>= 1).
        seed: RNG seed; the only source of randomness.
        as_of: newest possible event time; defaults to today 00:00 UTC so a day's runs agree.
        mode: ``clean``, ``drift`` (shifted distributions) or ``corrupt`` (contract faults).
        start_id: first transaction id, so batches can be given disjoint keys.
    """
    import numpy as np
    import pandas as pd

    if rows < 1:
        raise BadInputError(f"rows: {rows} is below the minimum 1 (rows must be >= 1)")
    rng = np.random.default_rng(seed)
    if as_of is None:
        as_of = default_as_of()
    drift = mode == "drift"

    amount_scale = 1.6 if drift else 1.0
    amount = np.round(rng.lognormal(mean=3.6, sigma=1.25, size=rows) * amount_scale, 2)
    customer_age = np.clip(np.round(rng.normal(44, 14, rows)), 18, 95)
    account_age_days = np.round(rng.exponential(900, rows))
    txn_count_24h = rng.poisson(2.0 if not drift else 3.5, rows).astype(np.int64)
    avg_amount_30d = np.round(rng.lognormal(3.7, 0.9, rows), 2)
    distance = np.round(rng.lognormal(2.0, 1.4, rows), 1)
    minutes_since = np.round(rng.exponential(600, rows), 1)
    credit_limit = np.round(rng.lognormal(8.3, 0.6, rows), -1)
    merchant_risk = np.round(rng.beta(2, 8 if not drift else 4, rows), 4)
    hour = rng.integers(0, 24, rows)
    device_trust = np.round(rng.beta(6, 2, rows), 4)
    cards = rng.integers(1, 6, rows)

    channel_p = [0.55, 0.3, 0.1, 0.05] if not drift else [0.3, 0.55, 0.1, 0.05]
    channel = rng.choice(CHANNELS, size=rows, p=channel_p)
    merchant = rng.choice(MERCHANT_CATEGORIES, size=rows, p=_zipf_probs(15, 0.8))
    country = rng.choice(COUNTRIES, size=rows, p=_zipf_probs(50, 1.1))
    card_type = rng.choice(CARD_TYPES, size=rows, p=[0.6, 0.33, 0.07])
    group = rng.choice(GROUPS, size=rows, p=[0.5, 0.35, 0.15])

    risky_merchant = np.isin(
        merchant, ["electronics", "jewelry", "digital_goods", "money_transfer"]
    )
    country_risk = np.array([int(c[1:]) for c in COUNTRIES])[np.searchsorted(COUNTRIES, country)]
    score = (
        0.9 * (np.log(amount) - 3.6)
        + 3.0 * merchant_risk
        + 0.8 * (channel == "online")
        + 0.7 * risky_merchant
        + 0.5 * (np.log1p(distance) > 3.5)
        - 2.2 * device_trust
        + 0.25 * np.maximum(txn_count_24h - 2, 0)
        + 0.5 * ((hour < 5) | (hour >= 23))
        + 0.6 * (card_type == "prepaid")
        + 0.4 * (country_risk > 30)
        - 0.5 * (account_age_days > 365)
        + 0.15 * (group == "C")
    )
    score = 2.4 * score + rng.normal(0, 0.5, rows)
    intercept = _calibrated_intercept(score, TARGET_POSITIVE_RATE)
    label = (rng.random(rows) < 1.0 / (1.0 + np.exp(-(score + intercept)))).astype(np.int64)

    seconds_back = rng.integers(0, 6 * 24 * 3600, rows)
    event_time = pd.Timestamp(as_of) - pd.to_timedelta(seconds_back, unit="s")

    df = pd.DataFrame(
        {
            "id": np.arange(start_id, start_id + rows, dtype=np.int64),
            "event_time": event_time.astype("datetime64[ns]"),
            "amount": amount,
            "customer_age": customer_age,
            "account_age_days": account_age_days,
            "txn_count_24h": txn_count_24h,
            "avg_amount_30d": avg_amount_30d,
            "distance_from_home_km": distance,
            "minutes_since_last_txn": minutes_since,
            "credit_limit": credit_limit,
            "merchant_risk_score": merchant_risk,
            "hour_of_day": hour.astype(np.int64),
            "device_trust_score": device_trust,
            "cards_on_account": cards.astype(np.int64),
            "merchant_category": merchant,
            "channel": channel,
            "country": country,
            "card_type": card_type,
            "group": group,
            "label": label,
        }
    )
    # Allowed nulls: a few percent of the nullable features are missing, as in real feeds.
    for i, col in enumerate(NULLABLE_FEATURES):
        mask = rng.random(rows) < (0.02 + 0.01 * i)
        df.loc[mask, col] = np.nan
    if mode == "corrupt":
        df = _corrupt(df, rng, as_of)
    return df


def _corrupt(df: "pd.DataFrame", rng: "np.random.Generator", as_of: datetime) -> "pd.DataFrame":
    """Inject one fault of each kind a contract must catch (all of them in one batch)."""
    import numpy as np
    import pandas as pd

    n = len(df)
    df = df.copy()
    take = max(1, n // 200)
    idx = rng.choice(n, size=min(n, take * 6), replace=False)
    parts = np.array_split(idx, 6)
    df.loc[parts[0], "amount"] = -df.loc[parts[0], "amount"].abs() - 1  # out of range
    df.loc[parts[1], "channel"] = "telepathy"  # unknown category
    df.loc[parts[2], "merchant_category"] = None  # null in a required column
    df["customer_age"] = df["customer_age"].astype(object)
    df.loc[parts[3], "customer_age"] = "unknown"  # wrong type
    if len(parts[4]) and n > 1:
        df.loc[parts[4], "id"] = int(df["id"].iloc[0])  # duplicate keys
    df.loc[parts[5], "merchant_risk_score"] = 7.5  # out of [0, 1]
    stale = pd.Timestamp(as_of) - pd.Timedelta(days=60)
    df["event_time"] = pd.Series(stale, index=df.index).astype("datetime64[ns]")  # not fresh
    return df


def default_as_of() -> datetime:
    """Midnight UTC today (naive): the default anchor for event times."""
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day)


def recipe(
    rows: int, seed: int, as_of: datetime, mode: Mode = "clean", start_id: int = 1
) -> dict[str, Any]:
    """Everything ``generate(rows, seed, as_of, mode, start_id)``'s table depends on, as JSON:
    the arguments, this module's source (the generator's code) and the numpy and pandas it
    runs on (numpy's Generator streams may change between releases). Equal recipes, equal
    tables; imports neither library."""
    from importlib.metadata import version

    return {
        "rows": rows,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "mode": mode,
        "start_id": start_id,
        "generator_sha256": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        "numpy": version("numpy"),
        "pandas": version("pandas"),
    }
