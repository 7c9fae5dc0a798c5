"""A real cluster: kind + KServe (Serverless, Knative + Istio). Skipped unless
CONVEYOR_E2E_CONTEXT names a kubeconfig context; the recipe is tests/e2e/README.md.

Runs the same plugin and actions the fake API tests run, against the real KServe controller,
and checks the traffic split KServe reports at every step.
"""

import os

import pytest

from conveyor.cli.kubectl import main
from conveyor.rollout import actions
from conveyor.rollout.cluster import KubeCluster

pytestmark = pytest.mark.e2e

CONTEXT = os.environ.get("CONVEYOR_E2E_CONTEXT", "")
NAMESPACE = os.environ.get("CONVEYOR_E2E_NAMESPACE", "conveyor-e2e")
MODEL = os.environ.get("CONVEYOR_E2E_MODEL", "fraud")
V1, V2 = os.environ.get("CONVEYOR_E2E_V1", "1"), os.environ.get("CONVEYOR_E2E_V2", "2")

if not CONTEXT:
    pytest.skip(
        "needs a kind + KServe cluster: set CONVEYOR_E2E_CONTEXT (see tests/e2e/README.md)",
        allow_module_level=True,
    )


def conveyor(*argv: str) -> None:
    code = main([*argv, "--context", CONTEXT, "-n", NAMESPACE])
    assert code == 0, f"kubectl conveyor {' '.join(argv)} exited {code}"


def split(cluster: KubeCluster) -> dict[str, int]:
    s = actions.status(cluster, MODEL)
    out: dict[str, int] = {}
    for t in s["traffic"]:
        out[t["modelVersion"]] = out.get(t["modelVersion"], 0) + int(t.get("percent") or 0)
    return {k: v for k, v in out.items() if v}


def test_canary_rollback_then_promote_on_real_kserve() -> None:
    cluster = KubeCluster(NAMESPACE, context=CONTEXT)
    conveyor("canary", MODEL, "--model", MODEL, "--version", V1, "--percent", "0")
    actions.wait_ready(cluster, MODEL, timeout=600)
    assert split(cluster) == {V1: 100}

    conveyor("canary", MODEL, "--version", V2, "--percent", "10", "--reason", "e2e")
    actions.wait_ready(cluster, MODEL, timeout=600)
    assert split(cluster) == {V1: 90, V2: 10}

    conveyor("rollback", MODEL, "--reason", "e2e rollback")
    actions.wait_ready(cluster, MODEL, timeout=600)
    assert split(cluster) == {V1: 100}

    conveyor("canary", MODEL, "--version", V2, "--percent", "50", "--reason", "e2e")
    actions.wait_ready(cluster, MODEL, timeout=600)
    conveyor("promote", MODEL, "--reason", "e2e promote")
    actions.wait_ready(cluster, MODEL, timeout=600)
    assert split(cluster) == {V2: 100}
