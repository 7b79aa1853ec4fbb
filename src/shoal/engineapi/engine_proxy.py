"""The node's Docker Engine behind shoal's API: every request that is not one of the swarm's
goes to the engine unchanged (method, path with its /vX.Y prefix, query, headers, body) and
the engine's status, headers and body come back unchanged, both ways streamed, as if the
client spoke to the engine itself. This is the application's way to the engine (for local
networks, /info, /version, and what the front could not pass on itself); the front
(engineapi.front) passes most requests on as bytes, hijacked ones included.

A node without an engine, or whose engine does not answer, refuses these requests as Docker
refuses what is unavailable (503), saying which."""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from shoal.errors import Unavailable

log = logging.getLogger(__name__)

# Headers that describe one hop of a connection, not the message (RFC 9110 7.6.1): each side
# of the proxy sets its own.
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
    )
)
# A body up to this size is read whole and answered in one write (most API calls); a longer
# one, or one of unknown length (logs -f, pull progress, export), is streamed as it comes.
WHOLE_BODY_LIMIT = 256 * 1024
# How often a quiet stream (logs -f, stats, events) checks whether its client has hung up.
DISCONNECT_POLL = 0.5
READ_BUFSIZE = 1 << 20


def no_engine_message() -> str:
    return (
        "this shoal node has no Docker Engine (shoal daemon --engine-host none): "
        "containers, images, volumes and plugins are unavailable here"
    )


def unreachable_message(host: str) -> str:
    # The second sentence is the Docker CLI's own for an engine that does not answer.
    return (
        f"this shoal node's Docker Engine is unreachable: Cannot connect to the Docker daemon "
        f"at {host}. Is the docker daemon running?"
    )


@dataclass(frozen=True)
class EngineAddress:
    """Where the engine listens: a unix socket path, or a TCP host and port."""

    url: str
    unix_path: str | None = None
    host: str = ""
    port: int = 0

    @classmethod
    def parse(cls, url: str) -> "EngineAddress":
        if url.startswith("unix://"):
            return cls(url, unix_path=url[len("unix://") :])
        parts = urlsplit(url if "://" in url else f"tcp://{url}")
        if parts.scheme not in ("tcp", "http") or not parts.hostname:
            raise ValueError(f"unsupported engine address {url!r}: use unix:// or tcp://")
        return cls(url, host=parts.hostname, port=parts.port or 2375)


def forwarded_headers(headers: Any) -> list[tuple[str, str]]:
    """A message's headers as the next hop gets them: all but the hop-by-hop ones."""
    return [(k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP]


class EngineProxy:
    def __init__(self, host: str | None) -> None:
        """``host``: the engine's address (unix:// or tcp://); None for a node without one."""
        self.address = EngineAddress.parse(host) if host else None
        self._session: aiohttp.ClientSession | None = None
        # What the engine said last on /_ping (its API version above all), while known.
        self.ping_headers: dict[str, str] = {}

    @property
    def host(self) -> str:
        return self.address.url if self.address is not None else ""

    def unavailable(self, err: BaseException | None = None) -> Unavailable:
        if self.address is None:
            return Unavailable(no_engine_message())
        return Unavailable(unreachable_message(self.address.url))

    def _client(self) -> aiohttp.ClientSession:
        if self.address is None:
            raise self.unavailable()
        if self._session is None:
            connector: aiohttp.BaseConnector
            if self.address.unix_path is not None:
                connector = aiohttp.UnixConnector(self.address.unix_path, limit=0)
                base = "http://docker"
            else:
                connector = aiohttp.TCPConnector(limit=0)
                base = f"http://{self.address.host}:{self.address.port}"
            self._session = aiohttp.ClientSession(
                base_url=base,
                connector=connector,
                auto_decompress=False,
                read_bufsize=READ_BUFSIZE,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                # The client's own headers, and none of aiohttp's, reach the engine.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- what shoal asks the engine itself ----------------------------------------------------

    async def ping(self) -> dict[str, str]:
        """The engine's /_ping headers (API-Version...); raises Unavailable if it is down."""
        try:
            async with self._client().get("/_ping") as resp:
                await resp.read()
                self.ping_headers = dict(resp.headers)
        except (aiohttp.ClientError, OSError) as err:
            raise self.unavailable(err) from None
        return self.ping_headers

    async def get_json(self, path: str) -> Any:
        """The engine's JSON answer to a GET (its /info, /version); Unavailable if it is down
        or answers with an error."""
        try:
            async with self._client().get(path) as resp:
                if resp.status != 200:
                    raise Unavailable(f"the Docker Engine answered {path} with {resp.status}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, OSError, ValueError) as err:
            raise self.unavailable(err) from None

    async def events(self, since: str, until: str, filters: str) -> AsyncIterator[Any]:
        """The engine's own events for a query (its GET /events replays, filters and ends at
        ``until`` by itself), as they come. An engine that is absent, down or refuses the
        query adds nothing: the node's other events still flow."""
        if self.address is None:
            return
        params = {k: v for k, v in (("since", since), ("until", until), ("filters", filters)) if v}
        try:
            async with self._client().get("/events", params=params) as resp:
                if resp.status != 200:
                    log.info("engine events: the engine answered %s", resp.status)
                    return
                async for line in resp.content:
                    if line.strip():
                        yield json.loads(line)
        except (aiohttp.ClientError, OSError, ValueError) as err:
            log.info("engine events: %s", err)

    # --- passing a request on -----------------------------------------------------------------

    async def forward(
        self, request: web.Request, body: bytes | None = None, target: str | None = None
    ) -> web.StreamResponse:
        """The engine's answer to ``request``, passed back as it comes. ``body``: the request's
        body where a handler has read it already; ``target``: another path and query."""
        session = self._client()
        data: Any = None
        if body is not None:
            data = body
        elif request.body_exists:
            data = request.content
        try:
            resp = await session.request(
                request.method,
                target or request.raw_path,
                headers=forwarded_headers(request.headers),
                data=data,
                allow_redirects=False,
                compress=False,
            )
        except (aiohttp.ClientConnectionError, OSError) as err:
            raise self.unavailable(err) from None
        try:
            return await self._answer(request, resp)
        finally:
            resp.release()

    async def _answer(
        self, request: web.Request, resp: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        headers = [
            (k, v) for k, v in forwarded_headers(resp.headers) if k.lower() != "content-length"
        ]
        length = resp.content_length
        if request.method != "HEAD" and length is not None and length <= WHOLE_BODY_LIMIT:
            payload = await resp.read()
            whole = web.Response(status=resp.status, reason=resp.reason, body=payload)
            _copy_headers(whole, headers)
            return whole
        out = web.StreamResponse(status=resp.status, reason=resp.reason)
        _copy_headers(out, headers)
        if length is not None:
            out.content_length = length
        await out.prepare(request)
        if request.method != "HEAD":
            await _pump_until_hangup(request, resp, out)
        with contextlib.suppress(ConnectionError):
            await out.write_eof()
        return out


def _copy_headers(out: web.StreamResponse, headers: list[tuple[str, str]]) -> None:
    for key, value in headers:
        out.headers.add(key, value)


async def _pump_until_hangup(
    request: web.Request, resp: aiohttp.ClientResponse, out: web.StreamResponse
) -> None:
    """Copy the engine's body to the client as it arrives, until it ends or the client hangs
    up (then the engine's stream is dropped: a `logs -f` or `stats` must not outlive its
    reader)."""

    async def pump() -> None:
        async for chunk in resp.content.iter_any():
            await out.write(chunk)

    task = asyncio.ensure_future(pump())
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL)
            transport = request.transport
            if not task.done() and (transport is None or transport.is_closing()):
                task.cancel()
        try:
            await task
        except (asyncio.CancelledError, ConnectionError):
            pass
        except aiohttp.ClientError:
            # The engine's stream broke off: so does the client's, rather than end as if whole.
            if request.transport is not None:
                request.transport.close()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


# The node's engine, as the app reaches it.
ENGINE: web.AppKey[EngineProxy] = web.AppKey("engine", EngineProxy)
