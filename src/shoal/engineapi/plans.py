"""/shoal/plan/...: what a service change or a stack deploy would do, without making it
(``--dry-run``).

shoal's own paths, not query parameters on Docker's: a real Docker daemon ignores a query
parameter it does not know and would make the change, where it answers these paths with 404
("page not found"), which the CLI turns into a clear message. The request bodies and query
parameters are those of the Docker endpoint each one plans (POST /services/create, POST
/services/{id}/update), and so are the errors: a change the daemon would refuse is refused
here in the same words and status. A stack deploy, which is many requests, is planned from
one body holding them all (see ``stack_changes``)."""

from collections.abc import Awaitable, Callable

from aiohttp import web

from shoal.engineapi.go_fields import NETWORK_CREATE, decode_struct
from shoal.engineapi.networks import network_spec
from shoal.engineapi.responses import BACKEND, json_response, query_int, read_json
from shoal.errors import InvalidArgument
from shoal.manager.allocator.networks import OVERLAY
from shoal.manager.plan import plan_service_create, plan_service_update
from shoal.manager.plan.stack import StackChanges, Versioned, plan_stack

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


def _list(body: dict, key: str) -> list:
    value = body.get(key) or []
    if not isinstance(value, list):
        raise InvalidArgument(f"invalid stack changes: {key} must be a list")
    return value


def stack_changes(body: dict) -> StackChanges:
    """The changes ``stack deploy`` would send, in one body: {"Remove": [service IDs],
    "Networks": [network create requests], "Secrets"/"Configs"/"Services": [{"Spec": ...}
    to create, or {"ID": ..., "Version": ..., "Spec": ...} to update]}."""
    networks = []
    for raw in _list(body, "Networks"):
        request = decode_struct(raw, NETWORK_CREATE)
        if (request.get("Driver") or "") != OVERLAY and request.get("Scope") != "swarm":
            continue  # a local network: the engine's, no part of the swarm's plan
        networks.append(network_spec(request))
    try:
        return StackChanges(
            remove=[str(i) for i in _list(body, "Remove")],
            networks=networks,
            secrets=[Versioned.from_json(o) for o in _list(body, "Secrets")],
            configs=[Versioned.from_json(o) for o in _list(body, "Configs")],
            services=[Versioned.from_json(o) for o in _list(body, "Services")],
        )
    except (AttributeError, TypeError, ValueError):
        raise InvalidArgument("invalid stack changes") from None


async def stack_deploy(request: web.Request) -> web.Response:
    backend = request.app[BACKEND]
    control = backend.control()
    control.get_cluster()
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidArgument("invalid stack changes")
    plan = await plan_stack(control.store, backend.clock, stack_changes(body))
    return json_response(plan.to_json())


def add_routes(add_post: Callable[[str, Handler], None]) -> None:
    add_post(PREFIX + "/services/create", service_create)
    add_post(PREFIX + "/services/{id}/update", service_update)
    add_post(PREFIX + "/stacks/deploy", stack_deploy)
