"""The API's read lane: the requests that only read the swarm's state (`node ls`, `service
ls`, `service ps`, inspect), answered by an application of their own on the API's thread
(``engineapi.api_thread``) rather than on the node's event loop, which at scale is busy in
turns of a tenth of a second or more (issue 15).

What makes a read safe there: the store's objects are never changed in place, and each of
its reads copies what it returns (a table's objects, an index's bucket) in one step, so a
read from this thread sees each object whole, as some moment left it. A handler here may
read the store and whatever is kept beside it for reads (the service counts); it must not
write, nor await anything of the node's own loop."""

import asyncio
import re
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

# The node's own event loop, in the read lane's application.
HOME_LOOP: web.AppKey[asyncio.AbstractEventLoop] = web.AppKey(
    "home_loop", asyncio.AbstractEventLoop
)


async def at_home(request: web.Request, coro: Coroutine[Any, Any, T]) -> T:
    """``await coro`` on the node's own event loop, whichever loop ``request`` is served on:
    for what a read must rarely do there (count the service's tasks from the tables)."""
    home = request.app.get(HOME_LOOP)
    if home is None or home is asyncio.get_running_loop():
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, home))


class ReadLane:
    """Which requests are the read lane's (``routes``: method and path, as aiohttp's, the
    API version left out), and the server (protocol factory) answering them."""

    def __init__(
        self, routes: Iterable[tuple[str, str]], server: Callable[[], asyncio.Protocol]
    ) -> None:
        self.server = server
        by_method: dict[str, list[str]] = {}
        for method, path in routes:
            by_method.setdefault(method, []).append(_pattern(path))
        self._routes = {m: re.compile("|".join(ps)) for m, ps in by_method.items()}

    def answers(self, method: str, path: str) -> bool:
        pattern = self._routes.get(method)
        return pattern is not None and pattern.fullmatch(path) is not None


def _pattern(path: str) -> str:
    """An aiohttp route's path (``/nodes/{id}``) as a regular expression."""
    parts = re.split(r"(\{[^}]+\})", path)
    return "(?:" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + ")"
