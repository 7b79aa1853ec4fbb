"""``service logs``: read the Engine API's multiplexed log stream and print each line with the
task prefix Docker puts in front ("web.1.abcdef123456@node1    | ...")."""

import sys
from typing import Any

from shoal.cli.framework import CLIError
from shoal.cli.tasks_table import NameResolver
from shoal.client import APIError, Client
from shoal.client.logs import DaemonStreamError, LineParts, read_frames, split_line
from shoal.logs.timestamps import get_timestamp

STDOUT = 1


async def logs_command_body(client: Client, ref: str, flags: dict[str, Any]) -> None:
    try:
        service = await client.request("GET", f"/services/{ref}")
        path, replicas = f"/services/{service['ID']}/logs", _replicas(service)
    except APIError as error:
        if error.status != 404:
            raise
        try:
            task = await client.request("GET", f"/tasks/{ref}")
        except APIError as task_error:
            if task_error.status != 404:
                raise
            raise CLIError(f"no such task or service: {ref}") from None
        path, replicas = f"/tasks/{task['ID']}/logs", 1
    since = None
    if flags.get("since"):
        try:
            since = get_timestamp(flags["since"])
        except ValueError as error:
            raise CLIError(str(error)) from None
    params = {
        "stdout": "1",
        "stderr": "1",
        "follow": "1" if flags["follow"] else "0",
        "tail": flags["tail"],
        "timestamps": "1" if flags["timestamps"] else "0",
        "details": "1",
        "since": since,
    }
    resp = await client.stream(path, params)
    names = NameResolver(client, not flags["no_resolve"])
    width = len(str(replicas))
    try:
        async for stream, payload in read_frames(resp.content):
            try:
                parts = split_line(payload, flags["timestamps"])
            except ValueError as error:
                raise CLIError(str(error)) from None
            text = await _format(names, parts, flags, width)
            target = sys.stdout if stream == STDOUT else sys.stderr
            target.write(text if text.endswith("\n") else text + "\n")
            target.flush()
    except DaemonStreamError as error:
        raise CLIError(str(error)) from None
    finally:
        resp.release()


def _replicas(service: dict) -> int:
    mode = (service.get("Spec") or {}).get("Mode") or {}
    return int((mode.get("Replicated") or {}).get("Replicas") or 1)


async def _task(names: NameResolver, task_id: str) -> dict:
    cache = names.__dict__.setdefault("_tasks", {})
    if task_id not in cache:
        try:
            cache[task_id] = await names.client.request("GET", f"/tasks/{task_id}")
        except APIError:
            cache[task_id] = {}
    return cache[task_id]


async def _format(names: NameResolver, parts: LineParts, flags: dict[str, Any], width: int) -> str:
    message = parts.message.decode(errors="replace")
    if flags["raw"]:
        return message
    task = await _task(names, parts.task_id)
    slot = str(task.get("Slot") or "")
    name = await names.resolve("service", parts.service_id)
    name += f".{slot}" if slot else f".{parts.node_id}"
    if not flags["no_task_ids"]:
        name += "." + (parts.task_id if flags["no_trunc"] else parts.task_id[:12])
    pad = " " * max(0, width - len(slot)) if slot else ""
    prefix = f"{name}@{await names.resolve('node', parts.node_id)}{pad}"
    body = message
    if flags["details"]:
        extra = ",".join(f"{k}={v}" for k, v in parts.details.items())
        body = f"{extra} {message}"
    text = f"{prefix}    | {body}"
    return f"{parts.timestamp} {text}" if parts.timestamp else text
