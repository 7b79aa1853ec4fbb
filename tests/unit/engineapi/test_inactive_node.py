"""The engine API of a node that is in no swarm: what Docker's daemon answers then."""

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shoal.daemon.config import DaemonConfig
from shoal.daemon.node import NodeDaemon
from shoal.engineapi.server import build_app

NOT_IN_SWARM = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
    "connect this node to swarm and try again."
)


@pytest.fixture
async def client(tmp_path):
    # No engine: what is asked here is shoal's alone (the engine's part is in
    # test_without_engine and the e2e tests).
    config = DaemonConfig(state_dir=tmp_path, socket=tmp_path / "s.sock", engine_host="none")
    daemon = NodeDaemon(config)
    await daemon.start()
    async with TestClient(TestServer(build_app(daemon))) as c:
        yield c
    await daemon.stop()


async def test_ping_and_version_prefix(client):
    for path in ("/_ping", "/v1.47/_ping"):
        resp = await client.get(path)
        assert resp.status == 200 and await resp.text() == "OK"
        assert resp.headers["API-Version"] == "1.47"
        assert resp.headers["Swarm"] == "inactive"
    resp = await client.head("/_ping")
    assert resp.status == 200 and await resp.text() == ""
    version = await (await client.get("/v1.41/version")).json()
    assert version["ApiVersion"] == "1.47" and version["MinAPIVersion"] == "1.24"


async def test_info_says_inactive(client):
    info = await (await client.get("/info")).json()
    assert info["Swarm"] == {
        "NodeID": "",
        "NodeAddr": "",
        "LocalNodeState": "inactive",
        "ControlAvailable": False,
        "Error": "",
        "RemoteManagers": None,
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/swarm"),
        ("GET", "/nodes"),
        ("GET", "/nodes/abc"),
        ("GET", "/services"),
        ("GET", "/services/abc"),
        ("GET", "/tasks"),
        ("POST", "/services/create"),
        ("POST", "/swarm/update?version=1"),
        ("GET", "/swarm/unlockkey"),
        ("GET", "/secrets"),
        ("POST", "/secrets/create"),
        ("GET", "/secrets/abc"),
        ("DELETE", "/secrets/abc"),
        ("GET", "/configs"),
        ("POST", "/configs/abc/update?version=1"),
    ],
)
async def test_cluster_calls_need_a_swarm(client, method, path):
    resp = await client.request(method, "/v1.47" + path, json={})
    assert resp.status == 503
    assert await resp.json() == {"message": NOT_IN_SWARM}


async def test_leave_when_not_in_a_swarm(client):
    resp = await client.post("/swarm/leave?force=1")
    assert resp.status == 503
    assert await resp.json() == {"message": "This node is not part of a swarm"}


async def test_join_with_malformed_token_changes_nothing(client):
    resp = await client.post(
        "/swarm/join", json={"RemoteAddrs": ["127.0.0.1:1"], "JoinToken": "bogus"}
    )
    assert resp.status == 400
    assert await resp.json() == {"message": "invalid join token"}
    info = await (await client.get("/info")).json()
    assert info["Swarm"]["LocalNodeState"] == "inactive"


async def test_init_with_bad_advertise_address(client):
    resp = await client.post("/swarm/init", json={"AdvertiseAddr": "bogus!addr"})
    assert resp.status == 400
    assert (await resp.json())["message"] == (
        "advertise address must be a non-zero IP address or network interface "
        "(with optional port number)"
    )


async def test_unknown_swarm_path_and_bad_json(client):
    for path in ("/v1.47/swarm/nope", "/nodes/a/b", "/services/a/b/c"):
        resp = await client.post(path)
        assert resp.status == 404 and await resp.json() == {"message": "page not found"}
    resp = await client.post("/swarm/init", data=b'{"ListenAddr":')
    assert resp.status == 400


async def test_events_of_a_node_in_no_swarm_are_none(client):
    resp = await client.get("/v1.41/events", params={"since": "0", "until": "1"})
    assert resp.status == 200 and await resp.read() == b""
