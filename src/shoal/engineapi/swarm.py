"""/swarm: inspect, init, join, leave, update, unlock key."""

from aiohttp import web

from shoal.engineapi.go_fields import INIT_REQUEST, JOIN_REQUEST, decode_struct
from shoal.engineapi.responses import BACKEND, json_response, query_bool, query_int, read_json


async def inspect(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    cluster = control.get_cluster()
    data = cluster.to_api()
    data["JoinTokens"] = cluster.RootCA.JoinTokens.to_json()
    return json_response(data)


async def init(request: web.Request) -> web.Response:
    body = decode_struct(await read_json(request), INIT_REQUEST)
    node_id = await request.app[BACKEND].init(body)
    return json_response(node_id)


async def join(request: web.Request) -> web.Response:
    body = decode_struct(await read_json(request), JOIN_REQUEST)
    await request.app[BACKEND].join(body)
    return web.Response(status=200)


async def leave(request: web.Request) -> web.Response:
    await request.app[BACKEND].leave(force=query_bool(request, "force"))
    return web.Response(status=200)


async def update(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    body = await read_json(request)
    await control.update_cluster(
        version=query_int(request, "version"),
        spec=body,
        rotate_worker_token=query_bool(request, "rotateWorkerToken"),
        rotate_manager_token=query_bool(request, "rotateManagerToken"),
    )
    return web.Response(status=200)


async def unlock_key(request: web.Request) -> web.Response:
    request.app[BACKEND].control()
    # Autolock is not implemented: like Docker with autolock off, there is no key.
    return json_response({"UnlockKey": ""})
