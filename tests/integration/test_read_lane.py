"""The API's read lane (issue 15): `node ls`, `service ls`, `service ps` and inspect answered on
the API's own thread while the node's event loop is busy, with what the node's application
answers; everything else still answered by that application, on the node's loop."""

import asyncio
import http.client
import json
import socket
import threading
from typing import Any

import pytest
import pytest_asyncio

from shoal.api.objects import Node
from shoal.daemon.config import DaemonConfig
from shoal.daemon.node import NodeDaemon
from shoal.engineapi.listeners import Listener, serve
from shoal.engineapi.server import build_app, build_read_app
from tests.e2e.harness import free_port
from tests.integration.network.helpers import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

# How long the node's loop is held at most: the reads must be answered before it lets go.
HOLD = 30.0


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("docker", timeout=HOLD + 30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def call(conn: UnixHTTP, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, json.loads(raw) if raw.strip() else None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory):
    state = tmp_path_factory.mktemp("node")
    daemon = NodeDaemon(DaemonConfig(state_dir=state, socket=state / "s.sock"))
    await daemon.start()
    app = build_app(daemon)
    sock = state / "api.sock"
    serving = await serve(app, [Listener(path=sock)], None, read_app=build_read_app(app))
    conn = UnixHTTP(str(sock))
    try:
        listen = f"127.0.0.1:{free_port('127.0.0.1')}"
        status, _ = await asyncio.to_thread(
            call, conn, "POST", "/v1.41/swarm/init", {"ListenAddr": listen}
        )
        assert status == 200
        spec = {
            "Name": "lane",
            "TaskTemplate": {"ContainerSpec": {"Image": "sleep 300"}, "Runtime": "process"},
            "Mode": {"Replicated": {"Replicas": 2}},
        }
        status, created = await asyncio.to_thread(
            call, conn, "POST", "/v1.41/services/create", spec
        )
        assert status == 201, created
        yield daemon, str(sock), created["ID"]
        await asyncio.to_thread(call, conn, "POST", "/v1.41/swarm/leave?force=1")
    finally:
        conn.close()
        await serving.cleanup()
        await daemon.stop()


async def test_reads_are_answered_while_the_nodes_loop_is_held(node):
    daemon, sock, service_id = node
    control = daemon.control()
    # `service ls` counts the tasks from the tables the first time: on the node's loop.
    conn = UnixHTTP(sock)
    status, first = await asyncio.to_thread(call, conn, "GET", "/v1.41/services?status=true")
    assert status == 200 and first[0]["ServiceStatus"]["DesiredTasks"] == 2
    # The orchestrator makes the tasks after the create was answered: wait for them (a CI run
    # read none here once).
    await eventually(lambda: len(control.list_tasks()) == 2, "the service's tasks", tries=3000)
    task_ids = [t.ID for t in control.list_tasks()]
    assert len(task_ids) == 2

    answers: dict[str, tuple[int, Any]] = {}
    read_done = threading.Event()
    held = threading.Event()
    swarm_answered_while_held: list[bool] = []

    def client() -> None:
        for name, path in (
            ("node ls", "/v1.41/nodes"),
            ("node inspect", "/v1.41/nodes/" + control.list_nodes()[0].ID),
            ("service ls", "/v1.41/services?status=true"),
            ("service inspect", "/v1.41/services/lane"),
            ("service ps", '/v1.41/tasks?filters={"service":["lane"]}'),
            ("task inspect", "/v1.41/tasks/" + task_ids[0][:8]),
        ):
            answers[name] = call(conn, "GET", path)
        read_done.set()
        # The same connection, then a request of the node's application: answered once the
        # node's loop runs again.
        answers["swarm"] = call(conn, "GET", "/v1.41/swarm")
        swarm_answered_while_held.append(held.is_set())

    thread = threading.Thread(target=client)
    held.set()
    thread.start()
    try:
        # Hold the node's event loop (this test runs on it) until the reads are answered.
        assert read_done.wait(HOLD), "the reads waited for the node's event loop"
    finally:
        held.clear()
    await asyncio.to_thread(thread.join)
    conn.close()

    assert answers["swarm"][0] == 200 and swarm_answered_while_held == [False]
    assert answers["node ls"] == (200, [n.to_api() for n in control.list_nodes()])
    node_id = answers["node ls"][1][0]["ID"]
    assert answers["node inspect"] == (200, Node.to_api(control.get_node(node_id)))
    status, services = answers["service ls"]
    assert status == 200 and [s["ID"] for s in services] == [service_id]
    assert services[0]["ServiceStatus"] == first[0]["ServiceStatus"]
    assert answers["service inspect"] == (200, control.get_service(service_id).to_api())
    status, tasks = answers["service ps"]
    assert status == 200 and sorted(t["ID"] for t in tasks) == sorted(task_ids)
    status, task = answers["task inspect"]  # (its state moves on once the loop runs again)
    assert status == 200 and (task["ID"], task["ServiceID"]) == (task_ids[0], service_id)


async def test_errors_and_writes_are_answered_as_the_nodes_application_answers(node):
    _daemon, sock, service_id = node
    conn = UnixHTTP(sock)
    try:
        # A read's error, on the lane: Docker's words and status.
        status, body = await asyncio.to_thread(call, conn, "GET", "/v1.41/services/nosuch")
        assert status == 404 and body == {"message": "service nosuch not found"}
        status, body = await asyncio.to_thread(
            call, conn, "GET", '/v1.41/nodes?filters={"role":["boss"]}'
        )
        assert status == 400 and body == {"message": "Invalid role filter: 'boss'"}
        # An API version out of range is refused by the node's application, as before.
        status, body = await asyncio.to_thread(call, conn, "GET", "/v1.99/nodes")
        assert status == 400 and "client version 1.99 is too new" in body["message"]
        # A write, then a read of it on the lane, on one connection: the read sees it.
        status, svc = await asyncio.to_thread(call, conn, "GET", f"/v1.41/services/{service_id}")
        spec = svc["Spec"]
        spec["Labels"] = {"lane": "yes"}
        status, _ = await asyncio.to_thread(
            call,
            conn,
            "POST",
            f"/v1.41/services/{service_id}/update?version={svc['Version']['Index']}",
            spec,
        )
        assert status == 200
        status, svc = await asyncio.to_thread(call, conn, "GET", f"/v1.41/services/{service_id}")
        assert svc["Spec"]["Labels"] == {"lane": "yes"}
    finally:
        conn.close()
