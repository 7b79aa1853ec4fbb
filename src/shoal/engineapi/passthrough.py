"""The catch-all route: whatever shoal does not answer itself goes to the node's engine.

Most such requests never reach the application: the front (engineapi.front) passes them to
the engine as bytes, hijacked ones (attach, exec) included. Those that do come here are
those the front could not pass on (no engine, or one it could not reach: the proxy then says
why) and those of an application served without the front."""

import re

from aiohttp import web

from shoal.engineapi.engine_proxy import ENGINE

# The swarm's own paths: answered by shoal or not at all, never by the engine (which may be
# in a swarm of its own, or share a machine with other nodes).
_SWARM = re.compile(r"^(/v[0-9.]+)?/(swarm|nodes|services|tasks|secrets|configs)(/|$)")


async def passthrough(request: web.Request) -> web.StreamResponse:
    if _SWARM.match(request.path):
        raise web.HTTPNotFound()
    return await request.app[ENGINE].forward(request)
