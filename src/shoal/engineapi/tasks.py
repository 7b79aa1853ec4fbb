"""/tasks: list and inspect."""

from aiohttp import web

from shoal.api.objects import Task
from shoal.engineapi.responses import BACKEND, api_list, json_response, list_response
from shoal.manager.controlapi.filters import Filters


async def list_tasks(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    tasks = await control.list_tasks_sliced(Filters.parse(request.query.get("filters")))
    return await list_response(await api_list(tasks, Task.to_api))


async def inspect(request: web.Request) -> web.Response:
    control = request.app[BACKEND].control()
    return json_response(control.get_task(request.match_info["id"]).to_api())
