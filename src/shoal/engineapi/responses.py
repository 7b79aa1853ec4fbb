"""JSON responses and errors as Docker's daemon writes them."""

import json
from typing import Any

from aiohttp import web

from shoal.engineapi.backend import Backend
from shoal.errors import ShoalError


def json_response(data: Any, status: int = 200) -> web.Response:
    # Docker's encoder ends every JSON body with a newline.
    # The content type carries no charset, as Docker's: Docker's client only decodes an error
    # body whose type is exactly "application/json".
    body = json.dumps(data, separators=(",", ":")) + "\n"
    return web.Response(
        body=body.encode(), status=status, headers={"Content-Type": "application/json"}
    )


def error_response(err: ShoalError) -> web.Response:
    return json_response({"message": err.message}, status=err.status)


async def read_json(request: web.Request) -> Any:
    from shoal.errors import InvalidArgument

    raw = await request.read()
    if not raw:
        return {}
    try:
        return _without_nulls(json.loads(raw))
    except json.JSONDecodeError as err:
        raise InvalidArgument(f"invalid JSON: {err.msg}") from None


def _without_nulls(value: Any) -> Any:
    """Go clients send null for empty maps and lists ("Labels": null): to Go that is the
    empty value, so the field is simply left out here."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def query_bool(request: web.Request, name: str) -> bool:
    """Docker's boolValue: absent, "", "0", "no", "false", "none" are false."""
    value = request.query.get(name, "").strip().lower()
    return value not in ("", "0", "no", "false", "none")


def query_int(request: web.Request, name: str, default: int = 0) -> int:
    from shoal.errors import InvalidArgument

    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"invalid {name} value: {value}") from None


# The node behind the API.
BACKEND: web.AppKey[Backend] = web.AppKey("backend", Backend)
