"""Service and task logs end to end: a real manager and agent in one daemon, a process
service that prints lines, and the logs read through the Engine API on the unix socket."""

import asyncio
import json
import re
import shutil
import socket
import tempfile
from pathlib import Path

import aiohttp
import pytest

from shoal.daemon.config import DaemonConfig
from shoal.daemon.node import NodeDaemon
from shoal.engineapi.server import build_app, serve_unix
from shoal.logs.multiplex import STDERR, STDOUT, SYSTEMERR, Demultiplexer
from shoal.manager.logbroker import LogBroker

TIMEOUT = 30
# Five numbered lines at once; then, once the test creates $GO, one line on each stream.
SCRIPT = (
    "i=0; while [ $i -lt 5 ]; do echo line $i; i=$((i+1)); done; "
    'while [ ! -e "$GO" ]; do sleep 0.05; done; echo oops >&2; echo after; exec sleep 1000'
)
DETAILS = re.compile(
    rb"com\.docker\.swarm\.node\.id=(\w+),com\.docker\.swarm\.service\.id=(\w+),"
    rb"com\.docker\.swarm\.task\.id=(\w+) (.*)",
    re.S,
)
TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(check, what=""):
    async def poll():
        while not (result := await check()):  # noqa: ASYNC110 - polls the HTTP API
            await asyncio.sleep(0.05)
        return result

    try:
        return await asyncio.wait_for(poll(), TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"timed out: {what}") from None


class Node:
    def __init__(self, state_dir: Path, sock_dir: Path) -> None:
        addr = f"127.0.0.1:{free_port()}"
        self.sock = sock_dir / "shoal.sock"
        self.daemon = NodeDaemon(
            DaemonConfig(state_dir=state_dir, socket=self.sock, listen_addr=addr, hostname="h1")
        )
        self.go = sock_dir / "go"

    async def start(self) -> None:
        await self.daemon.start()
        self.runner = await serve_unix(build_app(self.daemon), self.sock)
        self.http = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self.sock)))
        resp = await self.http.post("http://shoal/v1.47/swarm/init", json={})
        assert resp.status == 200, await resp.text()

    async def close(self) -> None:
        await self.http.close()
        await self.runner.cleanup()
        await self.daemon.leave(force=True)  # stops the tasks
        await self.daemon.stop()

    async def json(self, method: str, path: str, body=None):
        resp = await self.http.request(method, "http://shoal" + path, json=body)
        return resp.status, await resp.json()

    async def create_logger(self, replicas: int = 2) -> str:
        status, body = await self.json(
            "POST",
            "/v1.47/services/create",
            {
                "Name": "logger",
                "TaskTemplate": {
                    "Runtime": "process",
                    "ContainerSpec": {
                        "Image": "sh",
                        "Args": ["-c", SCRIPT],
                        "Env": [f"GO={self.go}"],
                        "StopGracePeriod": 10**8,
                    },
                },
                "Mode": {"Replicated": {"Replicas": replicas}},
            },
        )
        assert status == 201, body
        return body["ID"]

    async def running_tasks(self, service_id: str) -> list[dict]:
        filters = json.dumps({"service": [service_id], "desired-state": ["running"]})
        _, tasks = await self.json("GET", f"/v1.47/tasks?filters={filters}")
        return [t for t in tasks if t["Status"]["State"] == "running"]

    async def logs(self, path: str, **query) -> tuple[aiohttp.ClientResponse, list]:
        params = {"stdout": "1", "stderr": "1", **query}
        resp = await self.http.get("http://shoal" + path, params=params)
        frames = Demultiplexer().feed(await resp.read()) if resp.status == 200 else []
        return resp, frames

    @property
    def broker(self) -> LogBroker:
        return next(s for s in self.daemon.manager.servicers if isinstance(s, LogBroker))


def by_task(frames: list) -> dict[bytes, list[tuple[int, bytes]]]:
    """Frames (with details) grouped by task id, each as (stream, text)."""
    out: dict[bytes, list[tuple[int, bytes]]] = {}
    for stream, payload in frames:
        m = DETAILS.fullmatch(payload)
        assert m, payload
        out.setdefault(m[3], []).append((stream, m[4]))
    return out


@pytest.fixture
async def node(tmp_path):
    sock_dir = Path(tempfile.mkdtemp(prefix="shoal-logs-"))  # short: unix socket paths are
    try:
        n = Node(tmp_path / "state", sock_dir)
        await n.start()
        try:
            yield n
        finally:
            await n.close()
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.fixture
async def logger(node):
    """The service's id and its two running tasks, each having written its five lines."""
    service_id = await node.create_logger()

    async def ready():
        tasks = await node.running_tasks(service_id)
        if len(tasks) != 2:
            return None
        _, frames = await node.logs(f"/v1.47/services/{service_id}/logs", details="1")
        grouped = by_task(frames)
        if len(grouped) == 2 and all(len(v) == 5 for v in grouped.values()):
            return tasks
        return None

    tasks = await until(ready, "two tasks running with their lines logged")
    return service_id, tasks


async def test_service_logs_show_every_task_with_its_context(node, logger):
    service_id, tasks = logger
    resp, frames = await node.logs("/v1.47/services/logger/logs", details="1")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    node_id = node.daemon.state.NodeID
    for payload in (p for _, p in frames):
        m = DETAILS.fullmatch(payload)
        assert m[1] == node_id.encode() and m[2] == service_id.encode()
    grouped = by_task(frames)
    assert set(grouped) == {t["ID"].encode() for t in tasks}
    for lines in grouped.values():
        assert lines == [(STDOUT, f"line {i}\n".encode()) for i in range(5)]


async def test_without_details_the_lines_are_bare(node, logger):
    _, frames = await node.logs("/services/logger/logs")
    assert sorted(frames) == sorted(
        (STDOUT, f"line {i}\n".encode()) for i in range(5) for _ in "ab"
    )


async def test_tail_takes_the_last_lines_of_each_task(node, logger):
    _, frames = await node.logs("/v1.47/services/logger/logs", details="1", tail="2")
    for lines in by_task(frames).values():
        assert lines == [(STDOUT, b"line 3\n"), (STDOUT, b"line 4\n")]
    _, frames = await node.logs("/v1.47/services/logger/logs", tail="0")
    assert frames == []
    _, frames = await node.logs("/v1.47/services/logger/logs", tail="all")
    assert len(frames) == 10


async def test_timestamps_prefix_each_line(node, logger):
    _, frames = await node.logs("/v1.47/services/logger/logs", timestamps="1", details="1")
    assert len(frames) == 10
    stamps: dict[bytes, list[bytes]] = {}
    for _, payload in frames:
        stamp, _, rest = payload.partition(b" ")
        assert TIMESTAMP.fullmatch(stamp), payload
        stamps.setdefault(DETAILS.fullmatch(rest)[3], []).append(stamp)
    for task_stamps in stamps.values():
        assert task_stamps == sorted(task_stamps)


async def test_streams_and_since_filter(node, logger):
    _, frames = await node.logs("/v1.47/services/logger/logs", stdout="0")
    assert frames == []
    _, frames = await node.logs("/v1.47/services/logger/logs", since="0")
    assert len(frames) == 10
    _, frames = await node.logs("/v1.47/services/logger/logs", since="4102444800.5")  # 2100
    assert frames == []


async def test_task_logs_are_that_tasks_only(node, logger):
    _, tasks = logger
    task_id = tasks[0]["ID"]
    _, frames = await node.logs(f"/v1.47/tasks/{task_id}/logs", details="1")
    assert by_task(frames) == {
        task_id.encode(): [(STDOUT, f"line {i}\n".encode()) for i in range(5)]
    }


async def test_follow_delivers_new_lines_and_ends_when_the_client_leaves(node, logger):
    _, tasks = logger
    resp = await node.http.get(
        "http://shoal/v1.47/services/logger/logs",
        params={"stdout": "1", "stderr": "1", "follow": "1", "tail": "1", "details": "1"},
    )
    assert resp.status == 200
    demux = Demultiplexer()
    got: list = []

    async def read_until(count: int) -> None:
        while len(got) < count:
            chunk = await resp.content.readany()
            assert chunk, "stream ended while following"
            got.extend(demux.feed(chunk))

    await asyncio.wait_for(read_until(2), TIMEOUT)
    assert {p for _, p in by_task(got).items() for p in p} == {(STDOUT, b"line 4\n")}
    node.go.touch()  # each task now writes one more line on each stream
    await asyncio.wait_for(read_until(6), TIMEOUT)
    grouped = by_task(got)
    assert set(grouped) == {t["ID"].encode() for t in tasks}
    for lines in grouped.values():
        assert lines[0] == (STDOUT, b"line 4\n")
        assert sorted(lines[1:]) == [(STDOUT, b"after\n"), (STDERR, b"oops\n")]
    assert len(node.broker.subscriptions) == 1
    resp.close()

    async def gone():
        return not node.broker.subscriptions and not node.daemon.agent.logs.subscriptions

    await until(gone, "the subscription ended on the manager and the agent")


async def test_follow_picks_up_tasks_started_later(node, logger):
    service_id, _ = logger
    resp = await node.http.get(
        "http://shoal/v1.47/services/logger/logs",
        params={"stdout": "1", "follow": "1", "tail": "0", "details": "1"},
    )
    status, service = await node.json("GET", f"/v1.47/services/{service_id}")
    spec = service["Spec"]
    spec["Mode"]["Replicated"]["Replicas"] = 3
    status, body = await node.json(
        "POST", f"/v1.47/services/{service_id}/update?version={service['Version']['Index']}", spec
    )
    assert status == 200, body
    demux = Demultiplexer()
    got: list = []
    while len(got) < 5:
        chunk = await asyncio.wait_for(resp.content.readany(), TIMEOUT)
        assert chunk
        got.extend(demux.feed(chunk))
    [(task_id, lines)] = by_task(got).items()
    assert lines == [(STDOUT, f"line {i}\n".encode()) for i in range(5)]
    assert task_id.decode() not in {t["ID"] for t in logger[1]}
    resp.close()


async def test_old_api_versions_label_the_stream_raw(node, logger):
    resp, frames = await node.logs("/v1.41/services/logger/logs")
    assert resp.headers["Content-Type"] == "application/vnd.docker.raw-stream"
    assert len(frames) == 10  # still multiplexed, as Docker's daemon sends it


async def test_errors_are_dockers(node):
    for path, message, status in [
        ("/v1.47/services/nosuch/logs", "service nosuch not found", 404),
        ("/v1.47/tasks/nosuch/logs", "task nosuch not found", 404),
    ]:
        resp, _ = await node.logs(path)
        assert resp.status == status and (await resp.json())["message"] == message
    await node.create_logger(replicas=1)
    resp = await node.http.get("http://shoal/v1.47/services/logger/logs")
    assert resp.status == 500
    assert (await resp.json())["message"] == "Bad parameters: you must choose at least one stream"
    resp, _ = await node.logs("/v1.47/services/logger/logs", tail="x")
    assert resp.status == 500
    assert (await resp.json())["message"] == 'tail value must be a positive integer or "all"'
    resp, _ = await node.logs("/v1.47/services/logger/logs", tail="-1")
    assert (await resp.json())["message"] == "negative tail values not supported"
    resp, _ = await node.logs("/v1.47/services/logger/logs", since="10m")
    assert (await resp.json())["message"] == (
        'could not parse since timestamp: strconv.ParseInt: parsing "10m": invalid syntax'
    )


async def test_a_task_that_cannot_be_reached_is_reported_in_the_stream(node, logger):
    from shoal.api.objects import Task

    _, tasks = logger
    store = node.daemon.manager.store
    task_id = tasks[0]["ID"]

    def move(tx):  # as if its node had left: the broker has nobody to ask
        t = tx.get(Task, task_id).clone()
        t.NodeID = "ghostnode"
        tx.update(t)

    await store.update(move)
    _, frames = await node.logs(f"/v1.47/tasks/{task_id}/logs")
    assert frames == [
        (
            SYSTEMERR,
            b"Error grabbing logs: rpc error: code = Unknown desc = warning: incomplete log "
            b"stream. some logs could not be retrieved for the following reasons: node "
            b"ghostnode is not available\n",
        )
    ]
