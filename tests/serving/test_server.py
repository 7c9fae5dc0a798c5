"""The model server against a hostile client: a fixed corpus of malformed requests, sent to a
real server on 127.0.0.1 serving a really trained model. A client's mistake is a 4xx with a
message, never a 5xx (the rollout's error-rate check counts 5xx: a bad client must not roll back
a healthy model), and the server neither changes its answers nor grows after the corpus."""

import json
import random
from pathlib import Path
from typing import Any

import pytest

from conveyor.local.model_server import LocalServer
from conveyor.serving.client import ModelClient

pytestmark = pytest.mark.integration

NUMERIC_BAD = [True, False, "inf", "-Infinity", "nan", "NaN", "1e400", "", "twelve", [1.0], [],
               {"v": 1}, "x" * 10_000]  # fmt: skip
CATEGORICAL_BAD = [3, 2.5, True, [1], ["a"], {"v": 1}]
ACCEPTED = {"numeric": [None, 0, -1, 1e300, "12.5", 7], "categorical": [None, "unseen-value", ""]}


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def _record(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        **{c: 1.5 for c in spec["numeric"]},
        **{c: spec["categories"][c][0] for c in spec["categorical"]},
    }


def _junk(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value: the body a broken client or a scanner sends."""
    kinds = ["int", "float", "str", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "list":
        return [_junk(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "dict":
        keys = ["instances", "inputs", "name", "data", "shape", "datatype", "amount", "x"]
        return {rng.choice(keys): _junk(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return {"int": rng.randint(-(2**70), 2**70), "float": rng.uniform(-1e6, 1e6),
            "str": rng.choice(["", "a", "\u00e9\u4e2d", "0"]), "bool": rng.random() < 0.5,
            "null": None}[kind]  # fmt: skip


def corpus(spec: dict[str, Any]) -> list[tuple[str, str, Any, bool]]:
    """(name, protocol, body, accepted?) for every case; bodies are JSON-able except where a
    literal NaN/Infinity is the point (sent as raw text)."""
    good = _record(spec)
    num, cat = spec["numeric"], spec["categorical"]
    order = [*num, *cat]
    cases: list[tuple[str, str, Any, bool]] = []
    for kind, columns in (("numeric", num), ("categorical", cat)):
        bad = NUMERIC_BAD if kind == "numeric" else CATEGORICAL_BAD
        for col in columns:
            for value in bad:
                cases.append((f"v1 record {col}={value!r:.20}", "v1",
                              {"instances": [{**good, col: value}]}, False))  # fmt: skip
            for value in ACCEPTED[kind]:
                cases.append((f"v1 record {col}={value!r:.20} ok", "v1",
                              {"instances": [{**good, col: value}]}, True))  # fmt: skip
        cases.append(
            (
                f"v1 record without {columns[0]}",
                "v1",
                {"instances": [{k: v for k, v in good.items() if k != columns[0]}]},
                False,
            )
        )
    columns = {k: [v, v] for k, v in good.items()}
    cases += [
        ("v1 columns", "v1", {"instances": [columns]}, True),
        ("v1 positional", "v1", {"instances": [[good[c] for c in order]]}, True),
        ("v1 positional short", "v1", {"instances": [[good[c] for c in order[:-1]]]}, False),
        ("v1 columns ragged", "v1", {"instances": [{**columns, num[0]: [1.0]}]}, False),
        ("v1 mixed shapes", "v1", {"instances": [good, [1.0]]}, False),
        ("v1 no instances", "v1", {"foo": 1}, False),
        ("v1 instances object", "v1", {"instances": good}, False),
        ("v1 too many rows", "v1", {"instances": [good] * 10_001}, False),
        ("v1 NaN literal", "v1", json.dumps({"instances": [good]}).replace("1.5", "NaN", 1), False),
        ("v1 Infinity literal", "v1",
         json.dumps({"instances": [good]}).replace("1.5", "-Infinity", 1), False),
        ("v1 not json", "v1", "{instances: [", False),
        ("v1 empty body", "v1", "", False),
    ]  # fmt: skip

    def tensor(col: str, **change: Any) -> dict[str, Any]:
        base = {"name": col, "datatype": "FP64" if col in num else "BYTES", "shape": [1],
                "data": [good[col]]}  # fmt: skip
        return {**base, **change}

    def v2(col: str, **change: Any) -> dict[str, Any]:
        return {"inputs": [tensor(c, **change) if c == col else tensor(c) for c in order]}

    cases += [
        ("v2 tensors", "v2", {"inputs": [tensor(c) for c in order]}, True),
        ("v2 pd", "v2", {"inputs": [tensor(c) for c in order],
                         "parameters": {"content_type": "pd"}}, True),
        ("v2 no inputs", "v2", {"inputs": []}, False),
        ("v2 inputs string", "v2", {"inputs": "x"}, False),
        ("v2 one tensor missing", "v2", {"inputs": [tensor(c) for c in order[1:]]}, False),
        ("v2 tensor twice", "v2", {"inputs": [tensor(c) for c in [*order, order[0]]]}, False),
        ("v2 lengths differ", "v2", v2(num[0], shape=[2], data=[1.0, 2.0]), False),
        ("v2 shape mismatch", "v2", v2(num[0], shape=[3]), False),
        ("v2 shape 2-D", "v2", v2(num[0], shape=[1, 2], data=[1.0, 2.0]), False),
        ("v2 no shape", "v2", {"inputs": [{k: v for k, v in tensor(c).items() if k != "shape"}
                                          for c in order]}, False),
        ("v2 datatype FOO", "v2", v2(num[0], datatype="FOO"), False),
        ("v2 INT8 overflow", "v2", v2(num[0], datatype="INT8", data=[100000]), False),
        ("v2 UINT16 negative", "v2", v2(num[0], datatype="UINT16", data=[-1]), False),
        ("v2 INT32 fraction", "v2", v2(num[0], datatype="INT32", data=[1.5]), False),
        ("v2 numeric as BYTES", "v2", v2(num[0], datatype="BYTES", data=["1"]), False),
        ("v2 numeric string", "v2", v2(num[0], data=["1.0"]), False),
        ("v2 numeric bool", "v2", v2(num[0], data=[True]), False),
        ("v2 categorical FP64", "v2", v2(cat[0], datatype="FP64", data=[1.0]), False),
        ("v2 categorical object", "v2", v2(cat[0], data=[{"v": 1}]), False),
        ("v2 NaN literal", "v2",
         json.dumps({"inputs": [tensor(c) for c in order]}).replace("1.5", "NaN", 1), False),
        ("v2 nested data", "v2", v2(num[0], shape=[1, 1], data=[[1.5]]), True),
    ]  # fmt: skip
    rng = random.Random(17)
    for i in range(120):
        body = _junk(rng)
        if isinstance(body, dict):
            body.setdefault(rng.choice(["instances", "inputs"]), _junk(rng, 1))
        cases.append((f"junk {i}", rng.choice(["v1", "v2"]), body, False))
    return cases


def test_corpus_gets_4xx_never_5xx_and_the_server_is_unchanged(fraud_models) -> None:
    spec = fraud_models.spec
    with (
        LocalServer(fraud_models.dirs["1"], "fraud", "1") as server,
        ModelClient(server.url, "fraud") as client,
    ):
        good = {"instances": [_record(spec)]}
        for _ in range(50):  # warm: allocator and caches settle before RSS is read
            baseline = client.v1(good)
        assert server.proc is not None
        rss_before = _rss_kib(server.proc.pid)

        cases = corpus(spec)
        assert len(cases) >= 300
        wrong: list[str] = []
        for name, protocol, body, accepted in cases:
            path = "/v1/models/fraud:predict" if protocol == "v1" else "/v2/models/fraud/infer"
            raw = body if isinstance(body, str) else json.dumps(body)
            resp = client.http.post(server.url + path, content=raw.encode(),
                                    headers={"content-type": "application/json"})  # fmt: skip
            expected = resp.status_code == 200 if accepted else 400 <= resp.status_code < 500
            if not expected or not resp.text:
                wrong.append(f"{name}: {resp.status_code} {resp.text[:200]}")
        assert not wrong, "\n".join(wrong)

        after = client.v1(good)
        assert after.status == 200 and after.body == baseline.body
        grown = _rss_kib(server.proc.pid) - rss_before
        assert grown < 64 * 1024, f"server RSS grew {grown} KiB over the corpus"
        metrics = client.http.get(server.url + "/metrics").text
        served_500 = [
            line
            for line in metrics.splitlines()
            if line.startswith("conveyor_requests_total") and 'code="500"' in line
        ]
        assert served_500 == []  # fmt: skip
