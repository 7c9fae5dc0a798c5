"""One error family: every failure carries the exit code the CLI and components return.

Every Conveyor error is defined here, so a caller finds the whole family (and what exit
code each means) in one place; the modules that raise them import them from here.

=====  =========================================================================
code   meaning
=====  =========================================================================
1      ConveyorError, PipelineFailedError: anything else that went wrong
2      BadInputError (NotFoundError, IncompatibleRuntimeError), MetricsError:
       the caller must fix an argument, a file, a config or a query
4      ContractViolationError: the data broke its contract
5      TrainingError (and ``conveyor drift``: the batch drifted)
6      TrackingError: MLflow refused or could not be reached
7      ClusterError (ConflictError): the Kubernetes API refused or kept conflicting
8      ServingError (RouterError, ScoreLogError): a server failed to start or answer
9      MetricsUnavailable, ContainerError: Prometheus or the container engine is
       not there
=====  =========================================================================

The quality gate's verdicts (``hold`` 3, ``reject`` 4) and ``kubectl conveyor analyze``'s
decisions are outcomes, not errors: see ``gate.EXIT_CODES`` and ``cli.kubectl.ANALYZE_EXIT``.
"""

from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "BadInputError",
    "ClusterError",
    "ConflictError",
    "ContainerError",
    "ContractViolationError",
    "ConveyorError",
    "IncompatibleRuntimeError",
    "MetricsError",
    "MetricsUnavailable",
    "NotFoundError",
    "PipelineFailedError",
    "RouterError",
    "ScoreLogError",
    "ServingError",
    "TrackingError",
    "TrainingError",
    "did_you_mean",
]


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """``; did you mean 'x' or 'y'?`` for the nearest of ``names``, or "" when none is near:
    the tail of a message that names a misspelt field, column or metric."""
    import difflib

    near = difflib.get_close_matches(name, list(names), n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(map(repr, near))}?" if near else ""


class ConveyorError(Exception):
    """Base error. ``exit_code`` is what the ``conveyor`` CLI exits with when this escapes
    (inside a KFP task any uncaught error fails the task; the message says which)."""

    exit_code = 1


class BadInputError(ConveyorError):
    """Unreadable file, invalid contract or config, wrong arguments: the caller must fix input."""

    exit_code = 2


class ContractViolationError(ConveyorError):
    """The data broke its contract; carries the full report so nothing is lost."""

    exit_code = 4

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class TrainingError(ConveyorError):
    """Training could not produce a usable model (e.g. a single-class training set)."""

    exit_code = 5


class TrackingError(ConveyorError):
    """The tracking server or registry refused or could not be reached."""

    exit_code = 6


class IncompatibleRuntimeError(BadInputError):
    """The serving runtime cannot be trusted to unpickle the model: it is missing, records no
    scikit-learn version, or records another one than the model was pickled with."""


class ClusterError(ConveyorError):
    """The Kubernetes API refused, could not be reached, or kept conflicting."""

    exit_code = 7


class NotFoundError(BadInputError):
    """The named object does not exist (the caller named the wrong thing or namespace)."""


class ConflictError(ClusterError):
    """409: the object changed since it was read."""


class ServingError(ConveyorError):
    """A model server could not start, or answered wrongly (smoke test, replay)."""

    exit_code = 8


class RouterError(ServingError):
    """nginx could not be found, started or reloaded (the message says where its log is)."""


class ScoreLogError(ServingError):
    """The score-log receiver could not start (address in use, bad host)."""


class MetricsError(ConveyorError):
    """A query is wrong (syntax, or it returns several series where one number is needed)."""

    exit_code = 2


class MetricsUnavailable(ConveyorError):
    """The metrics backend could not be reached or answered with a server error."""

    exit_code = 9


class PipelineFailedError(ConveyorError):
    """A task of a local (kfp.local) pipeline failed; its own error was printed in the task
    log. ``run_dir`` is the run's folder (the outputs the failed run left), when it made one."""

    def __init__(self, message: str, run_dir: Path | None = None) -> None:
        super().__init__(message)
        self.run_dir = run_dir


class ContainerError(ConveyorError):
    """No usable container engine, or an image or container step failed."""

    exit_code = 9
