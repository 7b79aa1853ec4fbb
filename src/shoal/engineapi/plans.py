"""/shoal/plan/...: what a service change would do, without making it (``--dry-run``).

shoal's own paths, not query parameters on Docker's: a real Docker daemon ignores a query
parameter it does not know and would make the change, where it answers these paths with 404
("page not found"), which the CLI turns into a clear message. The request bodies and query
parameters are those of the Docker endpoint each one plans (POST /services/create, POST
/services/{id}/update), and so are the errors: a change the daemon would refuse is refused
here in the same words and status.
"""

from collections.abc import Awaitable, Callable

from aiohttp import web

from shoal.engineapi.responses import BACKEND, json_response, query_int, read_json
from shoal.errors import InvalidArgument
from shoal.manager.plan import plan_service_create, plan_service_update

PREFIX = "/shoal/plan"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def service_create(request: web.Request) -> web.Response:
    backend = request.app[BACKEND]
    control = backend.control()
    control.get_cluster()  # a read: refused as reads are (no leader known, say)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidArgument("invalid service spec")
    plan = await plan_service_create(control.store, backend.clock, body)
    return json_response(plan.to_json())


async def service_update(request: web.Request) -> web.Response:
    backend = request.app[BACKEND]
    control = backend.control()
    control.get_cluster()
    body = await read_json(request)
    rollback = request.query.get("rollback", "")
    if rollback not in ("", "previous"):
        raise InvalidArgument(f"unrecognized rollback option {rollback}")
    plan = await plan_service_update(
        control.store,
        backend.clock,
        request.match_info["id"],
        version=query_int(request, "version"),
        spec=body,
        rollback=rollback == "previous",
    )
    return json_response(plan.to_json())


def add_routes(add_post: Callable[[str, Handler], None]) -> None:
    add_post(PREFIX + "/services/create", service_create)
    add_post(PREFIX + "/services/{id}/update", service_update)
