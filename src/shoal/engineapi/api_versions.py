"""API version negotiation as Docker's daemon does it: a request's /vX.Y prefix must be within
the versions the node speaks (else 400, in Docker 20.10's words), and every answer says the
newest (``API-Version``) and who answers (``Server``, ``OSType``).

The newest version is shoal's, or its engine's where that is older: a client negotiates once
(on /_ping) for both the swarm endpoints and those passed to the engine, so it must get a
version both understand."""

import functools
import json
import re

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.typedefs import Handler

import shoal
from shoal.engineapi.engine_proxy import ENGINE, EngineProxy
from shoal.engineapi.version import API_VERSION, MIN_API_VERSION

# Docker's router: /v{version:[0-9.]+}/...
_PREFIX = re.compile(r"^/v([0-9.]+)(?=/|$)")


@functools.lru_cache(maxsize=256)
def version_key(text: str) -> tuple[int, ...]:
    """Go's versions.compare: dot-separated numbers, a missing part is 0."""
    parts = []
    for part in text.split("."):
        try:
            parts.append(int(part))
        except ValueError:
            parts.append(0)
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def newest(engine_version: str | None) -> str:
    """The newest API version the node speaks: shoal's, or its engine's where older."""
    if engine_version and version_key(engine_version) < version_key(API_VERSION):
        return engine_version
    return API_VERSION


def requested(path: str) -> str | None:
    match = _PREFIX.match(path)
    return match.group(1) if match else None


def refusal(version: str, maximum: str) -> web.Response | None:
    """Docker 20.10's answer to a version it does not speak, or None for one it does. A
    version too old is a plain-text error there (http.Error), one too new a JSON one."""
    if version_key(version) < version_key(MIN_API_VERSION):
        text = (
            f"client version {version} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version\n"
        )
        return web.Response(
            status=400,
            body=text.encode(),
            headers={
                "Content-Type": "text/plain; charset=utf-8",
                "X-Content-Type-Options": "nosniff",
            },
        )
    if version_key(version) > version_key(maximum):
        message = f"client version {version} is too new. Maximum supported API version is {maximum}"
        body = json.dumps({"message": message}, separators=(",", ":")) + "\n"
        return web.Response(
            status=400, body=body.encode(), headers={"Content-Type": "application/json"}
        )
    return None


def server_header(proxy: EngineProxy) -> str:
    """Docker's ``Server: Docker/<version> (linux)``: the engine's where it answers (the
    /version this node shows is the engine's), else shoal's version in Docker's form."""
    return proxy.ping_headers.get("Server") or f"Docker/{shoal.__version__} (linux)"


def maximum(proxy: EngineProxy) -> str:
    return newest(proxy.ping_headers.get("Api-Version"))


@web.middleware
async def negotiate(request: web.Request, handler: Handler) -> web.StreamResponse:
    version = requested(request.path)
    if version is not None:
        refused = refusal(version, maximum(request.app[ENGINE]))
        if refused is not None:
            return refused
    return await handler(request)


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer, shoal's own or the engine's, carries the node's API version; shoal's own
    also say who answers, as Docker's daemon does."""
    proxy = request.app[ENGINE]
    response.headers["API-Version"] = maximum(proxy)
    # aiohttp names itself by default; the engine's own answers keep the engine's name.
    if response.headers.get("Server", SERVER_SOFTWARE) == SERVER_SOFTWARE:
        response.headers["Server"] = server_header(proxy)
    if "OSType" not in response.headers:
        response.headers["OSType"] = "linux"
