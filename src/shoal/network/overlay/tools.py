"""Running iproute2 (``ip``, ``bridge``) and ``nft`` in a network namespace: the only I/O of
the overlay data plane besides ``/proc/sys`` and sockets.

Why the tools and not pyroute2 (netlink from Python): pyroute2 would be one more dependency,
with an API that has churned between releases, while the routing mesh already drives
``nft``; the tools' batch mode (``ip -batch -``, ``bridge -batch -``, ``nft -f -``) makes one
process per change whatever its size, and each command is the one an operator would type,
so a plan can be read, logged and replayed by hand.

A namespace is named by the path of its file: one of ours (``/run/netns/<name>``) or one we
did not name (a container's ``/var/run/docker/netns/<id>``), or None for the namespace the
node runs in. ``ip`` and ``bridge`` enter a namespace of ``/run/netns`` themselves (``-n``);
for anything else, and for ``nft``, which has no such option, ``nsenter --net=PATH`` enters
it and then runs the tool (an exec, not one more process).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from typing import Any

from shoal.errors import Unavailable
from shoal.network.overlay.names import NETNS_DIR

Netns = str | None


class ToolError(Unavailable):
    pass


def tool_argv(tool: str, netns: Netns, *args: str) -> list[str]:
    if netns is None:
        return [tool, *args]
    head, name = os.path.split(netns)
    if tool in ("ip", "bridge") and head == NETNS_DIR:
        return [tool, "-n", name, *args]
    return ["nsenter", f"--net={netns}", tool, *args]


async def run(argv: Sequence[str], stdin: str | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        what = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
        if stdin:
            what += "\n--- input ---\n" + stdin
        raise ToolError(f"{' '.join(argv)} failed ({proc.returncode}): {what}")
    return out.decode()


async def batch(tool: str, netns: Netns, lines: Sequence[str]) -> None:
    """Runs ``lines`` through ``tool -batch -`` in one process; stops at the first command
    that fails (and raises). Nothing to do, no process."""
    if lines:
        await run(tool_argv(tool, netns, "-batch", "-"), "\n".join(lines) + "\n")


async def show(tool: str, netns: Netns, lines: Sequence[str], details: bool = False) -> list[Any]:
    """The JSON answers of several ``show`` commands, read in one process: ``ip -j -batch``
    prints one JSON array per command, back to back."""
    args = ["-j", *(["-d"] if details else []), "-batch", "-"]
    text = await run(tool_argv(tool, netns, *args), "\n".join(lines) + "\n")
    return parse_json_stream(text)


async def nft(netns: Netns, script: str) -> None:
    """Applies an ``nft -f`` file: one netlink transaction, all of it or nothing."""
    await run(tool_argv("nft", netns, "-f", "-"), script)


def parse_json_stream(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return docs
        doc, i = decoder.raw_decode(text, i)
        docs.append(doc)
