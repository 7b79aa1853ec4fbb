"""GET /events on a real node that leads a one-manager swarm: the cluster's events stream as
Docker's daemon writes them (one JSON object per line, as each happens), `since`/`until`
replay what was kept, filters choose, and bad times get Docker's errors."""

import asyncio
import json
import time

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from shoal.daemon.config import DaemonConfig
from shoal.daemon.node import NodeDaemon
from shoal.engineapi.responses import BACKEND
from shoal.engineapi.server import build_app
from tests.e2e.harness import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVICE = {
    "Name": "evweb",
    "TaskTemplate": {
        "ContainerSpec": {"Image": "sleep", "Args": ["600"]},
        "Runtime": "process",
    },
    "Mode": {"Replicated": {"Replicas": 1}},
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(tmp_path_factory):
    state = tmp_path_factory.mktemp("node")
    daemon = NodeDaemon(DaemonConfig(state_dir=state, socket=state / "s.sock"))
    await daemon.start()
    try:
        async with TestClient(TestServer(build_app(daemon))) as c:
            # A port of its own, not 0: the node's agent dials the advertised address, and
            # with port 0 init would wait out its timeout for an agent that never connects.
            listen = f"127.0.0.1:{free_port('127.0.0.1')}"
            resp = await c.post("/swarm/init", json={"ListenAddr": listen})
            assert resp.status == 200, await resp.text()
            yield c
            # Its tasks (processes) would outlive the daemon: leave, as a user would.
            await c.post("/swarm/leave?force=1")
    finally:
        await daemon.stop()


async def next_event(resp) -> dict:
    line = await asyncio.wait_for(resp.content.readline(), 10)
    assert line.endswith(b"\n")
    return json.loads(line)


async def test_a_service_create_update_and_remove_stream_as_they_happen(client):
    flt = json.dumps({"type": {"service": True}})
    resp = await client.get("/v1.41/events", params={"filters": flt})
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    created = await client.post("/v1.41/services/create", json=SERVICE)
    assert created.status == 201, await created.text()
    service_id = (await created.json())["ID"]
    event = await next_event(resp)
    assert event["Type"] == "service" and event["Action"] == "create"
    assert event["Actor"] == {"ID": service_id, "Attributes": {"name": "evweb"}}
    assert event["scope"] == "swarm" and event["time"] == event["timeNano"] // 10**9
    assert abs(event["time"] - time.time()) < 60

    shown = await (await client.get(f"/v1.41/services/{service_id}")).json()
    spec = dict(SERVICE, Mode={"Replicated": {"Replicas": 3}})
    version = shown["Version"]["Index"]
    updated = await client.post(f"/v1.41/services/{service_id}/update?version={version}", json=spec)
    assert updated.status == 200, await updated.text()
    event = await next_event(resp)
    while "replicas.new" not in event["Actor"]["Attributes"]:
        assert event["Action"] == "update"  # the orchestrators' own changes come too
        event = await next_event(resp)
    assert event["Action"] == "update"
    assert event["Actor"]["Attributes"]["replicas.old"] == "1"
    assert event["Actor"]["Attributes"]["replicas.new"] == "3"

    assert (await client.delete(f"/v1.41/services/{service_id}")).status == 200
    event = await next_event(resp)
    while event["Action"] != "remove":
        event = await next_event(resp)
    assert event["Actor"] == {"ID": service_id, "Attributes": {"name": "evweb"}}
    resp.close()

    # All of it is kept: `since` replays it, and an `until` that has passed ends the stream.
    now = time.time()
    past = await client.get(
        "/v1.41/events", params={"since": f"{now - 120:.0f}", "until": f"{now:.3f}", "filters": flt}
    )
    lines = [json.loads(line) for line in (await past.read()).splitlines()]
    actions = [e["Action"] for e in lines if e["Actor"]["ID"] == service_id]
    assert actions[0] == "create" and actions[-1] == "remove" and "update" in actions


async def test_the_cluster_object_and_other_types_by_filter(client):
    now = time.time()
    resp = await client.post("/v1.41/secrets/create", json={"Name": "evpw", "Data": "eA=="})
    assert resp.status == 201
    past = await client.get(
        "/v1.41/events",
        params={"since": f"{now - 1:.0f}", "until": f"{time.time() + 0.2:.3f}"},
    )
    assert past.status == 200
    lines = [json.loads(line) for line in (await past.read()).splitlines()]
    assert {"Type": "secret", "Action": "create"}.items() <= lines[-1].items()
    assert lines[-1]["Actor"]["Attributes"] == {"name": "evpw"}
    assert all(e["Type"] in ("node", "service", "network", "secret", "config") for e in lines)


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("since=abc", 500, 'strconv.ParseInt: parsing "abc": invalid syntax'),
        ("since=20&until=10", 400, "`since` time (20) cannot be after `until` time (10)"),
    ],
)
async def test_bad_times_get_dockers_errors(client, query, status, message):
    resp = await client.get(f"/v1.41/events?{query}")
    assert resp.status == status
    assert (await resp.json()) == {"message": message}


async def test_a_stream_ends_at_until_and_a_gone_client_leaves_no_subscriber(client):
    events_log = client.server.app[BACKEND].events
    until = f"{time.time() + 3:.3f}"
    flt = json.dumps({"type": {"config": True}})
    resp = await client.get("/v1.41/events", params={"until": until, "filters": flt})
    assert resp.status == 200
    # The stream stays open until `until`: what happens meanwhile is in it.
    made = await client.post("/v1.41/configs/create", json={"Name": "evuntil", "Data": "eA=="})
    assert made.status == 201, await made.text()
    body = await asyncio.wait_for(resp.read(), 15)  # then it ends by itself
    events = [json.loads(line) for line in body.splitlines()]
    # (`until` without `since` also replays what was kept before, as Docker's daemon does.)
    assert [(e["Type"], e["Action"], e["Actor"]["Attributes"]["name"]) for e in events][-1:] == [
        ("config", "create", "evuntil")
    ]
    assert not events_log._subs

    resp = await client.get("/v1.41/events")
    assert resp.status == 200
    assert len(events_log._subs) == 1
    resp.close()  # the client hangs up while nothing happens
    for _ in range(100):  # the handler notices within DISCONNECT_POLL
        if not events_log._subs:
            break
        await asyncio.sleep(0.1)
    assert not events_log._subs
