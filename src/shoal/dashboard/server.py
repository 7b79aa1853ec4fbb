"""The dashboard's web server: the page (static files shipped in the package), the state as
JSON, and a websocket that keeps the page up to date. Read-only: nothing here changes the
cluster; the only thing a page sends is which service or node it shows the tasks of.

Who may read it: with the API's TLS flags it is served with the API's TLS settings, so that
``--tlsverify`` asks every browser for a client certificate from the API's CA (mutual TLS),
as the API does. Without them it is open to whoever reaches its address, as the API's unix
socket is to local users: keep it on a loopback address then. Such a page is still kept from
other web sites: a websocket is not bound by the same-origin rule, so one opened from another
origin is refused, and a request whose Host header is a name (not an address) is refused too,
so that a site cannot point its own name at 127.0.0.1 and read the page as its own.
"""

import asyncio
import contextlib
import ipaddress
import json
import logging
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from shoal.dashboard.hub import Hub, Selection
from shoal.engineapi.listeners import INSECURE_WARNING, TLSSettings

log = logging.getLogger(__name__)

STATIC_FILES = {
    "index.html": "text/html",
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
}
# Headers every answer carries: nothing is fetched from elsewhere, no other site frames it.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)
OPEN: web.AppKey[bool] = web.AppKey("open", bool)  # no client certificate asked for
PLAIN: web.AppKey[bool] = web.AppKey("plain", bool)  # no TLS at all
SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("sockets")


def parse_addr(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; ``:PORT`` for 127.0.0.1)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid address {text!r}: expected HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def _load_static() -> dict[str, bytes]:
    folder = resources.files("shoal.dashboard").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC_FILES}


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host == "localhost"
    return True


@web.middleware
async def _guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Keep other web sites out of an open (no client certificate) dashboard."""
    if request.app[PLAIN]:
        # (Over TLS a site's own name fails the certificate check instead.)
        host = urlsplit(f"//{request.host}").hostname or ""
        if not _is_address(host):
            raise web.HTTPForbidden(text="dashboard: address it by IP (or localhost)\n")
    if request.app[OPEN]:
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text="dashboard: cross-origin request refused\n")
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    return response


def build_app(hub: Hub, tls: TLSSettings | None) -> web.Application:
    app = web.Application(middlewares=[_guard])
    app[HUB] = hub
    app[OPEN] = tls is None or not tls.verify
    app[PLAIN] = tls is None
    app[SOCKETS] = set()
    static = _load_static()

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=static["index.html"], content_type="text/html")

    async def static_file(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in static:
            raise web.HTTPNotFound()
        return web.Response(body=static[name], content_type=STATIC_FILES[name])

    async def state(request: web.Request) -> web.Response:
        return web.json_response(hub.state())

    async def tasks(request: web.Request) -> web.Response:
        selection = _selection(dict(request.query))
        if selection is None:
            raise web.HTTPBadRequest(text="give service=ID or node=ID\n")
        return web.json_response(hub.task_list(selection))

    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static_file)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/tasks", tasks)
    app.router.add_get("/api/stream", stream)
    app.on_shutdown.append(_close_sockets)
    return app


def _selection(query: dict[str, Any]) -> Selection | None:
    for kind in ("service", "node"):
        ident = query.get(kind)
        if isinstance(ident, str) and ident:
            return kind, ident
    return None


async def stream(request: web.Request) -> web.WebSocketResponse:
    """The page's live feed: messages from the hub; the page sends only its selection
    (``{"select": {"service": ID}}``, ``{"select": {"node": ID}}`` or ``{"select": null}``)."""
    hub = request.app[HUB]
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=64 * 1024)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    viewer = hub.attach()

    async def send() -> None:
        while (message := await viewer.next()) is not None:
            await ws.send_str(json.dumps(message, separators=(",", ":")))
        await ws.close()  # dropped for lagging: the page reconnects and starts afresh

    sender = asyncio.create_task(send(), name="dashboard page")
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                continue
            if isinstance(data, dict) and "select" in data:
                chosen = data["select"]
                hub.select(viewer, _selection(chosen) if isinstance(chosen, dict) else None)
    finally:
        hub.detach(viewer)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        request.app[SOCKETS].discard(ws)
    return ws


async def _close_sockets(app: web.Application) -> None:
    sockets: set[web.WebSocketResponse] = app[SOCKETS]
    for ws in list(sockets):
        await ws.close(code=1001, message=b"server shutting down")


class DashboardServer:
    """The hub following the node, and the web server on ``host:port``."""

    def __init__(self, hub: Hub, host: str, port: int, tls: TLSSettings | None) -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self.tls = tls
        self._runner: web.AppRunner | None = None
        self._hub_task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/"

    async def start(self) -> None:
        ssl_context = self.tls.server_context() if self.tls is not None else None
        if (self.tls is None or not self.tls.verify) and not _is_loopback(self.host):
            log.warning("dashboard on %s without --tlsverify: %s", self.host, INSECURE_WARNING)
        runner = web.AppRunner(build_app(self.hub, self.tls), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, ssl_context=ssl_context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._hub_task = asyncio.create_task(self.hub.run(), name="dashboard hub")
        log.info("dashboard on %s", self.url)

    async def stop(self) -> None:
        if self._hub_task is not None:
            self._hub_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._hub_task
            self._hub_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
