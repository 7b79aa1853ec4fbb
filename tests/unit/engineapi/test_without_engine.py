"""A node without a Docker Engine answers the engine's endpoints as Docker answers what is
unavailable (503), saying why; with an engine that does not answer, saying where it is."""

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shoal.daemon.config import DaemonConfig
from shoal.daemon.node import NodeDaemon
from shoal.engineapi.server import build_app

NO_ENGINE = (
    "this shoal node has no Docker Engine (shoal daemon --engine-host none): "
    "containers, images, volumes and plugins are unavailable here"
)


async def _client(tmp_path, engine_host: str):
    config = DaemonConfig(
        state_dir=tmp_path,
        socket=tmp_path / "s.sock",
        engine_host=engine_host,
        runtimes=["process"],
    )
    daemon = NodeDaemon(config)
    await daemon.start()
    return daemon, TestClient(TestServer(build_app(daemon)))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/containers/json"),
        ("GET", "/v1.41/images/json"),
        ("POST", "/v1.47/containers/create"),
        ("POST", "/v1.47/containers/abc/attach?stream=1"),
        ("POST", "/exec/abc/start"),
        ("GET", "/volumes"),
    ],
)
async def test_no_engine(tmp_path, method, path):
    daemon, client = await _client(tmp_path, "none")
    async with client:
        resp = await client.request(method, path)
        assert resp.status == 503
        assert await resp.json() == {"message": NO_ENGINE}
        assert resp.headers["API-Version"] == "1.47"
    await daemon.stop()


async def test_no_local_networks_without_engine(tmp_path):
    daemon, client = await _client(tmp_path, "none")
    async with client:
        resp = await client.get("/networks/bridge")
        assert resp.status == 404
        assert await resp.json() == {"message": "network bridge not found"}
        assert await (await client.get("/networks")).json() == []
    await daemon.stop()


async def test_unreachable_engine(tmp_path):
    host = f"unix://{tmp_path}/no-engine.sock"
    daemon, client = await _client(tmp_path, host)
    async with client:
        for path in ("/containers/json", "/containers/x/attach"):
            resp = await client.post(path)
            assert resp.status == 503
            assert await resp.json() == {
                "message": "this shoal node's Docker Engine is unreachable: Cannot connect to "
                f"the Docker daemon at {host}. Is the docker daemon running?"
            }
        info = await (await client.get("/info")).json()
        assert info["Warnings"] == [
            "WARNING: this shoal node's Docker Engine is unreachable: Cannot connect to the "
            f"Docker daemon at {host}. Is the docker daemon running?"
        ]
        assert info["Swarm"]["LocalNodeState"] == "inactive"
        # The local networks are the engine's: none to list while it does not answer.
        assert await (await client.get("/networks")).json() == []
    await daemon.stop()
