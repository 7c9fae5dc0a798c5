"""A local traffic router: champion/candidate split and a mirror, with nginx on 127.0.0.1.

On a cluster, Knative splits an InferenceService's traffic between revisions and Istio mirrors
it to a shadow. On one machine ``NginxRouter`` plays both parts in front of ``LocalServer``
processes, so a rollout can be driven step by step against real model servers:

* the split is per request: ``split_clients`` hashes ``$request_id`` (128 random bits per
  request), so a client that reuses one connection or one payload is still spread; 0 and 100
  use a single upstream, so those two are exact, not "about";
* every response carries ``x-conveyor-backend: champion|candidate`` (also on errors), so
  callers and tests can count where requests went;
* ``proxy_next_upstream off`` and one server per upstream: a candidate's 500 reaches the caller
  as a 500, as it would on the cluster, and is never retried on the champion;
* the mirror is nginx's ``mirror`` directive: the shadow gets a copy of each chosen request
  (path, headers, body, the same ``x-request-id``) after or while the caller is answered, and
  nginx discards the shadow's response; a slow, failing or absent shadow never changes what
  the caller sees. nginx reads only the headers of a mirror's answer, so each mirrored
  request opens its own connection to the shadow (its listen backlog must take the burst);
* a step change rewrites the config and reloads nginx gracefully (SIGHUP to the master, what
  ``nginx -s reload`` sends): old workers finish their requests while new ones accept, so no
  request is lost. ``set_split`` returns only once no old worker accepts any more, so every
  request sent afterwards is routed by the new split. Client connections are not kept alive
  (``keepalive_timeout 0``): an old worker closes its idle ones on reload, and a request sent
  on one at that instant fails (measured: 5-18 of ~4,000 requests across 42 reloads);
  upstream connections to the models are kept alive.

Debian's nginx has /etc/nginx, /var/log/nginx and /var/lib/nginx compiled in; the config here
sets every path (pid, logs, lock and temp dirs) under ``workdir``, so nothing outside it is
read or written and no root is needed.
"""

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from conveyor.errors import RouterError
from conveyor.lifecycle import HOST, ProcessService, free_port, owns_listener

__all__ = ["BACKEND_HEADER", "NginxRouter", "find_nginx"]


ROOT = Path(__file__).resolve().parents[2]
TOOLS_NGINX = ROOT / ".tools" / "bin" / "nginx"
BACKEND_HEADER = "x-conveyor-backend"
# Upstream keep-alive connections are dropped after this idle time, below the backends' own
# idle timeouts (uvicorn: 5 s by default, kserve.ModelServer: 65 s). Otherwise nginx may reuse a
# connection the backend is closing, and with proxy_next_upstream off that is a 502.
UPSTREAM_IDLE = "4s"
START_TIMEOUT = 10.0
RELOAD_TIMEOUT = 10.0
STOP_GRACE = 5.0
PROC = Path("/proc")


def find_nginx(nginx: str | Path | None = None) -> Path | None:
    """The nginx binary: ``nginx`` if given, else the repo's ``.tools/bin/nginx`` (see
    scripts/fetch-tools.sh), else ``nginx`` on PATH; None when there is none."""
    if nginx is not None:
        path = Path(nginx)
        return path if path.is_file() else None
    if TOOLS_NGINX.is_file():  # is_file follows the symlink: a dangling link does not count
        return TOOLS_NGINX
    found = shutil.which("nginx")
    return Path(found) if found else None


def _hostport(url: str, role: str) -> str:
    """``host:port`` of an ``http://host:port`` base URL, for an upstream ``server`` line."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"{role} URL {url!r} is not a base URL like http://127.0.0.1:8080")
    if parts.query or parts.fragment or parts.username:
        raise ValueError(f"{role} URL {url!r} is not a base URL like http://127.0.0.1:8080")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port or 80}"


def _percent(value: float) -> str:
    """A split_clients share: nginx reads at most two decimals."""
    return f"{value:.2f}".rstrip("0").rstrip(".") + "%"


def _worker_pids(master: int) -> dict[int, str]:
    """pid -> process title of every child of ``master`` (nginx sets the title of an old worker
    to "worker process is shutting down" once it has closed its listening sockets). Linux
    /proc; empty elsewhere."""
    workers: dict[int, str] = {}
    if not PROC.is_dir():
        return workers
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == master:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                workers[int(entry.name)] = title.decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
    return workers


class NginxRouter(ProcessService):
    """nginx on 127.0.0.1 routing to a champion, optionally a candidate (``set_split``) and a
    shadow (``set_mirror``), as Knative + Istio route an InferenceService on the cluster."""

    stop_signals = (signal.SIGQUIT, signal.SIGTERM)  # graceful quit first
    grace = STOP_GRACE
    own_group = True  # workers are in the master's group: none outlives a killed master

    def __init__(
        self,
        champion: str,
        candidate: str | None = None,
        *,
        workdir: Path,
        port: int | None = None,
        nginx: str | None = None,
    ) -> None:
        self.champion = champion
        self.candidate = candidate
        self._upstreams = {"champion": _hostport(champion, "champion")}
        if candidate is not None:
            self._upstreams["candidate"] = _hostport(candidate, "candidate")
        self.workdir = Path(workdir).resolve()
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._nginx = nginx
        self._split = 0
        self._mirror: tuple[str, float] | None = None
        self._changing = threading.RLock()
        self.conf = self.workdir / "nginx.conf"
        self.error_log = self.workdir / "error.log"
        self.access_log = self.workdir / "access.log"

    # --- state ---------------------------------------------------------------------------

    def split(self) -> int:
        """The candidate's current share of requests, in percent."""
        return self._split

    @property
    def mirror(self) -> tuple[str, float] | None:
        """(shadow URL, percent) while mirroring, else None."""
        return self._mirror

    @property
    def pid(self) -> int | None:
        """The nginx master's pid while it runs."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def workers(self) -> list[int]:
        """pids of the nginx worker processes (old ones still draining included)."""
        return sorted(_worker_pids(self.proc.pid)) if self.proc is not None else []

    # --- changes -------------------------------------------------------------------------

    def set_split(self, candidate_percent: int) -> None:
        """Send ``candidate_percent`` % of requests (0..100) to the candidate, the rest to the
        champion; takes effect for every request sent after this returns."""
        if isinstance(candidate_percent, bool) or not isinstance(candidate_percent, int):
            raise ValueError(f"candidate_percent must be an int 0..100, got {candidate_percent!r}")
        if not 0 <= candidate_percent <= 100:
            raise ValueError(f"candidate_percent {candidate_percent} is outside 0..100")
        if candidate_percent and self.candidate is None:
            raise ValueError(
                f"candidate_percent {candidate_percent}: this router has no candidate "
                "(only 0 is possible)"
            )
        with self._changing:  # the mirror read here is the one kept
            self._apply(candidate_percent, self._mirror)

    def set_mirror(self, shadow: str | None, percent: float = 100.0) -> None:
        """Mirror ``percent`` % of requests to ``shadow`` (fire and forget: nginx discards the
        shadow's responses, the caller only ever gets the champion's or candidate's); None
        turns mirroring off."""
        if shadow is None:
            with self._changing:
                self._apply(self._split, None)
            return
        _hostport(shadow, "shadow")
        if isinstance(percent, bool) or not 0 <= percent <= 100:
            raise ValueError(f"mirror percent {percent!r} is outside 0..100")
        share = round(float(percent), 2)  # split_clients' resolution is 0.01 %
        with self._changing:
            self._apply(self._split, (shadow, share) if share else None)

    def _apply(self, split: int, mirror: tuple[str, float] | None) -> None:
        """Record the new state; when running, write, test and gracefully load the config.
        The state only changes once nginx has accepted the new config."""
        with self._changing:  # one reload at a time: each waits for its own new worker
            if self.pid is None:
                self._split, self._mirror = split, mirror
                return
            self._write_and_test(self._render(split, mirror))
            self._reload()
            self._split, self._mirror = split, mirror

    # --- config --------------------------------------------------------------------------

    def render(self) -> str:
        """The nginx.conf for the current split and mirror."""
        return self._render(self._split, self._mirror)

    def _render(self, split: int, mirror: tuple[str, float] | None) -> str:
        w = self.workdir
        lines = [
            "# Written by conveyor.local.router.NginxRouter; rewritten on every change.",
            *self._user_lines(),
            "daemon off;  # the master is our child process: its pid is ours to signal",
            "master_process on;  # graceful reload: new workers start, old ones drain",
            "worker_processes 1;",
            f"pid {w}/nginx.pid;",
            f"lock_file {w}/nginx.lock;",
            f"error_log {w}/error.log notice;",
            "events { worker_connections 1024; }",
            "http {",
            f"    client_body_temp_path {w}/tmp/body;",
            f"    proxy_temp_path {w}/tmp/proxy;",
            f"    fastcgi_temp_path {w}/tmp/fastcgi;",
            f"    uwsgi_temp_path {w}/tmp/uwsgi;",
            f"    scgi_temp_path {w}/tmp/scgi;",
            "    log_format conveyor '$remote_addr [$time_local] \"$request\" $status '",
            "        'backend=$conveyor_backend upstream=$upstream_addr '",
            "        'upstream_status=$upstream_status id=$request_id rt=$request_time pid=$pid';",
            f"    access_log {w}/access.log conveyor;",
            "    server_tokens off;",
            "    client_max_body_size 0;  # no limit: the cluster's ingress sets none either",
            "    client_body_buffer_size 1m;",
            # No client keep-alive: a graceful reload closes the old workers' idle client
            # connections, and a request sent on one at that instant would fail. One TCP
            # connect per request on loopback costs little; upstream connections stay alive.
            "    keepalive_timeout 0;",
            "    map $http_x_request_id $conveyor_request_id {",
            '        "" $request_id;',
            "        default $http_x_request_id;",
            "    }",
        ]
        for name, hostport in self._upstreams.items():
            lines += self._upstream(name, hostport)
        if mirror is not None:
            # No keepalive: nginx reads only the headers of a mirror's answer, so it can never
            # reuse the connection; each mirrored request opens its own.
            lines += self._upstream("shadow", _hostport(mirror[0], "shadow"), keepalive=False)
        if split in (0, 100):
            only = "candidate" if split == 100 else "champion"
            lines += [
                "    map $request_id $conveyor_backend {",
                f"        default {only};",
                "    }",
            ]
        else:
            lines += [
                '    split_clients "${request_id}" $conveyor_backend {',
                f"        {_percent(split)} candidate;",
                "        * champion;",
                "    }",
            ]
        if mirror is not None and mirror[1] < 100:
            # A different key from the split's, so the mirrored share is independent of it.
            lines += [
                '    split_clients "mirror${request_id}" $conveyor_mirror {',
                f"        {_percent(mirror[1])} 1;",
                '        * "";',
                "    }",
            ]
        proxy = [
            "        proxy_http_version 1.1;",
            '        proxy_set_header Connection "";',
            "        proxy_set_header Host $host;",
            "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "        proxy_set_header X-Request-ID $conveyor_request_id;",
            "        proxy_next_upstream off;",
            "        proxy_connect_timeout 5s;",
            "        proxy_read_timeout 120s;",
            "        proxy_send_timeout 120s;",
        ]
        lines += [
            "    server {",
            f"        listen {HOST}:{self.port};",
            "        location / {",
            *(["            mirror /.conveyor-mirror;"] if mirror is not None else []),
            "            proxy_pass http://$conveyor_backend;",
            *("    " + line for line in proxy),
            f"            proxy_hide_header {BACKEND_HEADER};",
            f"            add_header {BACKEND_HEADER} $conveyor_backend always;",
            "        }",
        ]
        if mirror is not None:
            lines += [
                "        location = /.conveyor-mirror {",
                "            internal;",
                *(
                    ['            if ($conveyor_mirror = "") { return 204; }']
                    if mirror[1] < 100
                    else []
                ),
                "            proxy_pass http://shadow$request_uri;",
                *("    " + line for line in proxy),
                "            proxy_set_header X-Conveyor-Mirror 1;",
                "        }",
            ]
        lines += ["    }", "}", ""]
        return "\n".join(lines)

    @staticmethod
    def _upstream(name: str, hostport: str, keepalive: bool = True) -> list[str]:
        """One server per upstream: a retry, if nginx ever made one, could only reach the
        same backend."""
        alive = [
            "        keepalive 16;",
            f"        keepalive_timeout {UPSTREAM_IDLE};",
        ]
        return [
            f"    upstream {name} {{",
            f"        server {hostport};",
            *(alive if keepalive else []),
            "    }",
        ]

    @staticmethod
    def _user_lines() -> list[str]:
        """As root, nginx switches its workers to ``nobody``, who cannot enter a private
        workdir (pytest's tmp dirs are 0700) for temp files; run them as the caller instead.
        As non-root the directive is ignored (with a warning), so it is left out."""
        if os.geteuid() != 0:
            return []
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        return [f"user {user} {group};"]

    def _binary(self) -> Path:
        path = find_nginx(self._nginx)
        if path is None:
            where = self._nginx or f"{TOOLS_NGINX} or PATH"
            raise RouterError(
                f"nginx not found ({where}); run `bash scripts/fetch-tools.sh` to unpack "
                "Debian's nginx into .tools/"
            )
        return path

    def _cmd(self, *extra: str) -> list[str]:
        # -e: the log nginx writes before it has read error_log (the build's default may be a
        # system path); -p: relative paths resolve here, not under the compiled-in prefix.
        return [
            str(self._binary()), "-p", f"{self.workdir}/", "-c", str(self.conf),
            "-e", str(self.error_log), *extra,
        ]  # fmt: skip

    def _write_and_test(self, text: str) -> None:
        """Test the config with ``nginx -t`` before it replaces the running one: a reload of a
        broken config would be logged and ignored, and the old split silently kept."""
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        candidate = self.workdir / "nginx.conf.next"
        candidate.write_text(text)
        test = self._cmd("-t", "-q")
        test[test.index("-c") + 1] = str(candidate)
        done = subprocess.run(test, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RouterError(f"nginx rejected {candidate}: {(done.stderr or done.stdout).strip()}")
        os.replace(candidate, self.conf)

    # --- process -------------------------------------------------------------------------

    def start(self) -> "NginxRouter":
        """Start nginx; ready once its master holds the listening socket and a worker runs."""
        if self.pid is not None:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_and_test(self.render())
        self._spawn(self._cmd(), log=self.workdir / "nginx.out")
        try:
            # The listener must be our master's: nginx retries bind() for a while when the
            # port is taken, and another server answering there is not this router.
            if self._await(self._ready, START_TIMEOUT, poll=0.05):
                return self
            if (code := self.exit_code) is not None:
                raise RouterError(
                    f"nginx exited with code {code} before it was ready; "
                    f"see {self.error_log}: {self._log_tail()}"
                )
            raise RouterError(f"nginx not ready on {self.url} in {START_TIMEOUT}s")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        assert self.proc is not None
        if not PROC.is_dir():  # no /proc: a connection must be accepted
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1):
                return True
            return False
        return owns_listener(self.proc.pid, self.port) and bool(_worker_pids(self.proc.pid))

    def _reload(self) -> None:
        """SIGHUP the master, then wait until a new worker runs and no old worker accepts.

        The master starts the new workers and tells the old ones to quit only ~100 ms later;
        until then both accept. An old worker that got the quit closes its listening sockets
        (the shared socket stays open in the master and new workers, so queued connections
        are not lost) and its idle connections, then finishes its requests.
        """
        assert self.proc is not None
        master = self.proc.pid
        old = set(_worker_pids(master))
        os.kill(master, signal.SIGHUP)
        if not PROC.is_dir():  # workers cannot be watched: wait out the master's 100 ms
            time.sleep(0.5)
            return
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RouterError(f"nginx exited during a reload; see {self.error_log}")
            workers = _worker_pids(master)
            new = set(workers) - old
            accepting_old = [
                pid for pid in old if pid in workers and "shutting down" not in workers[pid]
            ]
            if new and not accepting_old:
                return
            time.sleep(0.02)
        raise RouterError(
            f"nginx did not reload in {RELOAD_TIMEOUT}s; see {self.error_log}: {self._log_tail()}"
        )

    def stop(self) -> None:
        """Stop nginx: graceful quit (in-flight requests finish), then TERM, then KILL the
        whole process group, so no master or worker outlives the router."""
        self._terminate()

    def _log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.error_log.read_text().strip().splitlines()[-lines:])
        except OSError:
            return "(no error log)"

    def __repr__(self) -> str:
        mirror = f", mirror={self._mirror}" if self._mirror else ""
        return f"NginxRouter({self.url}, candidate={self._split}%{mirror})"
