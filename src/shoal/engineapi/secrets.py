"""/secrets and /configs: list, create, inspect, update (labels only) and remove, as Docker's
daemon answers them (its status codes, its body decoding errors). Both kinds work alike; a
``Kind`` says which control API calls and which Go struct a route uses. A secret is always
shown without its data (``Secret.to_api``)."""

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from shoal.engineapi.go_fields import CONFIG_SPEC, SECRET_SPEC, decode_struct
from shoal.engineapi.responses import BACKEND, json_response, read_json
from shoal.errors import InvalidArgument
from shoal.manager.controlapi.filters import Filters

# The first API version that takes Spec.Templating.
TEMPLATING_SINCE = (1, 37)


@dataclass(frozen=True)
class Kind:
    word: str  # "secret" or "config"
    struct: dict[str, Any]  # the Go struct a body is decoded into


SECRET = Kind("secret", SECRET_SPEC)
CONFIG = Kind("config", CONFIG_SPEC)


def _api_version(request: web.Request) -> tuple[int, int] | None:
    text = request.match_info.get("api_version")
    if not text:
        return None  # no version in the path: the newest
    major, _, minor = text[1:].partition(".")
    return int(major), int(minor)


async def _read_spec(request: web.Request, kind: Kind) -> dict[str, Any]:
    if not await request.read():
        raise InvalidArgument("got EOF while reading request body")
    return decode_struct(await read_json(request), kind.struct)


def _control(request: web.Request, kind: Kind, action: str) -> Any:
    """The control API's ``<action>_<kind>`` (create_secret, get_config...; list_secrets)."""
    plural = "s" if action == "list" else ""
    return getattr(request.app[BACKEND].control(), f"{action}_{kind.word}{plural}")


def routes(kind: Kind) -> dict[str, Any]:
    """The handlers of one kind, by what they do."""

    async def list_all(request: web.Request) -> web.Response:
        found = _control(request, kind, "list")(Filters.parse(request.query.get("filters")))
        return json_response([o.to_api() for o in found])

    async def create(request: web.Request) -> web.Response:
        spec = await _read_spec(request, kind)
        version = _api_version(request)
        if "Templating" in spec and version is not None and version < TEMPLATING_SINCE:
            raise InvalidArgument(
                f"{kind.word} templating is not supported on the specified API version: "
                f"{version[0]}.{version[1]}"
            )
        created = await _control(request, kind, "create")(spec)
        return json_response({"ID": created.ID}, status=201)

    async def inspect(request: web.Request) -> web.Response:
        found = _control(request, kind, "get")(request.match_info["id"])
        return json_response(found.to_api())

    async def update(request: web.Request) -> web.Response:
        spec = await _read_spec(request, kind)
        raw = request.query.get("version", "")
        if not raw.isascii() or not raw.isdigit() or int(raw) >= 1 << 64:
            raise InvalidArgument(f"invalid {kind.word} version")
        await _control(request, kind, "update")(request.match_info["id"], int(raw), spec)
        return web.Response(status=200)

    async def remove(request: web.Request) -> web.Response:
        await _control(request, kind, "remove")(request.match_info["id"])
        return web.Response(status=204)

    return {
        "list": list_all,
        "create": create,
        "inspect": inspect,
        "update": update,
        "remove": remove,
    }
