"""/secrets and /configs on a real node that leads a one-manager swarm: Docker's status codes,
bodies and messages (as Docker 20.10 answers them), a secret's data never shown, and bad
requests that change nothing."""

import base64

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from shoal.daemon.config import DaemonConfig
from shoal.daemon.node import NodeDaemon
from shoal.engineapi.server import build_app
from tests.e2e.harness import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def rpc(code: str, desc: str) -> str:
    return f"rpc error: code = {code} desc = {desc}"


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


async def answer(resp):
    text = await resp.text()
    return resp.status, (await resp.json() if text.strip() else None)


async def names(client, kind):
    return sorted(o["Spec"]["Name"] for o in await (await client.get(f"/v1.41/{kind}")).json())


async def test_create_inspect_list_and_a_secrets_data_never_shown(client):
    status, body = await answer(
        await client.post(
            "/v1.41/secrets/create", json={"Name": "api-pw", "Data": b64(b"hush"), "Labels": None}
        )
    )
    assert status == 201 and list(body) == ["ID"]
    secret_id = body["ID"]
    for ref in (secret_id, "api-pw", "API-PW", secret_id[:6]):
        status, shown = await answer(await client.get(f"/v1.41/secrets/{ref}"))
        assert status == 200
        assert shown["ID"] == secret_id
        assert shown["Spec"] == {"Name": "api-pw", "Labels": {}}
        assert list(shown) == ["ID", "Version", "CreatedAt", "UpdatedAt", "Spec"]
    listed = await (await client.get("/v1.41/secrets")).json()
    assert all("Data" not in s["Spec"] for s in listed)
    assert b"hush" not in await (await client.get("/v1.41/secrets")).read()

    status, body = await answer(
        await client.post("/v1.41/configs/create", json={"name": "api-conf", "data": b64(b"x=1")})
    )
    assert status == 201
    shown = await (await client.get("/v1.41/configs/api-conf")).json()
    assert shown["Spec"] == {"Name": "api-conf", "Labels": {}, "Data": b64(b"x=1")}


async def test_a_name_taken_is_409(client):
    await client.post("/secrets/create", json={"Name": "api-dup", "Data": b64(b"x")})
    status, body = await answer(
        await client.post("/secrets/create", json={"Name": "API-dup", "Data": b64(b"x")})
    )
    assert status == 409
    assert body == {"message": rpc("AlreadyExists", "secret API-dup already exists")}


BAD_BODIES = [
    ("/v1.41/secrets/create", b"", 400, "got EOF while reading request body"),
    (
        "/v1.41/secrets/create",
        b"[]",
        400,
        "json: cannot unmarshal array into Go value of type swarm.SecretSpec",
    ),
    (
        "/v1.41/secrets/create",
        b'{"Name":5}',
        400,
        "json: cannot unmarshal number into Go struct field SecretSpec.Name of type string",
    ),
    (
        "/v1.41/secrets/create",
        b'{"Name":"api-bad","Labels":[]}',
        400,
        "json: cannot unmarshal array into Go struct field SecretSpec.Labels of type "
        "map[string]string",
    ),
    (
        "/v1.41/secrets/create",
        b'{"Name":"api-bad","Labels":{"a":1}}',
        400,
        "json: cannot unmarshal number into Go struct field SecretSpec.Labels of type string",
    ),
    (
        "/v1.41/secrets/create",
        b'{"Name":"api-bad","Driver":"x"}',
        400,
        "json: cannot unmarshal string into Go struct field SecretSpec.Driver of type swarm.Driver",
    ),
    (
        "/v1.41/secrets/create",
        b'{"Name":"api-bad","Driver":{"Name":5}}',
        400,
        "json: cannot unmarshal number into Go struct field Driver.Driver.Name of type string",
    ),
    (
        "/v1.41/configs/create",
        b'{"Name":"api-bad","Data":5}',
        400,
        "json: cannot unmarshal number into Go struct field ConfigSpec.Data of type []uint8",
    ),
    (
        "/v1.41/secrets/create",
        b'{"Name":"api-bad","Data":"eHg=x"}',
        400,
        "illegal base64 data at input byte 4",
    ),
    (
        "/v1.41/secrets/create",
        b'{"Name":"api-bad"}',
        400,
        rpc("InvalidArgument", "secret data must be larger than 0 and less than 512000 bytes"),
    ),
    (
        "/v1.41/secrets/create",
        b'{"Name":"api bad","Data":"eA=="}',
        400,
        rpc(
            "InvalidArgument",
            "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end "
            "character must be [a-zA-Z0-9]",
        ),
    ),
    (
        "/v1.41/secrets/create",
        b'{"Name":"api-bad","Data":"eA==","Driver":{"Name":"vault"}}',
        500,
        rpc("Unknown", 'plugin "vault" not found'),
    ),
    (
        "/v1.36/secrets/create",
        b'{"Name":"api-bad","Data":"eA==","Templating":{"Name":"golang"}}',
        400,
        "secret templating is not supported on the specified API version: 1.36",
    ),
    (
        "/v1.41/configs/create",
        b'{"Name":"api-bad","Data":""}',
        400,
        rpc("InvalidArgument", "config data must be larger than 0 and less than 1024000 bytes"),
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), BAD_BODIES)
async def test_bad_bodies_answer_as_docker_and_change_nothing(client, path, body, status, message):
    before = (await names(client, "secrets"), await names(client, "configs"))
    resp = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    assert await answer(resp) == (status, {"message": message})
    assert (await names(client, "secrets"), await names(client, "configs")) == before


async def test_not_found_is_404(client):
    for method, path in (
        ("GET", "/v1.41/secrets/api-nosuch"),
        ("DELETE", "/v1.41/secrets/api-nosuch"),
        ("POST", "/v1.41/secrets/api-nosuch/update?version=1"),
    ):
        resp = await client.request(method, path, json={"Name": "api-nosuch"})
        assert await answer(resp) == (404, {"message": "secret api-nosuch not found"})
    resp = await client.get("/v1.41/configs/api-nosuch")
    assert await answer(resp) == (404, {"message": "config api-nosuch not found"})


async def test_update_changes_labels_only_at_the_current_version(client):
    created = await (
        await client.post("/configs/create", json={"Name": "api-upd", "Data": b64(b"v1")})
    ).json()
    version = (await (await client.get(f"/configs/{created['ID']}")).json())["Version"]["Index"]
    for query in ("", "?version=abc", "?version=-1"):
        resp = await client.post(f"/configs/api-upd/update{query}", json={"Name": "api-upd"})
        assert await answer(resp) == (400, {"message": "invalid config version"})
    resp = await client.post(f"/configs/api-upd/update?version={version}")
    assert await answer(resp) == (400, {"message": "got EOF while reading request body"})
    for spec in ({"Name": "api-upd2"}, {"Name": "api-upd", "Data": b64(b"v2")}):
        resp = await client.post(f"/configs/api-upd/update?version={version}", json=spec)
        assert await answer(resp) == (
            400,
            {"message": rpc("InvalidArgument", "only updates to Labels are allowed")},
        )
    resp = await client.post(
        f"/configs/api-upd/update?version={version + 100}", json={"Name": "api-upd"}
    )
    assert await answer(resp) == (500, {"message": rpc("Unknown", "update out of sequence")})
    unchanged = await (await client.get("/configs/api-upd")).json()
    assert unchanged["Version"]["Index"] == version and unchanged["Spec"]["Labels"] == {}

    resp = await client.post(
        f"/configs/api-upd/update?version={version}",
        json={"Name": "api-upd", "Data": b64(b"v1"), "Labels": {"env": "prod"}},
    )
    assert resp.status == 200 and await resp.read() == b""
    shown = await (await client.get("/configs/api-upd")).json()
    assert shown["Spec"] == {"Name": "api-upd", "Labels": {"env": "prod"}, "Data": b64(b"v1")}
    assert shown["Version"]["Index"] > version


async def test_filters(client):
    for name, labels in (("api-f-one", {"tier": "a"}), ("api-f-two", {"tier": "b"})):
        await client.post(
            "/secrets/create", json={"Name": name, "Data": b64(b"x"), "Labels": labels}
        )

    async def listed(kind, filters):
        resp = await client.get(f"/v1.41/{kind}", params={"filters": filters})
        return resp.status, await resp.json()

    status, found = await listed("secrets", '{"name":{"API-F-":true}}')
    assert status == 200 and sorted(s["Spec"]["Name"] for s in found) == ["api-f-one", "api-f-two"]
    status, found = await listed("secrets", '{"names":["api-f-one"],"label":["tier=a"]}')
    assert [s["Spec"]["Name"] for s in found] == ["api-f-one"]
    assert await listed("secrets", '{"bogus":["x"]}') == (
        400,
        {"message": "Invalid filter 'bogus'"},
    )
    assert await listed("configs", '{"names":["x"]}') == (
        400,
        {"message": "Invalid filter 'names'"},
    )


async def test_in_use_refused_until_the_service_lets_go(client):
    secret_id = (
        await (
            await client.post("/secrets/create", json={"Name": "api-used", "Data": b64(b"x")})
        ).json()
    )["ID"]
    ref = {
        "File": {"Name": "api-used", "UID": "0", "GID": "0", "Mode": 292},
        "SecretID": secret_id,
        "SecretName": "api-used",
    }
    spec = {
        "Name": "api-svc",
        "TaskTemplate": {
            "ContainerSpec": {"Image": "sleep", "Args": ["300"], "Secrets": [ref]},
            "Runtime": "process",
        },
        "Mode": {"Replicated": {"Replicas": 0}},
    }
    # No replicas: nothing runs (delivery to tasks is not what this tests).
    resp = await client.post("/services/create", json=spec)
    assert resp.status == 201, await resp.text()
    service = await (await client.get("/services/api-svc")).json()
    assert service["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"] == [ref]

    resp = await client.delete("/v1.41/secrets/api-used")
    assert await answer(resp) == (
        400,
        {
            "message": rpc(
                "InvalidArgument", "secret 'api-used' is in use by the following service: api-svc"
            )
        },
    )
    assert "api-used" in await names(client, "secrets")

    missing = dict(ref, SecretID="nosuchsecretid")
    spec2 = dict(spec, Name="api-svc2")
    spec2["TaskTemplate"] = dict(spec["TaskTemplate"])
    spec2["TaskTemplate"]["ContainerSpec"] = dict(
        spec["TaskTemplate"]["ContainerSpec"], Secrets=[missing]
    )
    resp = await client.post("/services/create", json=spec2)
    assert await answer(resp) == (
        400,
        {"message": rpc("InvalidArgument", "secret not found: api-used")},
    )

    assert (await client.delete("/services/api-svc")).status == 200
    resp = await client.delete(f"/v1.41/secrets/{secret_id[:8]}")
    assert resp.status == 204
    assert "api-used" not in await names(client, "secrets")
