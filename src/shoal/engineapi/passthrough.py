"""The catch-all route: whatever shoal does not answer itself goes to the node's engine."""

import re

from aiohttp import web

from shoal.engineapi.engine_proxy import ENGINE
from shoal.engineapi.hijack import hijack, is_hijack

# The swarm's own paths: answered by shoal or not at all, never by the engine (which may be
# in a swarm of its own, or share a machine with other nodes).
_SWARM = re.compile(r"^(/v[0-9.]+)?/(swarm|nodes|services|tasks|secrets|configs)(/|$)")


async def passthrough(request: web.Request) -> web.StreamResponse:
    if _SWARM.match(request.path):
        raise web.HTTPNotFound()
    proxy = request.app[ENGINE]
    if is_hijack(request):
        return await hijack(proxy, request)
    return await proxy.forward(request)
