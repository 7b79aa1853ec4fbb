"""The front passes requests on one keep-alive connection to the engine or to shoal's
application, as bytes: whole answers, chunked streams, and hijacked connections with the
client's half-close passed on. A stand-in engine (raw HTTP on a unix socket) answers here;
the e2e tests drive the real one."""

import asyncio

import pytest
from aiohttp import web

from shoal.engineapi.engine_proxy import EngineProxy
from shoal.engineapi.front import Front

CONTAINERS = b'[{"Id":"abc"}]\n'
# Set by the stand-in engine when the reader of its endless stream has gone.
STREAM_DROPPED: list[asyncio.Event] = []


async def fake_engine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            break
        target = head.split(b" ")[1]
        if target == b"/v1.41/containers/json":
            writer.write(
                b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: %d\r\n\r\n"
                % len(CONTAINERS)
                + CONTAINERS
            )
        elif target == b"/v1.41/containers/create":
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        elif target == b"/v1.41/containers/abc/logs?follow=1":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for line in (b"one\n", b"two\n"):
                writer.write(b"%x\r\n%s\r\n" % (len(line), line))
                await writer.drain()
                await asyncio.sleep(0.05)
            writer.write(b"0\r\n\r\n")
        elif target == b"/v1.41/containers/abc/logs?follow=forever":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                while True:
                    writer.write(b"5\r\nline\n\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.05)
            except ConnectionError:
                STREAM_DROPPED[0].set()
                break
        elif target.startswith(b"/v1.41/containers/abc/attach?stream=1&stdin=1"):
            if b"upgrade: tcp" in head.lower():
                writer.write(
                    b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
                )
            else:  # the older form: 200 and a raw stream without length
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
                )
            received = b""
            while data := await reader.read(1024):  # until the client's half-close
                received += data
            writer.write(received.upper() + b"bye")
            await writer.drain()
            break
        await writer.drain()
    writer.close()


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="OK from shoal")


@pytest.fixture
async def front(tmp_path):
    engine_sock = tmp_path / "engine.sock"
    engine = await asyncio.start_unix_server(fake_engine, str(engine_sock))
    app = web.Application()
    app.router.add_get("/_ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    assert runner.server is not None
    front = Front(runner.server, EngineProxy(f"unix://{engine_sock}"))
    server = await asyncio.get_running_loop().create_unix_server(
        front.protocol, str(tmp_path / "front.sock")
    )
    yield tmp_path / "front.sock"
    server.close()
    await front.close()
    await runner.cleanup()
    engine.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    if b"content-length:" in lower:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        return head, await reader.readexactly(length)
    body = b""
    while True:  # chunked
        size = int(await reader.readuntil(b"\r\n"), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return head, body
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def test_one_connection_engine_and_shoal_and_a_tunnel(front):
    reader, writer = await asyncio.open_unix_connection(str(front))
    writer.write(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n")
    head, body = await read_response(reader)
    assert head.startswith(b"HTTP/1.1 200 OK") and body == CONTAINERS

    writer.write(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
    head, body = await read_response(reader)
    assert body == b"OK from shoal"

    payload = b'{"Image":"busybox"}'
    writer.write(
        b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: %d\r\n\r\n"
        % len(payload)
    )
    await asyncio.sleep(0.05)  # the body in a piece of its own
    writer.write(payload)
    head, body = await read_response(reader)
    assert head.startswith(b"HTTP/1.1 201 Created") and body == payload

    writer.write(b"GET /v1.41/containers/abc/logs?follow=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
    head, body = await read_response(reader)
    assert body == b"one\ntwo\n"

    writer.write(
        b"POST /v1.41/containers/abc/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\n"
        b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED")
    writer.write(b"hello ")
    writer.write(b"world ")
    writer.write_eof()  # done sending: the answer still comes
    assert await asyncio.wait_for(reader.read(), 10) == b"HELLO WORLD bye"
    writer.close()


async def test_the_older_hijack_without_upgrade(front):
    reader, writer = await asyncio.open_unix_connection(str(front))
    writer.write(
        b"POST /v1.41/containers/abc/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"raw-stream" in head
    writer.write(b"old form ")
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 10) == b"OLD FORM bye"
    writer.close()


async def test_a_client_that_hangs_up_ends_the_upstream_stream(front, tmp_path):
    STREAM_DROPPED[:] = [asyncio.Event()]
    reader, writer = await asyncio.open_unix_connection(str(front))
    writer.write(b"GET /v1.41/containers/abc/logs?follow=forever HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"line\n")
    writer.close()
    await writer.wait_closed()
    await asyncio.wait_for(STREAM_DROPPED[0].wait(), 10)
    # The front serves the next client as before.
    reader, writer = await asyncio.open_unix_connection(str(front))
    writer.write(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
    _head, body = await read_response(reader)
    assert body == b"OK from shoal"
    assert await reader.read() == b""  # closed, as asked
    writer.close()


def test_the_read_lane_takes_its_routes_only() -> None:
    from shoal.engineapi.front import ENGINE, READ, SHOAL
    from shoal.engineapi.read_lane import ReadLane

    lane = ReadLane([("GET", "/nodes"), ("GET", "/nodes/{id}")], lambda: asyncio.Protocol())
    front = Front(lambda: asyncio.Protocol(), EngineProxy("unix:///nonexistent"), reads=lane)
    assert front.kind_of("GET", "/nodes") == READ
    assert front.kind_of("GET", "/v1.41/nodes?filters=%7B%7D") == READ
    assert front.kind_of("GET", "/nodes/abc") == READ
    assert front.kind_of("GET", "/nodes/abc/update") == SHOAL
    assert front.kind_of("POST", "/nodes/abc") == SHOAL
    assert front.kind_of("GET", "/nodes/") == SHOAL
    assert front.kind_of("GET", "/nodesx") == ENGINE
    assert front.kind_of("GET", "/v1.99/nodes") == SHOAL  # refused: shoal says why
    assert front.kind_of("GET", "/containers/json") == ENGINE
