"""Local model serving on kserve.ModelServer: the protocol stack of KServe's sklearn runtime.

The model class loads the same single ``model.joblib`` the cluster's ``kserve-sklearnserver``
loads (after checking its sha256) and answers the same V1 and V2 endpoints, so the smoke test
and the shadow replay exercise locally what the cluster serves. Unlike the stock runtime it
checks every request against ``feature_spec.json`` and answers 400 naming the feature, instead
of a 500 from deep inside scikit-learn.

Run one server per process: ``python -m conveyor.serving.server --dir MODEL_DIR --name NAME
--version V --port P``. ``conveyor.local.model_server.LocalServer`` starts and stops such a
process for ``conveyor run``, the tests and the benchmark.
"""

import argparse
import asyncio
import os
import sys
from typing import Any

from conveyor.lifecycle import HOST
from conveyor.rollout.metrics import SCORE_BUCKETS, SCORE_METRIC

__all__ = ["MAX_BATCH_ROWS", "serve"]


MAX_BATCH_ROWS = 10_000
# The positive-class score histogram, per model and version: 20 buckets of 0.05 (plus +Inf).
# The score-log receiver (conveyor.rollout.scorelog) exports the same series from KServe's
# inference logger, and PrometheusScores reads it back bucket by bucket: all three share these.


class Faults:
    """Fault injection for local rollout scenarios only (``conveyor rollout-sim``): off unless
    the CONVEYOR_FAULT_* variables are set by the scenario that starts the server."""

    def __init__(self, error_rate: float = 0.0, latency_ms: float = 0.0, shift: float = 0.0):
        import random

        self.error_rate, self.latency_ms, self.score_shift = error_rate, latency_ms, shift
        self.random = random.Random(7)

    @classmethod
    def from_env(cls) -> "Faults":
        env = os.environ
        return cls(
            float(env.get("CONVEYOR_FAULT_ERROR_RATE", 0) or 0),
            float(env.get("CONVEYOR_FAULT_LATENCY_MS", 0) or 0),
            float(env.get("CONVEYOR_FAULT_SCORE_SHIFT", 0) or 0),
        )

    async def apply_before(self) -> None:
        """A slow dependency, not a stalled server: the delay yields the event loop, so the
        server still answers /metrics and its other requests while one waits (a blocking
        sleep starved Prometheus' scrapes under concurrent load and hid the fault)."""
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000.0)
        if self.error_rate and self.random.random() < self.error_rate:
            from kserve.errors import InferenceError

            raise InferenceError("injected fault: CONVEYOR_FAULT_ERROR_RATE")

    def shift(self, proba: Any) -> Any:
        if not self.score_shift:
            return proba
        import numpy as np

        pos = np.clip(proba[:, 1] + self.score_shift, 0.0, 1.0)
        return np.column_stack([1.0 - pos, pos])


def _model_class() -> type:
    """Build the kserve.Model subclass lazily: importing kserve parses sys.argv and is slow."""
    import numpy as np
    from kserve import Model
    from kserve.errors import InferenceError, InvalidInput
    from kserve.protocol.infer_type import InferRequest, InferResponse
    from kserve.utils.utils import get_predict_response
    from prometheus_client import Counter, Histogram

    from conveyor.errors import BadInputError
    from conveyor.model import load_model
    from conveyor.serving.payload import Features, Rows, Tensor, from_v1, from_v2

    # Exposed on the server's /metrics (kserve serves prometheus_client's default registry):
    # what the rollout analysis reads locally, per model version.
    requests = Counter(
        "conveyor_requests", "Predict requests by outcome", ["model", "version", "code"]
    )
    seconds = Histogram(
        "conveyor_request_seconds", "Predict latency", ["model", "version"],
        # Fine below 50 ms, where single-row predictions land: a p99 ratio between two
        # versions must not come from two neighbouring coarse buckets.
        buckets=(0.002, 0.004, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03,
                 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0),
    )  # fmt: skip
    score = Histogram(
        SCORE_METRIC, "Positive-class scores", ["model", "version"], buckets=SCORE_BUCKETS
    )
    unseen = Counter(
        "conveyor_unseen_categories",
        "Categorical values the model never saw in training (scored as infrequent/unknown)",
        ["model", "version", "feature"],
    )
    faults = Faults.from_env()

    def _data(tensor: Any) -> Any:
        """A V2 input's values as JSON sent them (binary-extension tensors decoded)."""
        if tensor.data is not None:
            return tensor.data
        return tensor.as_numpy().tolist()

    class ConveyorModel(Model):
        """Positive-class probabilities (``predict_proba``, as PREDICT_PROBA=true on the
        cluster runtime) for rows in any shape ``conveyor.serving.payload`` reads: V1 records,
        columns or positional rows, or V2 tensors, one per feature."""

        def __init__(self, name: str, model_dir: str, version: str, max_batch: int) -> None:
            super().__init__(name)
            self.model_dir, self.version, self.max_batch = model_dir, version, max_batch
            self.features = Features([], [])

        def load(self) -> bool:
            self.model, spec = load_model(self.model_dir)  # sha256 checked before unpickling
            self.features = Features.from_spec(spec, self.max_batch)
            self.ready = True
            return True

        def get_input_types(self) -> list[dict[str, Any]]:
            return [
                {"name": c, "datatype": "FP64", "shape": [-1]} for c in self.features.numeric
            ] + [{"name": c, "datatype": "BYTES", "shape": [-1]} for c in self.features.categorical]

        def get_output_types(self) -> list[dict[str, Any]]:
            return [{"name": "output-0", "datatype": "FP64", "shape": [-1, 2]}]

        def _rows(self, payload: dict | InferRequest) -> Rows:
            """Every client mistake is InvalidInput (400), never a 500 the rollout counts."""
            try:
                if isinstance(payload, InferRequest):
                    tensors = [
                        Tensor(t.name, t.datatype, list(t.shape or []), _data(t))
                        for t in payload.inputs or []
                    ]
                    return from_v2(tensors, self.features)
                return from_v1(payload, self.features)
            except BadInputError as exc:
                raise InvalidInput(str(exc)) from None

        async def predict(
            self,
            payload: dict | InferRequest,
            headers: dict[str, str] | None = None,
            response_headers: dict[str, str] | None = None,
        ) -> dict | InferResponse:
            import time

            start = time.perf_counter()
            labels = {"model": self.name, "version": self.version}
            try:
                rows = self._rows(payload)
                frame = rows.frame
                await faults.apply_before()
                if len(frame) == 0:
                    result = np.empty((0, 2))
                else:
                    result = np.asarray(self.model.predict_proba(frame), dtype=np.float64)
                    result = faults.shift(result)
            except InvalidInput:
                requests.labels(**labels, code="400").inc()
                raise
            except Exception as exc:
                # A clean 500 (kserve's InferenceError handler): an unhandled exception would
                # also drop the keep-alive connection under the caller.
                requests.labels(**labels, code="500").inc()
                if isinstance(exc, InferenceError):
                    raise
                raise InferenceError(f"{type(exc).__name__}: {exc}") from exc
            requests.labels(**labels, code="200").inc()
            for feature, count in rows.unseen.items():
                unseen.labels(**labels, feature=feature).inc(count)
            seconds.labels(**labels).observe(time.perf_counter() - start)
            for value in result[:, 1] if len(result) else ():
                score.labels(**labels).observe(float(value))
            response = get_predict_response(payload, result, self.name)
            if isinstance(response, InferResponse):
                response.model_version = self.version
            if response_headers is not None:
                response_headers["x-conveyor-model-version"] = self.version
            return response

    return ConveyorModel


def serve(
    model_dir: str, name: str, version: str, port: int, max_batch: int, host: str = HOST
) -> None:
    """Serve one model on host:port until SIGTERM (loopback on a developer's machine; all
    interfaces in the serving-runtime container, where the pod network is the boundary)."""
    sys.argv = sys.argv[:1]  # kserve parses sys.argv at import: keep ours away from it
    import kserve.model_server as ms
    from kserve.protocol.rest.server import RESTServer, _RefreshingServer

    class BoundREST(RESTServer):
        """KServe always binds 0.0.0.0; bind where we were asked to."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.config.host = host
            self._server = _RefreshingServer(self.config)

    ms.RESTServer = BoundREST
    model = _model_class()(name, model_dir, version, max_batch)
    model.load()
    ms.ModelServer(
        http_port=port, enable_grpc=False, workers=1, enable_latency_logging=False
    ).start([model])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, help="folder with model.joblib + model.sha256")
    parser.add_argument("--name", required=True, help="model name in the V1/V2 URLs")
    parser.add_argument("--version", default="", help="registered version, reported by V2")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-batch", type=int, default=MAX_BATCH_ROWS)
    args = parser.parse_args(argv)
    serve(args.dir, args.name, args.version, args.port, args.max_batch)


if __name__ == "__main__":
    main()
