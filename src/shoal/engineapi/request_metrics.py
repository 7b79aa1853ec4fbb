"""Counts and times every Engine API request, by method, endpoint and status code.

The endpoint is the route that answered, as written in the router without the API version
(``/services/{id}/update``), so that the number of series stays bounded whatever the paths
asked; everything passed through to the node's Docker Engine is one endpoint, ``engine``.
"""

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler

from shoal import metrics

_VERSION_PREFIX = "/{api_version}"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})
PASSTHROUGH = "engine"
# A request the client gave up on before an answer (a stream it stopped reading, as `docker
# events` does when stopped): nginx's code for it, as no answer had a status.
CLIENT_CLOSED = "499"


def endpoint_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if resource is None:
        return "other"
    path = resource.canonical
    if path.startswith(_VERSION_PREFIX):
        path = path[len(_VERSION_PREFIX) :] or "/"
    return PASSTHROUGH if path == "/{path}" else path


@web.middleware
async def request_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = metrics.stopwatch()
    code = "500"
    try:
        response = await handler(request)
        code = str(response.status)
        return response
    except web.HTTPException as err:
        code = str(err.status)
        raise
    except asyncio.CancelledError:
        code = CLIENT_CLOSED
        raise
    finally:
        method = request.method if request.method in _METHODS else "other"
        endpoint = endpoint_of(request)
        metrics.API_REQUESTS.labels(method, endpoint, code).inc()
        metrics.API_REQUEST_LATENCY.labels(method, endpoint).observe(metrics.since(started))
