"""API version negotiation as Docker 20.10's daemon: which prefixes pass, and its words for
those that do not."""

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shoal.daemon.config import DaemonConfig
from shoal.daemon.node import NodeDaemon
from shoal.engineapi.api_versions import newest, refusal, requested, version_key
from shoal.engineapi.server import build_app


def test_version_order_is_gos():
    assert version_key("1.9") < version_key("1.12") < version_key("1.41") < version_key("1.47")
    assert version_key("1.40") == version_key("1.40.0")
    assert newest(None) == "1.47" and newest("1.41") == "1.41" and newest("1.50") == "1.47"


def test_prefix():
    assert requested("/v1.41/containers/json") == "1.41"
    assert requested("/v1.0/version") == "1.0"
    assert requested("/v1") == "1"
    assert requested("/version") is None
    assert requested("/volumes") is None
    assert requested("/vfoo/version") is None


def test_too_old_is_plain_text_too_new_json():
    old = refusal("1.23", "1.47")
    assert old is not None and old.status == 400
    assert old.content_type == "text/plain"
    assert old.body == (
        b"client version 1.23 is too old. Minimum supported API version is 1.24, please "
        b"upgrade your client to a newer version\n"
    )
    new = refusal("1.48", "1.41")
    assert new is not None and new.status == 400 and new.content_type == "application/json"
    assert new.body == (
        b'{"message":"client version 1.48 is too new. Maximum supported API version is 1.41"}\n'
    )
    assert refusal("1.24", "1.47") is None and refusal("1.47", "1.47") is None


@pytest.fixture
async def client(tmp_path):
    config = DaemonConfig(state_dir=tmp_path, socket=tmp_path / "s.sock", engine_host="none")
    daemon = NodeDaemon(config)
    await daemon.start()
    async with TestClient(TestServer(build_app(daemon))) as c:
        yield c
    await daemon.stop()


async def test_every_answer_says_version_and_server(client):
    for path in ("/v1.24/_ping", "/v1.47/info", "/swarm", "/containers/json"):
        resp = await client.get(path)
        assert resp.headers["API-Version"] == "1.47"
        assert resp.headers["Server"].startswith("Docker/") and resp.headers["Server"].endswith(
            " (linux)"
        )
        assert resp.headers["OSType"] == "linux"
    ping = await client.get("/_ping")
    assert ping.headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    assert ping.headers["Pragma"] == "no-cache"
    assert ping.headers["Docker-Experimental"] == "false"


async def test_out_of_range_prefixes_are_refused(client):
    resp = await client.get("/v1.12/version")
    assert resp.status == 400 and "is too old" in await resp.text()
    resp = await client.get("/v1.48/services")
    assert resp.status == 400
    assert await resp.json() == {
        "message": "client version 1.48 is too new. Maximum supported API version is 1.47"
    }
