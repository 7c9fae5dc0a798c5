"""What a long step says while it works: notes, warnings and progress, one line each.

A stage runs in its own process (a kfp.local subprocess or a pod), so it speaks in plain
``conveyor: <kind>: <message>`` lines on stderr: a pod log keeps them as they are, and
``conveyor run`` reads them back out of kfp's log (``LINE``) into its own display. A command
that runs a step in its own process installs that display directly (``showing``).
"""

import contextlib
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

__all__ = ["LINE", "Terminal", "note", "showing", "step", "warn"]

Display = Callable[[str, str], None]  # (kind, message)
LINE = re.compile(r"^\s*conveyor: (note|warning|progress): (.*)$")
EVERY_S = 1.0  # progress at most once a second: a log, not a flood

_display: Display | None = None
_last_step = 0.0


def _say(kind: str, message: str) -> None:
    if _display is not None:
        _display(kind, message)
    else:
        print(f"conveyor: {kind}: {message}", file=sys.stderr, flush=True)


def note(message: str) -> None:
    """Something the user should know about how their data was read (not a problem)."""
    _say("note", message)


def warn(message: str) -> None:
    """A result holds, but on less evidence than the user may think."""
    _say("warning", message)


def step(message: str, done: int | None = None, total: int | None = None) -> None:
    """Where a long step is; ``done``/``total`` add a count, throttled except at the end."""
    global _last_step
    now = time.monotonic()
    final = done is not None and done == total
    if done is not None and not final and now - _last_step < EVERY_S:
        return
    _last_step = now
    count = "" if done is None else f" {done:,}/{total:,}" if total else f" {done:,}"
    _say("progress", message + count)


@contextlib.contextmanager
def showing(display: Display) -> Iterator[None]:
    """Route this process's notes, warnings and progress to ``display`` for a while."""
    global _display
    before, _display = _display, display
    try:
        yield
    finally:
        _display = before


class Terminal:
    """Notes and warnings as indented lines; progress as one line redrawn in place on a
    terminal and left out elsewhere (a log file or a pipe wants results, not a ticker)."""

    def __init__(self, stream: TextIO, indent: str = "      ") -> None:
        self.stream, self.indent, self.label = stream, indent, ""
        self._drawn = False

    def __call__(self, kind: str, message: str) -> None:
        if kind == "progress":
            if self.stream.isatty():
                self.stream.write(f"\r\x1b[K{self.indent}{self.label}{message}"[:160])
                self.stream.flush()
                self._drawn = True
            return
        self.clear()
        self.stream.write(f"{self.indent}{self.label}{kind}: {message}\n")
        self.stream.flush()

    def clear(self) -> None:
        """Erase a progress line before anything else is written on it."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False
