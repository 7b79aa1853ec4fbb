"""/swarm: inspect, init, join, leave, update, unlock key, unlock."""

from aiohttp import web

from shoal.ca.unlock_key import human_readable
from shoal.engineapi.responses import BACKEND, json_response, query_bool, query_int, read_json
from shoal.errors import InvalidArgument


async def inspect(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    cluster = control.get_cluster()
    data = cluster.to_api()
    data["JoinTokens"] = cluster.RootCA.JoinTokens.to_json()
    return json_response(data)


async def init(request: web.Request) -> web.Response:
    body = await read_json(request)
    node_id = await request.app[BACKEND].init(body)
    return json_response(node_id)


async def join(request: web.Request) -> web.Response:
    body = await read_json(request)
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
        rotate_manager_unlock_key=query_bool(request, "rotateManagerUnlockKey"),
    )
    return web.Response(status=200)


async def unlock_key(request: web.Request) -> web.Response:
    key = request.app[BACKEND].control().get_unlock_key()
    # With autolock off Docker answers an empty key (its CLI: "no unlock key is set").
    return json_response({"UnlockKey": human_readable(key) if key is not None else ""})


_GO_JSON_TYPES = {bool: "bool", int: "number", float: "number", list: "array", dict: "object"}


async def unlock(request: web.Request) -> web.Response:
    # The body is read before anything else, with Docker's words for what is wrong with it.
    if not await request.read():
        raise InvalidArgument("got EOF while reading request body")
    body = await read_json(request)
    if not isinstance(body, dict):
        body = {}
    key = body.get("UnlockKey", "")
    if not isinstance(key, str):
        raise InvalidArgument(
            f"json: cannot unmarshal {_GO_JSON_TYPES.get(type(key), 'value')} into Go struct "
            "field UnlockRequest.UnlockKey of type string"
        )
    await request.app[BACKEND].unlock(key)
    return web.Response(status=200)
