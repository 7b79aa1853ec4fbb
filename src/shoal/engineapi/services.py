"""/services: list, create, inspect, update, remove."""

from aiohttp import web

from shoal.api.objects import Service
from shoal.engineapi.read_lane import at_home
from shoal.engineapi.responses import (
    BACKEND,
    api_list,
    json_response,
    list_response,
    query_bool,
    query_int,
    read_json,
)
from shoal.errors import InvalidArgument
from shoal.manager.controlapi.filters import Filters


async def list_services(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    filters = Filters.parse(request.query.get("filters"))
    if query_bool(request, "status"):
        services = control.list_services_if_counted(filters)
        if services is None:  # the counts are to be taken from the tables first
            services = await at_home(request, control.list_services_with_status(filters))
    else:
        services = control.list_services(filters)
    return await list_response(await api_list(services, Service.to_api))


async def create(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidArgument("invalid service spec")
    service = await control.create_service(body)
    return json_response({"ID": service.ID, "Warnings": None}, status=201)


async def inspect(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    service = control.get_service(
        request.match_info["id"], insert_defaults=query_bool(request, "insertDefaults")
    )
    return json_response(service.to_api())


async def update(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    body = await read_json(request)
    rollback = request.query.get("rollback", "")
    if rollback not in ("", "previous"):
        raise InvalidArgument(f"unrecognized rollback option {rollback}")
    await control.update_service(
        request.match_info["id"],
        version=query_int(request, "version"),
        spec=body,
        rollback=rollback == "previous",
    )
    return json_response({"Warnings": None})


async def remove(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    await control.remove_service(request.match_info["id"])
    return web.Response(status=200)
