"""A manager that restarts with its keys sealed (autolock) comes up locked: what Docker's
daemon answers then, and what `swarm unlock` accepts (Docker 20.10's words and statuses)."""

import datetime as dt
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shoal.api.types import NodeRole
from shoal.ca.certificates import new_node_key, sign_node_certificate
from shoal.ca.rootca import create_root_ca
from shoal.ca.unlock_key import human_readable, new_unlock_key
from shoal.daemon.config import DaemonConfig
from shoal.daemon.node import NodeDaemon
from shoal.daemon.swarm_state import SwarmDir, SwarmState
from shoal.engineapi.server import build_app
from shoal.manager.consensus.raft_keys import FILE_NAME, RaftKeys

LOCKED = (
    'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker '
    'swarm unlock" to unlock it.'
)
KEK = new_unlock_key()


def locked_manager(state_dir: Path, kek: bytes = KEK) -> None:
    """What a manager with autolock on leaves on disk when it stops."""
    swarm = SwarmDir(state_dir)
    root = create_root_ca()
    key = new_node_key()
    cert = sign_node_certificate(
        key.csr_pem,
        root.cert_pem,
        root.key_pem,
        node_id="node1",
        role=NodeRole.MANAGER,
        cluster_id="cluster1",
        expiry=dt.timedelta(days=90),
        now=dt.datetime.now(dt.UTC),
    )
    swarm.save_certificates(key.key_pem, cert, root.cert_pem, kek)
    RaftKeys.create(swarm.manager_dir / FILE_NAME, kek)
    swarm.save(
        SwarmState(
            NodeID="node1",
            ClusterID="cluster1",
            Role=NodeRole.MANAGER,
            ListenAddr="127.0.0.1:2377",
            AdvertiseAddr="127.0.0.1:2377",
            RemoteManagers=["127.0.0.1:2377"],
        )
    )


@pytest.fixture
async def daemon(tmp_path: Path):  # type: ignore[no-untyped-def]
    locked_manager(tmp_path)
    config = DaemonConfig(
        state_dir=tmp_path, socket=tmp_path / "s.sock", runtimes=["process"], overlay=False
    )
    node = NodeDaemon(config)
    await node.start()
    yield node
    await node.stop()


@pytest.fixture
async def client(daemon: NodeDaemon):  # type: ignore[no-untyped-def]
    async with TestClient(TestServer(build_app(daemon))) as c:
        yield c


async def test_a_sealed_manager_comes_up_locked_and_runs_nothing(daemon, client) -> None:  # type: ignore[no-untyped-def]
    assert daemon.locked and daemon.manager is None and daemon.agent is None
    assert daemon.certs is None  # its key was never opened
    info = await (await client.get("/info")).json()
    assert info["Swarm"] == {
        "NodeID": "",
        "NodeAddr": "127.0.0.1",
        "LocalNodeState": "locked",
        "ControlAvailable": False,
        "Error": LOCKED,
        "RemoteManagers": None,
    }
    ping = await client.get("/_ping")
    assert ping.headers["Swarm"] == "locked"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/swarm"),
        ("GET", "/swarm/unlockkey"),
        ("POST", "/swarm/update?version=1"),
        ("GET", "/nodes"),
        ("GET", "/services"),
        ("POST", "/services/create"),
        ("GET", "/tasks"),
    ],
)
async def test_every_swarm_endpoint_answers_locked(client, method, path) -> None:  # type: ignore[no-untyped-def]
    resp = await client.request(method, path, json={})
    assert resp.status == 503
    assert await resp.json() == {"message": LOCKED}


async def test_init_join_and_leave_of_a_locked_node(daemon, client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/swarm/init", "/swarm/join"):
        resp = await client.post(path, json={"RemoteAddrs": ["127.0.0.1:2377"]})
        assert resp.status == 503
        assert (await resp.json())["message"].startswith("This node is already part of a swarm")
    resp = await client.post("/swarm/init", json={"ForceNewCluster": True})
    assert resp.status == 503
    assert (await resp.json())["message"].startswith("This node is not a swarm manager. Worker")
    resp = await client.post("/swarm/leave")
    assert resp.status == 503
    assert await resp.json() == {
        "message": "Swarm is encrypted and locked. Please unlock it first or use `--force` "
        "to ignore this message."
    }
    assert daemon.locked
    resp = await client.post("/swarm/leave?force=1")
    assert resp.status == 200
    assert not daemon.locked and daemon.state is None
    assert not (daemon.config.state_dir / "swarm").exists()
    info = await (await client.get("/info")).json()
    assert info["Swarm"]["LocalNodeState"] == "inactive"


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        ("", 400, "invalid key string"),
        ("bad", 400, "invalid key string"),
        ("SWMKEY-1-ab==", 400, "invalid key string"),
        ("SWMKEY-1-abc", 401, "swarm could not be unlocked: invalid key provided"),
        (
            human_readable(new_unlock_key()),
            401,
            "swarm could not be unlocked: invalid key provided",
        ),
    ],
)
async def test_a_wrong_key_changes_nothing(daemon, client, key, status, message) -> None:  # type: ignore[no-untyped-def]
    resp = await client.post("/swarm/unlock", json={"UnlockKey": key})
    assert resp.status == status
    assert await resp.json() == {"message": message}
    assert daemon.locked and daemon.manager is None and daemon.kek is None
    swarm = SwarmDir(daemon.config.state_dir)
    assert swarm.node_key_sealed() and RaftKeys.is_sealed(swarm.manager_dir / FILE_NAME)


async def test_the_key_opens_every_sealed_key(daemon) -> None:  # type: ignore[no-untyped-def]
    assert daemon._keys_open_with(KEK)
    assert not daemon._keys_open_with(new_unlock_key())


async def test_a_manager_whose_raft_keys_are_under_another_key_stays_locked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    locked_manager(tmp_path)
    RaftKeys.create(SwarmDir(tmp_path).manager_dir / FILE_NAME, new_unlock_key())
    node = NodeDaemon(DaemonConfig(state_dir=tmp_path, runtimes=["process"], overlay=False))
    await node.start()
    try:
        assert node.locked and not node._keys_open_with(KEK)
    finally:
        await node.stop()


async def test_unlock_on_a_node_that_is_not_locked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = NodeDaemon(DaemonConfig(state_dir=tmp_path, runtimes=["process"], overlay=False))
    await node.start()
    async with TestClient(TestServer(build_app(node))) as client:
        resp = await client.post("/swarm/unlock", json={"UnlockKey": human_readable(KEK)})
        assert resp.status == 503
        assert (await resp.json())["message"].startswith("This node is not a swarm manager.")
    await node.stop()


def stopped_midway(state_dir: Path, node_kek: bytes | None, raft_kek: bytes | None) -> SwarmDir:
    """A manager stopped while it moved its keys: node key and raft keys under different
    KEKs (None: plain)."""
    locked_manager(state_dir)
    swarm = SwarmDir(state_dir)
    key, cert, ca = swarm.load_certificates(KEK) or (b"", b"", b"")
    swarm.save_certificates(key, cert, ca, node_kek)
    RaftKeys.create(swarm.manager_dir / FILE_NAME, raft_kek)
    return swarm


async def test_stopped_while_moving_to_a_rotated_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Sealing under a new key: the node key first, with the previous key kept under the
    new one until the raft keys follow. The new key opens both; the old one, nothing."""
    old, new = new_unlock_key(), new_unlock_key()
    swarm = stopped_midway(tmp_path, node_kek=new, raft_kek=old)
    node = NodeDaemon(DaemonConfig(state_dir=tmp_path, runtimes=["process"], overlay=False))
    assert node._keys_open_with(new) is None  # no handover record: the raft keys stay shut
    swarm.save_previous_kek(old, new)
    assert node._keys_open_with(new) == (new, old)
    assert node._keys_open_with(old) is None
    assert swarm.load_previous_kek(old) is None  # it opens with the new key only


async def test_stopped_while_turning_autolock_on_or_off(tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = NodeDaemon(DaemonConfig(state_dir=tmp_path, runtimes=["process"], overlay=False))
    # On: the node key was sealed, the raft keys not yet.
    stopped_midway(tmp_path, node_kek=KEK, raft_kek=None)
    assert node._keys_sealed() and node._keys_open_with(KEK) == (KEK, None)
    # Off: the raft keys were unsealed first, the node key still under the key.
    stopped_midway(tmp_path, node_kek=KEK, raft_kek=None)
    assert node._keys_open_with(KEK) == (KEK, None)
    # Raft keys alone sealed (no order of ours leaves this, but it opens all the same).
    stopped_midway(tmp_path, node_kek=None, raft_kek=KEK)
    assert node._keys_sealed() and node._keys_open_with(KEK) == (None, KEK)
    assert node._keys_open_with(new_unlock_key()) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "got EOF while reading request body"),
        (
            b'{"UnlockKey":5}',
            "json: cannot unmarshal number into Go struct field UnlockRequest.UnlockKey of "
            "type string",
        ),
        (b"{}", "invalid key string"),
    ],
)
async def test_what_is_wrong_with_the_request_comes_first(daemon, client, body, message) -> None:  # type: ignore[no-untyped-def]
    resp = await client.post(
        "/swarm/unlock", data=body, headers={"Content-Type": "application/json"}
    )
    assert (resp.status, await resp.json()) == (400, {"message": message})
    assert daemon.locked


async def test_a_demoted_manager_stopped_before_unsealing_runs_as_a_plain_worker(
    tmp_path: Path,
) -> None:
    """Demotion saves the worker role, then unseals the node key: stopped in between, the
    node comes up locked once more, and once unlocked keeps its key plain, as workers do."""
    locked_manager(tmp_path)
    swarm = SwarmDir(tmp_path)
    state = swarm.load()
    assert state is not None
    state.Role = NodeRole.WORKER
    swarm.save(state)
    config = DaemonConfig(
        state_dir=tmp_path,
        runtimes=["process"],
        overlay=False,
        mesh_data_path="userspace",
        listen_addr="127.0.0.1:0",
    )
    node = NodeDaemon(config)
    await node.start()
    try:
        assert node.locked
        await node.unlock(human_readable(KEK))
        assert not node.locked and node.manager is None and node.kek is None
        assert not swarm.node_key_sealed()
    finally:
        await node.stop()
