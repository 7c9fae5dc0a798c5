"""The conveyor-sklearn serving runtime: what the ClusterServingRuntime's container runs.

KServe starts the serving image with its standard arguments (``--model_name={{.Name}}
--model_dir=/mnt/models --http_port=8080``) after its storage initializer has copied the
model's ``storageUri`` folder to ``/mnt/models``. Before anything is unpickled this refuses a
model pickled by another scikit-learn release (it may not even unpickle: ``FrozenEstimator``
exists only from 1.6, and scikit-learn supports loading only within one release), and the
sha256 is checked as everywhere else; then kserve.ModelServer answers V1 and V2 on all
interfaces of the pod.
"""

import argparse
import json
import os
from pathlib import Path

from conveyor.errors import BadInputError, IncompatibleRuntimeError
from conveyor.model import SPEC_FILE
from conveyor.serving.isvc import VERSION_ENV

__all__ = ["check_model", "main"]


def check_model(model_dir: str | Path) -> str:
    """The model's recorded scikit-learn version, when it equals this runtime's; else refuse."""
    import sklearn

    spec_path = Path(model_dir) / SPEC_FILE
    try:
        recorded = json.loads(spec_path.read_text()).get("sklearn_version")
    except (OSError, ValueError) as exc:
        raise BadInputError(
            f"{spec_path}: cannot read the model's feature spec ({exc}); the storageUri must "
            "be the folder train wrote (model.joblib, model.sha256, feature_spec.json)"
        ) from exc
    if not recorded:
        raise IncompatibleRuntimeError(
            f"{spec_path}: no sklearn_version recorded (trained before Conveyor recorded it); "
            f"this runtime serves scikit-learn {sklearn.__version__} only: retrain the model"
        )
    if recorded != sklearn.__version__:
        raise IncompatibleRuntimeError(
            f"model in {model_dir} was pickled by scikit-learn {recorded}; this runtime has "
            f"scikit-learn {sklearn.__version__}: refusing to load it. Serve it with a runtime "
            f"image of scikit-learn {recorded}, or retrain with {sklearn.__version__}"
        )
    return str(recorded)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_name", "--model-name", required=True)
    parser.add_argument("--model_dir", "--model-dir", default="/mnt/models")
    parser.add_argument("--http_port", "--http-port", type=int, default=8080)
    parser.add_argument(
        "--model_version", default=os.environ.get(VERSION_ENV, ""),
        help=f"registered version, reported by V2 and in the metrics (env {VERSION_ENV})",
    )  # fmt: skip
    parser.add_argument("--host", default="0.0.0.0")  # a pod serves on its own network
    parser.add_argument("--max_batch", type=int, default=10_000)
    # KServe may add arguments of its own (--grpc_port, --workers, ...): ignored, not fatal.
    args, _unknown = parser.parse_known_args(argv)
    from conveyor.serving.server import serve

    check_model(args.model_dir)
    serve(
        args.model_dir, args.model_name, args.model_version, args.http_port, args.max_batch,
        host=args.host,
    )  # fmt: skip


if __name__ == "__main__":
    import sys

    from conveyor.errors import ConveyorError

    try:
        main()
    except ConveyorError as exc:
        print(f"conveyor-sklearn: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
