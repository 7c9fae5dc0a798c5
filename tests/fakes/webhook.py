"""A webhook receiver on 127.0.0.1 for notification tests: it records every JSON POST and can
answer a path with scripted statuses, the way Slack, a chat bridge or a pager endpoint would."""

import json
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.http import BackgroundServer


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class WebhookReceiver(BackgroundServer):
    """Records requests; ``statuses[path]`` are answered in order (then 200). Error bodies echo
    the request path, as a careless server might (so tests see whether a secret path leaks)."""

    thread_name = "webhook-receiver"

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.statuses: dict[str, list[int]] = {}

    def bodies(self, path: str) -> list[Any]:
        return [r.body for r in self.requests if r.path == path]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = dict(self.headers.items())
                rec.requests.append(Request("POST", self.path, headers, json.loads(raw)))
                queue = rec.statuses.get(self.path, [])
                status = queue.pop(0) if queue else 200
                reply = b"ok" if status < 400 else f"error for {self.path}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
