"""The score-log receiver's pending responses survive a killed process: the real
`conveyor scorelog` on 127.0.0.1 with a state dir, SIGKILLed while events and feedback are
streaming in, started again on the same directory. Every logged response it acknowledged
(200) still takes its labels; every feedback it acknowledged stays applied.

KServe's agent does not retry a failed delivery, so an event in flight at the kill may or may
not have been kept; these tests hold the receiver to what it answered, nothing more.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conveyor.errors import ScoreLogError
from conveyor.lifecycle import free_port
from conveyor.rollout.metrics import SCORE_BUCKETS
from conveyor.rollout.scorelog import STATE_DIR_ENV, STATE_FILE, ScoreLogServer
from tests.rollout.test_scorelog import (
    cumulative,
    feedback,
    post,
    respond,
    scrape,
    scrape_feedback,
    v1_proba,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCORELOG_EXIT = ScoreLogError.exit_code


@dataclass
class Receiver:
    """A `conveyor scorelog` process on a state dir."""

    proc: subprocess.Popen[str]
    url: str

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit, no checkpoint of the sqlite WAL."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "conveyor.cli", "scorelog", "--host", "127.0.0.1", *args]


def env_for(state_dir: Path) -> dict[str, str]:
    return {**os.environ, STATE_DIR_ENV: str(state_dir), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def receivers(client: httpx.Client) -> Iterator[Any]:
    """start(state_dir, *args) -> a ready Receiver; every one is killed at the end."""
    started: list[Receiver] = []

    def start(state_dir: Path, *args: str) -> Receiver:
        port = free_port()
        proc = subprocess.Popen(
            cli("--port", str(port), *args),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env_for(state_dir),
        )  # fmt: skip
        receiver = Receiver(proc, f"http://127.0.0.1:{port}")
        started.append(receiver)
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if client.get(f"{receiver.url}/healthz").status_code == 200:
                    return receiver
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "conveyor scorelog not ready in 30 s"
            time.sleep(0.05)

    yield start
    for receiver in started:
        if receiver.proc.poll() is None:
            receiver.kill()
        if receiver.proc.stdout:
            receiver.proc.stdout.close()


# One connection per request: on a kept-alive connection the receiver's answer (headers, then
# body, two writes) waits ~40 ms for the client's delayed ACK, which would hide the moment
# between a commit and its answer that a kill must be able to hit.
CLOSE = {"Connection": "close"}


def new_client() -> httpx.Client:
    return httpx.Client(timeout=10.0, headers=CLOSE)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with new_client() as c:
        yield c


def metric(client: httpx.Client, url: str, name: str) -> float:
    return float(scrape_feedback(client, url)[name])


# -------------------------------------------------------------------- the stream and the kill


def scores_of(n: int) -> list[float]:
    """The scores of response n: 1 to 3 rows, each in (0, 1)."""
    return [round(0.013 + ((n * 37 + row * 11) % 97) / 100, 3) for row in range(1 + n % 3)]


def labels_of(n: int) -> list[int]:
    return [(n + row) % 2 for row in range(1 + n % 3)]


def mirrored(n: int) -> bool:
    """Every 5th response is also logged by version 2 (an Istio mirror copies the ce-id)."""
    return n % 5 == 0


@dataclass
class Stream:
    """What the receiver acknowledged before it was killed, and what was in flight."""

    logged: set[int] = field(default_factory=set)  # /log answered 200 (both copies if mirrored)
    labelled: set[int] = field(default_factory=set)  # /feedback answered 200 matched
    in_flight_logs: set[int] = field(default_factory=set)  # no answer: the kill came first
    in_flight_labels: set[int] = field(default_factory=set)
    wrong: list[str] = field(default_factory=list)  # answers that were not 200 before the kill
    lock: threading.Lock = field(default_factory=threading.Lock)
    kill_pid: int = 0  # SIGKILLed by the logger that gets the kill_at-th acknowledgement
    kill_at: int = 0


def log_response(client: httpx.Client, url: str, n: int) -> str | None:
    """Log response n (twice if mirrored); None when acknowledged, else the answer."""
    for version in ("1", "2") if mirrored(n) else ("1",):
        answer = post(client, url, v1_proba(scores_of(n)), query=f"model=fraud&version={version}",
                      **{"Ce-Id": f"txn-{n}"})  # fmt: skip
        if (answer.status_code, answer.json()["outcome"]) != (200, "observed"):
            return answer.text
    return None


def label(client: httpx.Client, url: str, n: int) -> httpx.Response:
    return feedback(client, url, {"id": f"txn-{n}", "labels": labels_of(n)})


def stream_logs(url: str, numbers: range, stream: Stream, stop: threading.Event) -> None:
    with new_client() as client:
        for n in numbers:
            if stop.is_set():
                return
            try:
                wrong = log_response(client, url, n)
            except httpx.TransportError:
                with stream.lock:
                    stream.in_flight_logs.add(n)
                return
            with stream.lock:
                if wrong is not None:
                    stream.wrong.append(f"log {n}: {wrong}")
                    return
                stream.logged.add(n)
                if len(stream.logged) == stream.kill_at:
                    # at once: an answer sent before its commit would be lost here
                    os.kill(stream.kill_pid, signal.SIGKILL)


def stream_labels(url: str, stream: Stream, stop: threading.Event) -> None:
    """Label acknowledged responses as they come: the oldest unlabelled first."""
    tried: set[int] = set()
    with new_client() as client:
        while not stop.is_set():
            with stream.lock:
                todo = sorted(stream.logged - stream.labelled - stream.in_flight_labels - tried)
            if not todo:
                time.sleep(0.001)
                continue
            n = todo[0]
            tried.add(n)
            try:
                answer = label(client, url, n)
            except httpx.TransportError:
                with stream.lock:
                    stream.in_flight_labels.add(n)
                return
            with stream.lock:
                if answer.json()["outcome"] == "matched":
                    stream.labelled.add(n)
                else:
                    stream.wrong.append(f"label {n}: {answer.text}")
                    return


def test_a_receiver_killed_mid_stream_loses_no_acknowledged_event(
    tmp_path: Path, receivers: Any, client: httpx.Client
) -> None:
    state = tmp_path / "state"
    first = receivers(state)
    stream = Stream()
    # Before the stream: 120 responses logged, 40 of them labelled.
    for n in range(120):
        assert log_response(client, first.url, n) is None
        stream.logged.add(n)
    for n in range(40):
        assert label(client, first.url, n).json()["outcome"] == "matched"
        stream.labelled.add(n)

    # The stream: four loggers and a labeller at once, SIGKILLed the moment the 150th more
    # response is acknowledged, while others are in flight; three times over, each time
    # started again on the same directory.
    receiver = first
    for kill in range(3):
        stream.kill_pid, stream.kill_at = receiver.proc.pid, len(stream.logged) + 150
        stop = threading.Event()
        numbers = [range(1000 * (kill + 1) + i, 1000 * (kill + 2), 4) for i in range(4)]
        threads = [
            threading.Thread(target=stream_logs, args=(receiver.url, ns, stream, stop))
            for ns in numbers
        ] + [threading.Thread(target=stream_labels, args=(receiver.url, stream, stop))]
        for thread in threads:
            thread.start()
        try:
            receiver.proc.wait(timeout=60)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert stream.wrong == []
        assert receiver.proc.returncode == -signal.SIGKILL
        if kill < 2:
            receiver = receivers(state)

    second = receivers(state)
    pending_at_start = metric(client, second.url, "conveyor_feedback_pending")
    # Acknowledged feedback stayed applied: those ids wait for nothing.
    for n in sorted(stream.labelled):
        answer = label(client, second.url, n)
        assert (answer.status_code, answer.json()["outcome"]) == (404, "unknown_id"), n
    # Every acknowledged response still takes its labels, with the scores it was logged with;
    # a tenth of them are kept back and must be exactly what is still pending at the end.
    must_match = sorted(stream.logged - stream.labelled - stream.in_flight_labels)
    kept_back = set(must_match[::10])
    matched: dict[int, list[str]] = {}  # n -> the versions its feedback labelled
    numbers = [n for n in must_match if n not in kept_back]
    batch = [{"id": f"txn-{n}", "labels": labels_of(n)} for n in numbers]
    results = feedback(client, second.url, batch).json()["results"]
    for n, result in zip(numbers, results, strict=True):
        assert result["outcome"] == "matched", (n, result)
        where = "fraud v1, fraud v2" if mirrored(n) else "fraud v1"
        assert result["message"] == f"{where}: {len(labels_of(n))} rows labelled"
        matched[n] = ["1", "2"] if mirrored(n) else ["1"]
    # In flight at the kill: kept or not (a mirrored one perhaps by version 1 only), but
    # never answered twice.
    for n in sorted(stream.in_flight_logs | stream.in_flight_labels):
        answer = label(client, second.url, n)
        assert answer.json()["outcome"] in ("matched", "unknown_id"), answer.text
        if answer.json()["outcome"] == "matched":
            where = answer.json()["message"].split(":")[0]
            matched[n] = [part.removeprefix("fraud v") for part in where.split(", ")]

    assert metric(client, second.url, "conveyor_feedback_pending") == len(kept_back)
    assert pending_at_start == len(matched) + len(kept_back)
    # The labelled scores are the logged ones, to the bit: bucket by bucket, per version/label.
    expected: dict[tuple[str, str, str], list[float]] = {}
    for n, versions in matched.items():
        for version in versions:
            for score, y in zip(scores_of(n), labels_of(n), strict=True):
                expected.setdefault(("fraud", version, str(y)), []).append(score)
    buckets = scrape_feedback(client, second.url)["buckets"]
    assert set(expected) <= set(buckets)
    assert buckets == {key: cumulative(expected.get(key, [])) for key in buckets}
    # The restarted receiver's own counters start at 0 (a counter reset for Prometheus).
    assert scrape(client, second.url)["events"]["observed"] == 0

    rest = [{"id": f"txn-{n}", "labels": labels_of(n)} for n in sorted(kept_back)]
    results = feedback(client, second.url, rest).json()["results"]
    assert {r["outcome"] for r in results} == {"matched"}
    assert metric(client, second.url, "conveyor_feedback_pending") == 0


def test_eviction_order_survives_a_restart(
    tmp_path: Path, receivers: Any, client: httpx.Client
) -> None:
    state = tmp_path / "state"
    first = receivers(state, "--max-pending", "3")
    for ce_id in ("e0", "e1", "e2"):
        respond(client, first.url, ce_id, [0.5])
    respond(client, first.url, "e0", [0.6])  # logged again: the most recent now
    first.kill()

    second = receivers(state, "--max-pending", "3")
    assert metric(client, second.url, "conveyor_feedback_pending") == 3
    respond(client, second.url, "e3", [0.7])  # the fourth id: e1, the least recent, goes
    respond(client, second.url, "e3", [0.8], version="2")  # a mirror's copy: a 2nd entry
    assert metric(client, second.url, "conveyor_feedback_evicted_total") == 1
    evicted = feedback(client, second.url, {"id": "e1", "label": 1})
    assert (evicted.status_code, evicted.json()["outcome"]) == (404, "unknown_id")
    second.kill()

    # Restarted with room for two: the least recent of e2, e0, e3 (e2) is evicted on load.
    third = receivers(state, "--max-pending", "2")
    assert metric(client, third.url, "conveyor_feedback_pending") == 2
    assert metric(client, third.url, "conveyor_feedback_evicted_total") == 1
    # the versions of the restored responses are exported at 0 before any event arrives
    zero = [0.0] * len(SCORE_BUCKETS)
    assert scrape_feedback(client, third.url)["buckets"] == {
        ("fraud", v, y): zero for v in ("1", "2") for y in ("0", "1")
    }
    kept = feedback(client, third.url, [{"id": i, "label": 1} for i in ("e2", "e0", "e3")])
    results = kept.json()["results"]
    assert [r["outcome"] for r in results] == ["unknown_id", "matched", "matched"]
    assert results[2]["message"] == "fraud v1, fraud v2: 1 rows labelled"
    metrics = scrape_feedback(client, third.url)
    # e0's retry replaced its first response: 0.6 is labelled, not 0.5
    assert metrics["buckets"][("fraud", "1", "1")] == cumulative([0.6, 0.7])
    assert metrics["buckets"][("fraud", "2", "1")] == cumulative([0.8])


def test_clean_stop_and_restart_in_process(tmp_path: Path, client: httpx.Client) -> None:
    with ScoreLogServer("127.0.0.1", 0, state_dir=tmp_path) as receiver:
        respond(client, receiver.url, "a", [0.2, 0.9])
        respond(client, receiver.url, "b", [0.4])
        assert feedback(client, receiver.url, {"id": "b", "label": 0}).status_code == 200
    with pytest.raises(ScoreLogError, match=r"released its state dir .*make a new ScoreLogServer"):
        receiver.start()
    with ScoreLogServer("127.0.0.1", 0, state_dir=tmp_path) as again:
        assert again.scorelog.pending() == 1
        # restored versions are exported at 0, so increase() sees their first event
        assert scrape(client, again.url)["buckets"][("fraud", "1")][1.0] == 0
        answer = feedback(client, again.url, {"id": "a", "labels": [0, 1]})
        assert answer.json()["message"] == "fraud v1: 2 rows labelled"
    # without a state dir nothing is written anywhere
    with ScoreLogServer("127.0.0.1", 0) as memory:
        respond(client, memory.url, "c", [0.1])
        assert memory.state_dir is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE]


def test_a_failed_commit_is_answered_503_and_changes_nothing(
    tmp_path: Path, client: httpx.Client
) -> None:
    """A full disk: the event is not acknowledged, not observed, and not pending; what was
    pending before stays pending and the receiver recovers once there is room again."""
    with ScoreLogServer("127.0.0.1", 0, state_dir=tmp_path) as receiver:
        url = receiver.url
        respond(client, url, "kept", [0.3])
        store = receiver.scorelog._store
        assert store is not None
        # sqlite's own size cap stands in for a full volume (SQLITE_FULL); the receiver is
        # idle, so the test may use its connection for the two pragmas
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count={pages}")
        big = [0.5] * 2000  # 16 kB of scores: needs new pages
        answer = post(client, url, v1_proba(big), **{"Ce-Id": "lost"})
        assert (answer.status_code, answer.json()["outcome"]) == (503, "unstored")
        assert "fraud v1: not kept for feedback: score-log state" in answer.json()["message"]
        assert "full" in answer.json()["message"]
        assert receiver.scorelog.pending() == 1
        metrics = scrape(client, url)
        assert metrics["events"]["unstored"] == 1
        assert metrics["buckets"][("fraud", "1")][float("inf")] == 1  # "lost" not observed
        gone = feedback(client, url, {"id": "lost", "labels": [1] * 2000})
        assert gone.json()["outcome"] == "unknown_id"

        store._db.execute("PRAGMA max_page_count=1073741823")
        assert post(client, url, v1_proba(big), **{"Ce-Id": "lost"}).status_code == 200
    with ScoreLogServer("127.0.0.1", 0, state_dir=tmp_path) as again:
        assert again.scorelog.pending() == 2


# -------------------------------------------------------------------- a state dir it cannot use


def start_fails(state_dir: Path) -> str:
    """`conveyor scorelog` on ``state_dir``: must exit non-zero at once, with one error line."""
    done = subprocess.run(
        cli("--port", str(free_port())),
        capture_output=True, text=True, env=env_for(state_dir), timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == SCORELOG_EXIT, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "conveyor scorelog on" not in done.stdout  # never listened
    return done.stderr


def test_a_state_dir_it_cannot_use_is_named_at_start(
    tmp_path: Path, receivers: Any, client: httpx.Client
) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    assert start_fails(a_file) == f"error: score-log state dir {a_file} is not a directory\n"
    flag = subprocess.run(  # the same directory given as --state-dir instead of the env var
        cli("--port", str(free_port()), "--state-dir", str(a_file)),
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert flag.returncode == SCORELOG_EXIT
    assert flag.stderr == f"error: score-log state dir {a_file} is not a directory\n"

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / STATE_FILE).write_bytes(os.urandom(8192))
    err = start_fails(corrupt)
    assert f"score-log state {corrupt / STATE_FILE}: file is not a database" in err, err
    assert "move it away" in err

    # a second receiver on the directory of a running one
    shared = tmp_path / "shared"
    running = receivers(shared)
    err = start_fails(shared)
    assert f"score-log state {shared / STATE_FILE}: locked by another process" in err, err
    respond(client, running.url, "still-fine", [0.4])


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` not writable, even by root where it can be (``chattr +i``), else its mode."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False).returncode:
        pytest.skip("root writes whatever the mode says, and chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


@pytest.mark.parametrize("which", ["directory", "file"])
def test_an_unwritable_state_dir_is_named_at_start(tmp_path: Path, which: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    if which == "file":  # a state file from an earlier run, then made read-only
        ScoreLogServer("127.0.0.1", 0, state_dir=state).stop()
    with unwritable(state if which == "directory" else state / STATE_FILE):
        err = start_fails(state)
    assert err.startswith(f"error: score-log state {state / STATE_FILE}: "), err
    assert f"must be writable by uid {os.geteuid()}" in err, err


# -------------------------------------------------------------------- the Deployment


@pytest.mark.unit
@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_deployment_keeps_the_state_on_its_volume(overlay: str) -> None:
    """The pod's state dir is a mounted PVC (the root filesystem stays read-only), written
    by one pod at a time."""
    kubectl = Path(sys.executable).parent / "kubectl"
    rendered = subprocess.run(
        [str(kubectl), "kustomize", str(ROOT / "manifests" / "overlays" / overlay)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    [deployment] = [
        d for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "conveyor-scorelog"
    ]  # fmt: skip
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] == 10001
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    claim = mounts[env[STATE_DIR_ENV]]["persistentVolumeClaim"]["claimName"]
    [pvc] = [
        d for d in docs if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == claim
    ]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert not any(m.get("readOnly") for m in container["volumeMounts"])
