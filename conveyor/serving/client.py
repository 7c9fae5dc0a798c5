"""A small client for KServe's V1 and V2 (Open Inference Protocol) endpoints.

Shared by the smoke test, the shadow replay and the serving benchmark, so all three build the
same requests: V1 ``instances`` as one object of column -> list (KServe's sklearn runtime turns
that into a named DataFrame) and V2 with one tensor per column and
``parameters.content_type = "pd"`` (see ``kserve.utils.utils.get_predict_input``).
"""

import math
import time
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd

__all__ = ["ModelClient", "Reply", "percentile_ms", "v1_payload", "v2_payload"]


def _jsonable(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


def _columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {c: [_jsonable(v) for v in frame[c].tolist()] for c in frame.columns}


def v1_payload(frame: pd.DataFrame) -> dict[str, Any]:
    return {"instances": [_columns(frame)]} if len(frame) else {"instances": []}


def _datatype(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "BOOL"
    if pd.api.types.is_integer_dtype(series):
        return "INT64"
    if pd.api.types.is_float_dtype(series):
        return "FP64"
    return "BYTES"


def v2_payload(frame: pd.DataFrame) -> dict[str, Any]:
    inputs = [
        {"name": c, "shape": [len(frame)], "datatype": _datatype(frame[c]), "data": data}
        for c, data in _columns(frame).items()
    ]
    return {"inputs": inputs, "parameters": {"content_type": "pd"}}


@dataclass
class Reply:
    """One call: HTTP status, the parsed body (or text), wall time in milliseconds."""

    status: int
    body: Any
    ms: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def positive_scores(body: Any, protocol: str) -> np.ndarray:
    """Positive-class probabilities from a predict_proba-shaped V1 or V2 response."""
    if protocol == "v1":
        arr = np.asarray(body["predictions"], dtype=np.float64)
    else:
        out = body["outputs"][0]
        arr = np.asarray(out["data"], dtype=np.float64).reshape(out["shape"])
    if arr.size == 0:
        return np.empty(0)
    return arr[:, 1] if arr.ndim == 2 else arr


class ModelClient:
    """Keep-alive HTTP client for one model on one server."""

    def __init__(self, url: str, name: str, timeout: float = 10.0) -> None:
        self.url, self.name = url.rstrip("/"), name
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "ModelClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Reply:
        start = time.perf_counter()
        resp = self.http.request(method, self.url + path, json=body)
        ms = (time.perf_counter() - start) * 1000.0
        try:
            parsed: Any = resp.json()
        except ValueError:
            parsed = resp.text
        return Reply(resp.status_code, parsed, ms)

    def ready(self) -> Reply:
        return self._call("GET", f"/v2/models/{self.name}/ready")

    def metadata(self) -> Reply:
        return self._call("GET", f"/v2/models/{self.name}")

    def v1(self, body: dict[str, Any]) -> Reply:
        return self._call("POST", f"/v1/models/{self.name}:predict", body)

    def v2(self, body: dict[str, Any]) -> Reply:
        return self._call("POST", f"/v2/models/{self.name}/infer", body)

    def predict(self, frame: pd.DataFrame, protocol: str = "v1") -> tuple[Reply, np.ndarray]:
        reply = self.v1(v1_payload(frame)) if protocol == "v1" else self.v2(v2_payload(frame))
        scores = positive_scores(reply.body, protocol) if reply.ok else np.empty(0)
        return reply, scores


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q)) if samples else float("nan")
