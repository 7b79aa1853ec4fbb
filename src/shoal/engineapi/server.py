"""The HTTP application and its unix socket."""

import logging
import os
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from shoal.engineapi import (
    api_versions,
    events,
    logs,
    networks,
    nodes,
    passthrough,
    plans,
    request_metrics,
    secrets,
    services,
    swarm,
    system,
    tasks,
)
from shoal.engineapi.backend import Backend
from shoal.engineapi.engine_proxy import ENGINE, EngineProxy
from shoal.engineapi.responses import BACKEND, error_response, json_response
from shoal.errors import ShoalError

log = logging.getLogger(__name__)


@web.middleware
async def docker_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ShoalError as err:
        return error_response(err)
    except web.HTTPNotFound:
        return json_response({"message": "page not found"}, status=404)
    except web.HTTPMethodNotAllowed:
        return json_response({"message": "page not found"}, status=404)
    except web.HTTPException:
        raise
    except Exception as err:
        log.exception("error handling %s %s", request.method, request.path)
        return json_response({"message": str(err) or type(err).__name__}, status=500)


class _VersionedRoutes:
    """Registers each route twice: Docker clients put the API version in the path
    (/v1.47/services), and plain paths (/services) are accepted too."""

    _PREFIX = r"/{api_version:v[0-9]+\.[0-9]+}"

    def __init__(self, router: web.UrlDispatcher) -> None:
        self._router = router

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self._router.add_route(method, path, handler)
        self._router.add_route(method, self._PREFIX + path, handler)

    def add_get(self, path: str, handler: Handler) -> None:
        self.add_route("GET", path, handler)

    def add_post(self, path: str, handler: Handler) -> None:
        self.add_route("POST", path, handler)

    def add_delete(self, path: str, handler: Handler) -> None:
        self.add_route("DELETE", path, handler)


# The reads answered on the API's own thread (``engineapi.read_lane``): each reads the store
# alone and needs nothing of the node's own event loop (not /_ping, /info or networks: they
# ask the engine too). The main application answers them as well, as it does any request.
READS: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/nodes", nodes.list_nodes),
    ("GET", "/nodes/{id}", nodes.inspect),
    ("GET", "/services", services.list_services),
    ("GET", "/services/{id}", services.inspect),
    ("GET", "/tasks", tasks.list_tasks),
    ("GET", "/tasks/{id}", tasks.inspect),
)


def _application() -> web.Application:
    return web.Application(
        middlewares=[request_metrics.request_metrics, api_versions.negotiate, docker_errors]
    )


def build_read_app(app: web.Application) -> web.Application:
    """The read lane's application for ``app`` (``build_app``'s): the same backend and engine,
    the routes of ``READS`` only."""
    reads = _application()
    reads[BACKEND] = app[BACKEND]
    reads[ENGINE] = app[ENGINE]  # closed with ``app``
    reads.on_response_prepare.append(api_versions.add_headers)
    nodes.keep_node_texts(reads)
    r = _VersionedRoutes(reads.router)
    for method, path, handler in READS:
        r.add_route(method, path, handler)
    return reads


def build_app(backend: Backend) -> web.Application:
    app = _application()
    app[BACKEND] = backend
    _with_engine(app, EngineProxy(backend.engine_host))
    nodes.keep_node_texts(app)
    r = _VersionedRoutes(app.router)
    for method, path, handler in READS:
        r.add_route(method, path, handler)
    r.add_route("GET", "/_ping", system.ping)
    r.add_route("HEAD", "/_ping", system.ping)
    r.add_get("/version", system.version)
    r.add_get("/info", system.info)
    r.add_get("/events", events.events)

    r.add_get("/swarm", swarm.inspect)
    r.add_post("/swarm/init", swarm.init)
    r.add_post("/swarm/join", swarm.join)
    r.add_post("/swarm/leave", swarm.leave)
    r.add_post("/swarm/update", swarm.update)
    r.add_get("/swarm/unlockkey", swarm.unlock_key)
    r.add_post("/swarm/unlock", swarm.unlock)

    r.add_post("/nodes/{id}/update", nodes.update)
    r.add_delete("/nodes/{id}", nodes.remove)

    r.add_post("/services/create", services.create)
    r.add_post("/services/{id}/update", services.update)
    r.add_delete("/services/{id}", services.remove)
    r.add_get("/services/{id}/logs", logs.service_logs)

    r.add_get("/networks", networks.list_networks)
    r.add_post("/networks/create", networks.create)
    r.add_post("/networks/prune", networks.prune)
    r.add_get("/networks/{id}", networks.inspect)
    r.add_delete("/networks/{id}", networks.remove)

    for path, kind in (("/secrets", secrets.SECRET), ("/configs", secrets.CONFIG)):
        handlers = secrets.routes(kind)
        r.add_get(path, handlers["list"])
        r.add_post(path + "/create", handlers["create"])
        r.add_get(path + "/{id}", handlers["inspect"])
        r.add_post(path + "/{id}/update", handlers["update"])
        r.add_delete(path + "/{id}", handlers["remove"])

    r.add_get("/tasks/{id}/logs", logs.task_logs)

    # shoal's own: plans of changes (--dry-run).
    plans.add_routes(r.add_post)

    # Last: everything else is the engine's.
    app.router.add_route("*", "/{path:.*}", passthrough.passthrough)
    return app


def _with_engine(app: web.Application, proxy: EngineProxy) -> None:
    app[ENGINE] = proxy
    app.on_response_prepare.append(api_versions.add_headers)

    async def close_engine(_app: web.Application) -> None:
        await proxy.close()

    app.on_cleanup.append(close_engine)


async def serve_unix(app: web.Application, path: Path) -> web.AppRunner:
    """Serve on a unix socket readable only by the owner and root (the socket is as good
    as root on the cluster)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.UnixSite(runner, str(path))
    await site.start()
    os.chmod(path, 0o660)
    return runner
