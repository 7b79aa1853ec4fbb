"""The API on dockerd's listeners: unix and plain TCP (with dockerd's warning), TLS with and
without client verification."""

import logging
import ssl

import aiohttp
from aiohttp import web

from shoal.engineapi.engine_proxy import ENGINE, EngineProxy
from shoal.engineapi.listeners import INSECURE_WARNING, Listener, TLSSettings, serve
from tests.e2e.docker_certs import issue, new_ca
from tests.e2e.harness import free_port


def app() -> web.Application:
    application = web.Application()
    application[ENGINE] = EngineProxy(None)

    async def ping(_request: web.Request) -> web.Response:
        return web.Response(text="OK")

    application.router.add_get("/_ping", ping)
    return application


async def test_unix_and_plain_tcp_with_the_warning(tmp_path, caplog):
    port = free_port("127.0.0.1")
    sock = tmp_path / "api.sock"
    with caplog.at_level(logging.WARNING):
        serving = await serve(
            app(), [Listener(path=sock), Listener(host="127.0.0.1", port=port)], None
        )
    try:
        assert INSECURE_WARNING in caplog.text
        assert (sock.stat().st_mode & 0o777) == 0o660
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(str(sock))) as s:
            async with s.get("http://docker/_ping") as resp:
                assert await resp.text() == "OK"
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/_ping") as resp:
                assert await resp.text() == "OK"
    finally:
        await serving.cleanup()


async def test_tls_without_verify_takes_any_client(tmp_path, caplog):
    ca = new_ca("test-ca")
    server = issue(ca, tmp_path / "server", "server", server_ip="127.0.0.1")
    tls = TLSSettings(cert=server / "cert.pem", key=server / "key.pem", cacert=None)
    port = free_port("127.0.0.1")
    with caplog.at_level(logging.WARNING):
        serving = await serve(app(), [Listener(host="127.0.0.1", port=port)], tls)
    try:
        assert INSECURE_WARNING in caplog.text  # as dockerd: only --tlsverify silences it
        client = ssl.create_default_context(cafile=str(server / "ca.pem"))
        async with aiohttp.ClientSession() as s:
            async with s.get(f"https://127.0.0.1:{port}/_ping", ssl=client) as resp:
                assert await resp.text() == "OK"
    finally:
        await serving.cleanup()


async def test_tls_verify_is_quiet(tmp_path, caplog):
    ca = new_ca("test-ca")
    server = issue(ca, tmp_path / "server", "server", server_ip="127.0.0.1")
    client_dir = issue(ca, tmp_path / "client", "client")
    tls = TLSSettings(
        cert=server / "cert.pem", key=server / "key.pem", cacert=server / "ca.pem", verify=True
    )
    port = free_port("127.0.0.1")
    with caplog.at_level(logging.WARNING):
        serving = await serve(app(), [Listener(host="127.0.0.1", port=port)], tls)
    try:
        assert INSECURE_WARNING not in caplog.text
        client = ssl.create_default_context(cafile=str(server / "ca.pem"))
        client.load_cert_chain(client_dir / "cert.pem", client_dir / "key.pem")
        async with aiohttp.ClientSession() as s:
            async with s.get(f"https://127.0.0.1:{port}/_ping", ssl=client) as resp:
                assert await resp.text() == "OK"
    finally:
        await serving.cleanup()
