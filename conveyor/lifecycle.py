"""One lifecycle for everything Conveyor starts and must stop (model servers, the nginx router,
Prometheus, Alertmanager): ``Service`` for ``with``, ``ProcessService`` for a child process,
and the two port helpers every local server needs (``free_port``, ``owns_listener``)."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Self

__all__ = [
    "HOST",
    "ProcessService",
    "Service",
    "Terminated",
    "descendants",
    "free_port",
    "owns_listener",
    "stop_on_sigterm",
]

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def owns_listener(pid: int, port: int) -> bool:
    """True when process ``pid`` holds the socket listening on 127.0.0.1:``port`` (Linux
    /proc; elsewhere assume it does)."""
    table = Path("/proc/net/tcp")
    if not table.is_file():
        return True
    wanted = f"0100007F:{port:04X}"
    inodes = {
        parts[9]
        for line in table.read_text().splitlines()[1:]
        if (parts := line.split()) and parts[1] == wanted and parts[3] == "0A"  # LISTEN
    }
    try:
        links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
    except OSError:
        return False
    return any(f"socket:[{inode}]" in links for inode in inodes)


class Service:
    """Started by ``start()`` (which returns it), stopped by ``stop()``; ``with`` does both,
    and stops it whatever happened inside."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ProcessService(Service):
    """A server run as a child process: spawn it, wait until it is ready (failing fast when it
    exits), stop it. The one copy of that lifecycle, so a fix to readiness or shutdown reaches
    every local server.

    ``stop_signals`` are sent in turn, each followed by up to ``grace`` seconds, then SIGKILL;
    with ``own_group`` the process leads its own group and the group is killed last, so no
    child a killed parent left behind (an nginx worker) keeps serving the port.
    """

    stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)
    grace: float = 10.0
    own_group: bool = False
    proc: subprocess.Popen[bytes] | None = None

    def _spawn(
        self,
        argv: Sequence[str],
        *,
        log: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` with stdout and stderr appended to ``log`` (else discarded)."""
        out = open(log, "ab") if log else None  # noqa: SIM115 - the child holds its own copy
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdout=out or subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=self.own_group,
            )
        finally:
            if out is not None:
                out.close()
        return self.proc

    @property
    def exit_code(self) -> int | None:
        """The child's exit code once it has exited, else None."""
        return None if self.proc is None else self.proc.poll()

    def _await(self, ready: Callable[[], bool], timeout: float, poll: float = 0.1) -> bool:
        """Poll ``ready()`` until it holds: True; False once the child exits or ``timeout``
        passes. ``OSError`` from ``ready()`` (nothing listening yet) counts as not ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                if ready():
                    return True
            time.sleep(poll)
        return False

    def _terminate(self) -> None:
        """Stop the child (idempotent): each of ``stop_signals`` with its grace, then SIGKILL."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig in self.stop_signals:
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=self.grace)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=self.grace)
        if self.own_group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Kubernetes and CI runners send), raised where the process is, so every
    ``with`` and ``except BaseException`` unwinds as it does for Ctrl-C."""


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (children first), read from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


@contextlib.contextmanager
def stop_on_sigterm(*, forward: bool = False) -> Iterator[None]:
    """Within: SIGTERM raises ``Terminated`` in the main thread; with ``forward`` it is first
    passed on to every descendant (pipeline tasks, model servers), which Ctrl-C reaches through
    the terminal's process group but a SIGTERM to this process alone does not."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    forwarded: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if forward:
            for child in descendants(os.getpid()):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child, signal.SIGTERM)
                    forwarded.append(child)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        # Popen's __exit__ waits only 0.25 s on an interrupt: the stopped tasks may still be
        # closing their MLflow runs when we return. The caller said "nothing left running".
        _await_exit(forwarded, TERM_GRACE)


TERM_GRACE = 20.0  # seconds a forwarded SIGTERM gets before SIGKILL


def _running(pid: int) -> bool:
    """Alive and not a zombie (a child of ours is reaped here)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _await_exit(pids: list[int], grace: float) -> None:
    """Wait up to ``grace`` seconds for ``pids`` to exit, then SIGKILL what is left."""
    deadline = time.monotonic() + grace
    alive = [p for p in pids if _running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _running(p)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
