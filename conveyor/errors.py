"""One error family: every failure carries the exit code the CLI and components return."""


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
