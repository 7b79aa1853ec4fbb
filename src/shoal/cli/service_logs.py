"""``service logs``: read the Engine API's multiplexed log stream and print each line with the
task prefix Docker puts in front ("web.1.abcdef123456@node1    | ...")."""

import asyncio
import struct
import sys
from typing import Any

from shoal.cli.client import APIError, Client
from shoal.cli.framework import CLIError
from shoal.cli.tasks_table import NameResolver

STDOUT, STDERR = 1, 2


async def read_frames(resp: Any):  # type: ignore[no-untyped-def]
    """(stream, payload) frames of Docker's multiplexed stream."""
    while True:
        try:
            header = await resp.content.readexactly(8)
        except asyncio.IncompleteReadError:
            return
        stream, length = header[0], struct.unpack(">I", header[4:8])[0]
        payload = await resp.content.readexactly(length) if length else b""
        yield stream, payload


def _parse_details(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in text.split(","):
        key, _, value = pair.partition("=")
        if key:
            out[key] = value
    return out


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
    params = {
        "stdout": "1",
        "stderr": "1",
        "follow": "1" if flags["follow"] else "0",
        "tail": flags["tail"],
        "timestamps": "1" if flags["timestamps"] else "0",
        "details": "1",
        "since": flags.get("since") or None,
    }
    resp = await client.stream(path, params)
    names = NameResolver(client, not flags["no_resolve"])
    width = len(str(replicas))
    try:
        async for stream, payload in read_frames(resp):
            line = payload.decode(errors="replace")
            text = _format_line(line, flags, await _prefix_parts(names, line, flags), width)
            target = sys.stdout if stream == STDOUT else sys.stderr
            target.write(text if text.endswith("\n") else text + "\n")
            target.flush()
    finally:
        resp.release()


def _replicas(service: dict) -> int:
    mode = (service.get("Spec") or {}).get("Mode") or {}
    return int((mode.get("Replicated") or {}).get("Replicas") or 1)


def _split(line: str, timestamps: bool) -> tuple[str, str, str]:
    """(timestamp, details, message) of one line as the daemon sends it with details=1."""
    ts = ""
    if timestamps:
        ts, _, line = line.partition(" ")
    details, _, message = line.partition(" ")
    return ts, details, message


async def _prefix_parts(names: NameResolver, line: str, flags: dict[str, Any]) -> dict[str, str]:
    _, details, _ = _split(line, flags["timestamps"])
    attrs = _parse_details(details)
    service_id = attrs.get("com.docker.swarm.service.id", "")
    node_id = attrs.get("com.docker.swarm.node.id", "")
    task_id = attrs.get("com.docker.swarm.task.id", "")
    task: dict = {}
    if task_id:
        task = await _task(names, task_id)
    return {
        "service": await names.resolve("service", service_id),
        "node": await names.resolve("node", node_id),
        "task": task_id,
        "slot": str(task.get("Slot") or "") or node_id,
        "details": details,
    }


async def _task(names: NameResolver, task_id: str) -> dict:
    cache = names.__dict__.setdefault("_tasks", {})
    if task_id not in cache:
        try:
            cache[task_id] = await names.client.request("GET", f"/tasks/{task_id}")
        except APIError:
            cache[task_id] = {}
    return cache[task_id]


def _format_line(line: str, flags: dict[str, Any], parts: dict[str, str], width: int) -> str:
    ts, details, message = _split(line, flags["timestamps"])
    if flags["raw"]:
        return message
    name = f"{parts['service']}.{parts['slot']}"
    if not flags["no_task_ids"]:
        name += "." + (parts["task"] if flags["no_trunc"] else parts["task"][:12])
    pad = " " * max(0, width - len(parts["slot"])) if parts["slot"].isdigit() else ""
    prefix = f"{name}@{parts['node']}{pad}"
    body = message
    if flags["details"]:
        extra = ",".join(
            f"{k}={v}"
            for k, v in _parse_details(details).items()
            if not k.startswith("com.docker.swarm.")
        )
        body = f"{extra} {message}" if extra else f" {message}"
    text = f"{prefix}    | {body}"
    return f"{ts} {text}" if ts else text
