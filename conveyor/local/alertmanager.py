"""A real Alertmanager on 127.0.0.1 for tests (Debian's binary from `make tools`, in .tools/bin;
CONVEYOR_TOOLS points elsewhere).

Grouping, timing and the webhook payload are Alertmanager's own behaviour, not something a
stub would get right by construction: ``AlertmanagerServer`` runs the real binary with one
route to one webhook, so a test sees exactly what a receiver behind a production Alertmanager
would get. It writes its own alertmanager.yml, keeps its state in a temporary folder, listens on
a free port and runs without the HA cluster listener, so tests never touch a system Alertmanager
or each other. ``alerts()`` reads the HTTP API directly, for the same reason as local.prometheus'
helpers: the fixture must not depend on the code under test.
"""

import json
from pathlib import Path
from typing import Any

import httpx

from conveyor.local.prometheus import LocalToolServer

__all__ = ["RECEIVER", "AlertmanagerServer"]


RECEIVER = "conveyor-test"
GROUP_BY = ("alertname", "namespace", "inferenceservice", "version")

# scripts/fetch-tools.sh rewrites the Debian binary's absolute template folder
# (/usr/share/prometheus/alertmanager) to this path, relative to the working directory.
TEMPLATES_LINK = ".conveyor-alertmanager-templates"


def config_yaml(webhook_url: str) -> str:
    """alertmanager.yml: every alert to one webhook, sent at once and never resent in a test.

    ``group_wait: 0s`` posts a new group immediately and ``group_interval: 1s`` posts a changed
    one within a second; ``repeat_interval: 1h`` keeps an unchanged group from being posted twice.
    """
    group_by = ", ".join(f"'{label}'" for label in GROUP_BY)
    lines = [
        "route:",
        f"  receiver: {RECEIVER}",
        f"  group_by: [{group_by}]",
        "  group_wait: 0s",
        "  group_interval: 1s",
        "  repeat_interval: 1h",
        "receivers:",
        f"  - name: {RECEIVER}",
        "    webhook_configs:",
        # A JSON string is a valid YAML double-quoted scalar, whatever the URL holds.
        f"      - url: {json.dumps(webhook_url)}",
        "        send_resolved: false",
    ]
    return "\n".join(lines) + "\n"


class AlertmanagerServer(LocalToolServer):
    """``with AlertmanagerServer("http://127.0.0.1:8080/hook") as am: am.url ...``"""

    tool = "alertmanager"

    def __init__(self, webhook_url: str, *, startup_timeout: float = 30.0) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.webhook_url = webhook_url

    @property
    def config_file(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "alertmanager.yml"

    def _argv(self, port: int, workdir: Path) -> list[str]:
        return [
            f"--config.file={self.config_file}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            # Empty disables the HA cluster (gossip) listener, which binds 0.0.0.0:9094 and so
            # would clash between two servers and listen beyond loopback.
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def _prepare(self, binary: Path, workdir: Path) -> None:
        self.config_file.write_text(config_yaml(self.webhook_url))
        # Debian's build loads default.tmpl at run time and exits without it. Its templates sit
        # beside the binary's bin/ folder: .tools/alertmanager-pkg/usr/share/... after
        # fetch-tools, /usr/share/... for an installed package (which reads them there anyway).
        # An upstream build embeds them and has no such folder: then there is nothing to link.
        templates = binary.resolve().parents[1] / "share" / "prometheus" / "alertmanager"
        if templates.is_dir():
            (workdir / TEMPLATES_LINK).symlink_to(templates, target_is_directory=True)

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds now (GET /api/v2/alerts), as its JSON."""
        response = httpx.get(f"{self.url}/api/v2/alerts", timeout=5.0)
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts
