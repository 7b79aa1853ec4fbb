"""JSON responses and errors as Docker's daemon writes them."""

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web

from shoal.clock import LoopTurns
from shoal.engineapi.backend import Backend
from shoal.errors import ShoalError


def json_response(data: Any, status: int = 200) -> web.Response:
    # Docker's encoder ends every JSON body with a newline.
    return json_body_response((encode(data) + "\n").encode(), status)


def encode(data: Any) -> str:
    """``data`` as JSON, as Docker's encoder writes it (no spaces)."""
    return json.dumps(data, separators=(",", ":"))


def json_body_response(body: bytes, status: int = 200) -> web.Response:
    # The content type carries no charset, as Docker's: Docker's client only decodes an error
    # body whose type is exactly "application/json".
    return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})


T = TypeVar("T")

# A list of 25,000 tasks takes seconds to convert and encode under load, and everything else
# on the event loop, raft's heartbeats among it, waited behind it (issue 15: a leader that
# answered `GET /tasks` lost leadership). Lists are converted a slice at a time, letting the
# loop run in between, and a long one encoded in a thread, a slice of items at a time: the
# json module's encoder is C that never lets go of the interpreter lock, so one call over
# 100,000 tasks held it (the loop and raft's stand-in heartbeat thread with it) for seconds,
# and a 1,000-node leader lost its leadership to the benchmark's own `GET /tasks`.
ENCODE_IN_THREAD = 1000  # items from which a list is encoded in a worker thread
ENCODE_SLICE = 200  # items encoded by one call of the json module's C encoder


async def api_list(items: Iterable[T], to_api: Callable[[T], Any]) -> list[Any]:
    """``[to_api(i) for i in items]``, letting the event loop run every ``LOOP_SLICE`` of
    work. The items are a list read from the store, whose objects are never changed in place,
    so the answer is still one moment's state."""
    out = []
    turns = LoopTurns()
    for item in items:
        out.append(to_api(item))
        await turns.between()
    return out


async def list_response(data: list[Any]) -> web.Response:
    """``json_response`` for a list, encoded in a worker thread when it is long."""
    if len(data) < ENCODE_IN_THREAD:
        return json_response(data)
    return json_body_response(await asyncio.to_thread(encode_list, data))


def encode_list(data: list[Any]) -> bytes:
    """``json_response``'s body for ``data``, byte for byte, made ``ENCODE_SLICE`` items at a
    time so that the interpreter lock is let go between two slices."""
    parts = [b"["]
    for first in range(0, len(data), ENCODE_SLICE):
        if first:
            parts.append(b",")
        # "[a,b]" without its brackets: the items, as one call over the whole list writes them.
        parts.append(encode(data[first : first + ENCODE_SLICE])[1:-1].encode())
    parts.append(b"]\n")
    return b"".join(parts)


class ApiTexts:
    """Each object's JSON as the API shows it (``to_api``, encoded as ``json_response`` does),
    kept while the store holds that very object: the store never changes an object in place,
    so the same object always reads the same. A `node ls` of 1,000 nodes dumped and encoded
    every node at each call, about 30 ms (issue 15), though nodes seldom change; now it joins
    texts. Used from either thread the API answers on: a lookup and a store are one step each
    (at worst, two callers encode the same object)."""

    def __init__(self, to_api: Callable[[Any], Any]) -> None:
        self._to_api = to_api
        self._texts: dict[str, tuple[Any, str]] = {}

    def text(self, obj: Any) -> str:
        kept = self._texts.get(obj.ID)
        if kept is not None and kept[0] is obj:
            return kept[1]
        text = encode(self._to_api(obj))
        self._texts[obj.ID] = (obj, text)
        return text

    def __len__(self) -> int:
        return len(self._texts)

    async def list_response(self, items: list[Any]) -> web.Response:
        """``list_response(await api_list(items, to_api))``, byte for byte, from the texts. The
        texts of objects no longer listed are forgotten (when a full list shows it)."""
        texts = []
        turns = LoopTurns()
        for item in items:
            texts.append(self.text(item))
            await turns.between()
        if len(self._texts) > 2 * len(items) + 16:
            listed = {item.ID for item in items}
            self._texts = {k: v for k, v in list(self._texts.items()) if k in listed}
        return json_body_response(("[" + ",".join(texts) + "]\n").encode())


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
