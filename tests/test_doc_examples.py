"""The `curl` examples of README.md and manifests/README.md, run as written with the real
`curl` against a real model server and score-log receiver on 127.0.0.1: a documented request
that stops working (a renamed feature, a changed path, a body that is not JSON) fails here.

Each command is run verbatim; only the connection is redirected (`curl --connect-to`), so the
documented URL and Host stay what a user sends. Examples run in document order, because the
feedback example labels the response of the predict example before it."""

import json
import math
import os
import re
import shlex
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from conveyor.local.model_server import LocalServer
from conveyor.rollout.scorelog import CE_RESPONSE, ScoreLogServer
from tests.conftest import ROOT
from tests.rollout.test_scorelog import kserve_headers

# The curl examples each file holds today: finding fewer means one was lost or no longer parses.
DOCS = {"README.md": 2, "manifests/README.md": 2}

# Documented host:port -> the local server that plays it.
HOSTS = {
    "127.0.0.1:8080": "model",  # `conveyor serve`'s default address
    "fraud.conveyor-dev.example.com:80": "model",  # the InferenceService's external host
    "conveyor-scorelog.conveyor-dev.svc.cluster.local:80": "scorelog",
}

FENCE = re.compile(r"^[ \t]*```(?:bash|sh|shell|console)[ \t]*\n(.*?)^[ \t]*```", re.M | re.S)
DATA_FLAGS = ("-d", "--data", "--data-raw", "--data-binary")
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@dataclass(frozen=True)
class Example:
    """One documented curl command: where it is and its arguments as the shell splits them."""

    doc: str
    line: int
    argv: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    def option(self, *flags: str) -> list[str]:
        """The values given to any of ``flags`` (written ``-H value``), in order."""
        args = self.argv[1:]
        return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg in flags]

    @property
    def url(self) -> str:
        urls = [a for a in self.argv[1:] if a.startswith(("http://", "https://"))]
        assert len(urls) == 1, f"{self.where}: expected one http(s) URL in {self.argv}"
        return urls[0]

    @property
    def host(self) -> str:
        """``host:port`` of the URL, the key of HOSTS."""
        url = urlsplit(self.url)
        return f"{url.hostname}:{url.port or 80}"

    @property
    def body(self) -> Any:
        data = self.option(*DATA_FLAGS)
        assert len(data) == 1, f"{self.where}: expected one request body"
        return json.loads(data[0])

    @property
    def headers(self) -> dict[str, str]:
        pairs = (h.split(":", 1) for h in self.option("-H", "--header"))
        return {k.strip().lower(): v.strip() for k, v in pairs}


def shell_commands(block: str) -> Iterator[tuple[int, list[str]]]:
    """(first line offset, argv) of each command in a shell block: backslash continuations
    joined, a quote left open carried to the next line, `$ ` prompts and comments dropped."""
    buffer, start = "", 0
    for offset, raw in enumerate(block.splitlines()):
        line = raw[2:] if not buffer and raw.startswith("$ ") else raw
        if not buffer:
            start = offset
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        try:
            argv = shlex.split(buffer, comments=True)
        except ValueError:  # an open quote: the command goes on
            buffer += "\n"
            continue
        buffer = ""
        if argv:
            yield start, argv
    assert not buffer.strip(), f"unterminated command: {buffer!r}"


def curl_examples(doc: str, text: str) -> list[Example]:
    """Every curl command in the file's bash/sh/shell/console fenced blocks."""
    found = []
    for block in FENCE.finditer(text):
        first = text.count("\n", 0, block.start(1)) + 1
        for offset, argv in shell_commands(textwrap.dedent(block.group(1))):
            if argv[0] == "curl":
                found.append(Example(doc, first + offset, tuple(argv)))
    return found


def rows_sent(body: Any) -> int:
    """Rows in a V1 body (records, columns or positional rows) or a V2 body (tensors)."""
    if "inputs" in body and isinstance(body["inputs"], list) and body["inputs"]:
        first = body["inputs"][0]
        if isinstance(first, dict) and "shape" in first:
            return int(first["shape"][0])
    instances = body.get("instances", body.get("inputs"))
    if len(instances) == 1 and all(isinstance(v, list) for v in instances[0].values()):
        return len(next(iter(instances[0].values())))  # columns: one object of lists
    return len(instances)


def check_answer(example: Example, answer: Any) -> None:
    """The answer carries one result per row sent: [p0, p1] per V1 row, a [n, 2] V2 tensor,
    and a feedback item matched with one label per row."""
    path = urlsplit(example.url).path
    body = example.body
    if re.fullmatch(r"/v1/models/[\w-]+:predict", path):
        predictions = answer["predictions"]
        assert len(predictions) == rows_sent(body), answer
        assert all(len(p) == 2 and math.isclose(sum(p), 1.0) for p in predictions), answer
    elif re.fullmatch(r"/v2/models/[\w-]+/infer", path):
        output = answer["outputs"][0]
        assert output["shape"] == [rows_sent(body), 2], answer
        assert len(output["data"]) == 2 * rows_sent(body), answer
    elif path == "/feedback":
        labels = body.get("labels", [body.get("label")])
        assert (answer["outcome"], answer["rows"]) == ("matched", len(labels)), answer
    else:
        raise AssertionError(f"{example.where}: no check for {path}; add one to check_answer")


def run_curl(example: Example, ports: dict[str, int]) -> tuple[int, str]:
    """The documented command with the real curl, connected to the local server playing its
    host; (HTTP status, body)."""
    host = example.host
    assert host in HOSTS, f"{example.where}: {host} is played by no local server; add it to HOSTS"
    argv = [
        *example.argv,
        "-sS",
        "--noproxy", "*",
        "--max-time", "60",
        "--connect-to", f"{host}:127.0.0.1:{ports[HOSTS[host]]}",
        "-w", "\n%{http_code}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=90, check=False)
    assert done.returncode == 0, f"{example.where}: curl exit {done.returncode}: {done.stderr}"
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


@pytest.fixture(scope="module")
def servers(fraud_models: Any) -> Iterator[dict[str, Any]]:
    """A trained fraud model served as `conveyor serve` serves it, and a score-log receiver."""
    with (
        LocalServer(fraud_models.dirs["1"], "fraud", "1") as model,
        ScoreLogServer("127.0.0.1", 0) as scorelog,
    ):
        yield {"model": model, "scorelog": scorelog}


@pytest.mark.unit
def test_shell_commands_are_split_as_a_shell_would() -> None:
    block = "$ curl -d '{\"a\":\n 1}' \\\n  http://h/x   # note\n# only a comment\necho hi\n"
    assert list(shell_commands(block)) == [
        (0, ["curl", "-d", '{"a":\n 1}', "http://h/x"]),
        (4, ["echo", "hi"]),
    ]


@pytest.mark.unit
@pytest.mark.parametrize("doc", sorted(DOCS))
def test_the_docs_hold_their_curl_examples(doc: str) -> None:
    """A lost or unparseable example would otherwise pass by not being run."""
    examples = curl_examples(doc, (ROOT / doc).read_text())
    assert len(examples) >= DOCS[doc], [e.where for e in examples]
    for example in examples:
        assert example.host in HOSTS, example.where
        example.body  # noqa: B018 - parses: a placeholder like `...` is not JSON


@pytest.mark.integration
@pytest.mark.parametrize("doc", sorted(DOCS))
def test_curl_examples_answer_as_documented(doc: str, servers: dict[str, Any]) -> None:
    """Each example, in document order, returns 200 and one result per row it sent."""
    ports = {role: server.port for role, server in servers.items()}
    examples = curl_examples(doc, (ROOT / doc).read_text())
    assert examples
    with httpx.Client(trust_env=False, timeout=10.0) as http:
        for example in examples:
            status, text = run_curl(example, ports)
            assert status == 200, f"{example.where}: HTTP {status}: {text[:500]}"
            check_answer(example, json.loads(text))
            ce_id = example.headers.get("ce-id")
            if ce_id and HOSTS[example.host] == "model":
                # What KServe's agent does on the cluster (logger mode: response): the
                # predictor's 200 answer goes to the score log under the request's ce-id.
                logged = http.post(
                    f"{servers['scorelog'].url}/log?model=fraud&version=1",
                    content=text.encode(),
                    headers=kserve_headers(CE_RESPONSE, **{"Ce-Id": ce_id}),
                )
                assert logged.json()["outcome"] == "observed", logged.text
