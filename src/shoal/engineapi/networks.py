"""/networks: shoal has no overlay networks yet (tasks reach each other through node addresses
and the routing mesh), so there are none to list, and a network named in a service spec is
reported missing in Docker's words rather than silently ignored."""

from aiohttp import web

from shoal.engineapi.responses import json_response
from shoal.errors import NotFound, Unimplemented


async def list_networks(request: web.Request) -> web.Response:
    return json_response([])


async def inspect(request: web.Request) -> web.Response:
    raise NotFound(f"network {request.match_info['id']} not found")


async def create(request: web.Request) -> web.Response:
    raise Unimplemented(
        "shoal does not manage networks yet: services reach each other through the routing mesh"
    )
