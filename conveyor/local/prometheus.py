"""A real Prometheus on 127.0.0.1 for tests and local rollout scenarios (Debian's binary from
`make tools`, in .tools/bin; CONVEYOR_TOOLS points elsewhere).

``PrometheusServer`` writes its own prometheus.yml, keeps its TSDB in a temporary folder and
listens on a free port, so tests never touch a system Prometheus or each other. The helpers
query the HTTP API directly (not through ``conveyor.rollout.prometheus``), so a bug in the code
under test cannot make the fixture itself wait for the wrong thing. Starting, readiness and
shutdown are ``LocalToolServer``'s, shared with ``local.alertmanager.AlertmanagerServer``.
"""

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Self

import httpx

from conveyor.lifecycle import ProcessService, free_port

__all__ = ["LocalToolServer", "PrometheusServer", "free_port", "tools_dir"]


ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = Path(os.environ.get("CONVEYOR_TOOLS") or ROOT / ".tools" / "bin")

Targets = Mapping[str, Sequence[str]]


def tools_dir(needs: Iterable[str] = ("prometheus",)) -> Path:
    """``.tools/bin``, after checking that the tools ``needs`` are there and executable."""
    missing = [name for name in needs if not (TOOLS_BIN / name).is_file()]
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} not found in {TOOLS_BIN}: run `make tools` "
            "(scripts/fetch-tools.sh unpacks Debian's packages there, no root needed)"
        )
    return TOOLS_BIN


def config_yaml(targets: Targets, scrape_interval: str, metrics_path: str) -> str:
    """prometheus.yml: one scrape job per entry of ``targets`` (job name -> host:port list).

    Written by hand rather than with yaml.dump so the file reads like the ones in docs.
    """
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
        "scrape_configs:",
    ]
    for job, addresses in targets.items():
        quoted = ", ".join(f'"{a}"' for a in addresses)
        lines += [
            f'  - job_name: "{job}"',
            f'    metrics_path: "{metrics_path}"',
            f"    scrape_timeout: {scrape_interval}",
            "    static_configs:",
            f"      - targets: [{quoted}]",
        ]
    return "\n".join(lines) + "\n"


def instant_value(url: str, expr: str, timeout: float = 5.0) -> float | None:
    """One instant query: None for no series or NaN/Inf, the value for one series.

    Several series raise ``ValueError``: a helper guessing which one was meant would hide a
    wrong test query.
    """
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=timeout)
    response.raise_for_status()
    data = response.json()["data"]
    if data["resultType"] == "scalar":
        raw = data["result"][1]
    else:
        if len(data["result"]) > 1:
            raise ValueError(f"{expr!r} returned {len(data['result'])} series, expected one")
        if not data["result"]:
            return None
        raw = data["result"][0]["value"][1]
    value = float(raw)
    return value if math.isfinite(value) else None


class LocalToolServer(ProcessService):
    """A server binary from ``.tools/bin`` on a free 127.0.0.1 port, in its own temporary folder.

    Prometheus and Alertmanager start, get ready and stop the same way; only their flags and
    config differ. A subclass names its binary (``tool``) and supplies ``_argv`` and
    ``_prepare``; everything else lives here, so a fix to the port race or the shutdown reaches
    both. ``stop()`` is idempotent and runs on every exit path, including a failed start.
    """

    #: Name in ``.tools/bin``; also names the temporary folder, the log file and errors.
    tool: ClassVar[str]

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self.startup_timeout = startup_timeout
        self.port = 0
        self.workdir: Path | None = None

    # ------------------------------------------------------------------ subclass hooks

    def _argv(self, port: int, workdir: Path) -> list[str]:
        """Flags (after the binary) to serve on 127.0.0.1:``port`` from ``workdir``."""
        raise NotImplementedError

    def _prepare(self, binary: Path, workdir: Path) -> None:
        """Write what the server reads from ``workdir`` (its config) before the first spawn."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared

    @property
    def url(self) -> str:
        if self.proc is None:
            raise RuntimeError(f"{type(self).__name__} is not running: call start() or use `with`")
        return f"http://127.0.0.1:{self.port}"

    @property
    def _log_file(self) -> Path:
        assert self.workdir is not None
        return self.workdir / f"{self.tool}.log"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log, for failure messages."""
        if self.workdir is None or not self._log_file.exists():
            return ""
        return self._log_file.read_text(errors="replace")[-chars:]

    def start(self) -> Self:
        binary = tools_dir((self.tool,)) / self.tool
        self.workdir = Path(tempfile.mkdtemp(prefix=f"conveyor-{self.tool}-"))
        try:
            self._prepare(binary, self.workdir)
            # free_port() can race with another process taking the port before the server
            # binds it; a couple of attempts make that a non-issue on a busy machine.
            for attempt in range(3):
                self.port = free_port()
                self._spawn(
                    [str(binary), *self._argv(self.port, self.workdir)],
                    log=self._log_file,
                    cwd=self.workdir,
                )
                if self._await(self._ready, self.startup_timeout):
                    return self
                if "address already in use" not in self.log_tail() or attempt == 2:
                    break
                self._terminate()
            code = self.exit_code
            why = f"exited with code {code}" if code is not None else "did not become ready"
            raise RuntimeError(
                f"{self.tool} on 127.0.0.1:{self.port} {why} (waited up to "
                f"{self.startup_timeout:g}s); its log:\n{self.log_tail()}"
            )
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        """/-/ready answers 200 (Prometheus and Alertmanager alike)."""
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """Stop the server and remove its folder; safe to call twice or after a failed start."""
        try:
            self._terminate()
        finally:
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = None


class PrometheusServer(LocalToolServer):
    """``with PrometheusServer({"app": ["127.0.0.1:8000"]}) as prom: prom.url ...``

    ``--web.enable-lifecycle`` is on so ``reload(targets)`` can change the scrape jobs
    without a restart (which would lose the TSDB's in-memory head).
    """

    tool = "prometheus"

    def __init__(
        self,
        targets: Targets | None = None,
        *,
        scrape_interval: str = "1s",
        metrics_path: str = "/metrics",
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.targets: dict[str, list[str]] = {k: list(v) for k, v in (targets or {}).items()}
        self.scrape_interval = scrape_interval
        self.metrics_path = metrics_path

    @property
    def config_file(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "prometheus.yml"

    def _argv(self, port: int, workdir: Path) -> list[str]:
        return [
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            # Debian's default console paths are under /etc; tests need only the API.
            f"--web.console.templates={workdir}",
            f"--web.console.libraries={workdir}",
            "--log.level=warn",
        ]

    def _prepare(self, binary: Path, workdir: Path) -> None:
        self._write_config()

    # ------------------------------------------------------------------ config and queries

    def _write_config(self) -> None:
        text = config_yaml(self.targets, self.scrape_interval, self.metrics_path)
        self.config_file.write_text(text)

    def reload(self, targets: Targets) -> None:
        """Replace the scrape jobs: rewrite prometheus.yml and POST /-/reload.

        Prometheus answers the reload only after it has applied (or rejected) the file, so a
        rejected config fails here with its message rather than as a stale scrape later.
        """
        self.targets = {k: list(v) for k, v in targets.items()}
        self._write_config()
        response = httpx.post(f"{self.url}/-/reload", timeout=10.0)
        if response.status_code != 200:
            raise RuntimeError(f"prometheus rejected the reloaded config: {response.text}")

    def query(self, expr: str) -> float | None:
        return instant_value(self.url, expr)

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[float | None], bool] = lambda v: v is not None,
        timeout: float = 15.0,
        poll: float = 0.25,
    ) -> float | None:
        """Poll ``expr`` until ``predicate(value)`` holds; return that value.

        Scrapes land on Prometheus's clock, not the test's: waiting on the data itself is
        both faster and steadier than sleeping a guessed number of scrape intervals.
        """
        deadline = time.monotonic() + timeout
        value: float | None = None
        error = ""
        while True:
            try:
                value = self.query(expr)
                error = ""
                if predicate(value):
                    return value
            except (httpx.HTTPError, ValueError) as exc:
                error = f" (last error: {exc})"
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{expr!r} did not satisfy the predicate within {timeout:g}s; "
                    f"last value {value!r}{error}\n{self.log_tail(1500)}"
                )
            time.sleep(poll)
