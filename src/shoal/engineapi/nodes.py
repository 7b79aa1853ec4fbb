"""/nodes: list, inspect, update, remove."""

from aiohttp import web

from shoal.api.objects import Node
from shoal.engineapi.responses import (
    BACKEND,
    ApiTexts,
    json_response,
    query_bool,
    query_int,
    read_json,
)
from shoal.manager.controlapi.filters import Filters

# Each node's JSON, kept while it is unchanged (see ``ApiTexts``), per application.
NODE_TEXTS: web.AppKey[ApiTexts] = web.AppKey("node_texts", ApiTexts)


def keep_node_texts(app: web.Application) -> None:
    app[NODE_TEXTS] = ApiTexts(Node.to_api)


async def list_nodes(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    nodes = control.list_nodes(Filters.parse(request.query.get("filters")))
    return await request.app[NODE_TEXTS].list_response(nodes)


async def inspect(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    return json_response(control.get_node(request.match_info["id"]).to_api())


async def update(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    body = await read_json(request)
    await control.update_node(request.match_info["id"], query_int(request, "version"), body)
    return web.Response(status=200)


async def remove(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    await control.remove_node(request.match_info["id"], force=query_bool(request, "force"))
    return web.Response(status=200)
