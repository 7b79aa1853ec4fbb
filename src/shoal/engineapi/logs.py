"""GET /services/{id}/logs and /tasks/{id}/logs: a service's or task's logs from every node
that has them, as Docker's daemon streams them (``docker service logs`` reads this).

The query is Docker's: stdout, stderr (at least one), follow, tail ("all" or N), since
(Unix seconds, with an optional fraction), timestamps, details. The response starts at once
with status 200 and is Docker's multiplexed stream, one frame per line (for a TTY task, the
raw lines); an error after it has begun arrives as a frame on the system-error stream."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from shoal.engineapi.backend import LogSource
from shoal.engineapi.responses import BACKEND
from shoal.engineapi.version import API_VERSION
from shoal.errors import ShoalError
from shoal.logs.model import STDERR, STDOUT, LogOptions
from shoal.logs.multiplex import MEDIA_TYPE, RAW_MEDIA_TYPE, SYSTEMERR, frame
from shoal.logs.render import render_line
from shoal.logs.timestamps import parse_unix_timestamp
from shoal.manager.logbroker import LogsIncomplete
from shoal.rpc import pb
from shoal.rpc.logs import message_from_pb, options_to_pb, selector_pb

# How often an idle follow checks whether its client has hung up.
DISCONNECT_POLL = 0.5
# API versions before 1.42 label the (still multiplexed) stream as raw.
MULTIPLEXED_SINCE = (1, 42)

_GO_INT = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class LogQuery:
    stdout: bool
    stderr: bool
    follow: bool
    timestamps: bool
    details: bool
    tail: str
    since: str


def read_query(query: Any) -> LogQuery:
    def flag(name: str) -> bool:
        return query.get(name, "").strip().lower() not in ("", "0", "no", "false", "none")

    q = LogQuery(
        stdout=flag("stdout"),
        stderr=flag("stderr"),
        follow=flag("follow"),
        timestamps=flag("timestamps"),
        details=flag("details"),
        tail=query.get("tail", ""),
        since=query.get("since", ""),
    )
    if not (q.stdout or q.stderr):
        # Docker checks this before anything else, and answers 500 for it.
        raise ShoalError("Bad parameters: you must choose at least one stream")
    return q


def subscription_options(q: LogQuery) -> LogOptions:
    """The options for the nodes, with Docker's errors for a bad tail or since."""
    tail: int | None = None
    if q.tail not in ("", "all"):
        if _GO_INT.fullmatch(q.tail) is None:
            raise ShoalError('tail value must be a positive integer or "all"')
        tail = int(q.tail)
        if tail < 0:
            raise ShoalError("negative tail values not supported")
    since_ns: int | None = None
    if q.since:
        try:
            since_ns = parse_unix_timestamp(q.since)
        except ValueError as err:
            raise ShoalError(f"could not parse since timestamp: {err}") from None
    return LogOptions(
        follow=q.follow, tail=tail, since_ns=since_ns, stdout=q.stdout, stderr=q.stderr
    )


def media_type(api_version: str | None, tty: bool) -> str:
    version = tuple(int(p) for p in (api_version or "v" + API_VERSION)[1:].split("."))
    return MEDIA_TYPE if not tty and version >= MULTIPLEXED_SINCE else RAW_MEDIA_TYPE


async def service_logs(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    control = backend.control()
    q = read_query(request.query)
    service = control.get_service(request.match_info["id"])
    cs = service.Spec.TaskTemplate.ContainerSpec
    tty = bool(cs is not None and cs.TTY)
    selector = selector_pb(service_ids=[service.ID])
    return await _stream(request, backend.logs(), selector, q, tty)


async def task_logs(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    control = backend.control()
    q = read_query(request.query)
    task = control.get_task(request.match_info["id"])
    cs = task.Spec.ContainerSpec
    tty = bool(cs is not None and cs.TTY)
    return await _stream(request, backend.logs(), selector_pb(task_ids=[task.ID]), q, tty)


async def _stream(
    request: web.Request,
    broker: LogSource,
    selector: pb.LogSelector,
    q: LogQuery,
    tty: bool,
) -> web.StreamResponse:
    options = subscription_options(q)
    resp = web.StreamResponse(status=200)
    resp.content_type = media_type(request.match_info.get("api_version"), tty)
    await resp.prepare(request)  # headers go out now, before any line exists

    def encode(stream: int, data: bytes) -> bytes:
        return data if tty else frame(stream, data)

    try:
        async with contextlib.aclosing(
            broker.subscribe(selector, options_to_pb(options))
        ) as batches:
            try:
                async for batch in _while_connected(request, batches):
                    out = []
                    for raw in batch:
                        msg = message_from_pb(raw)
                        if (msg.line.stream == STDOUT and q.stdout) or (
                            msg.line.stream == STDERR and q.stderr
                        ):
                            data = render_line(msg, q.timestamps, q.details)
                            out.append(encode(raw.stream, data))
                    if out:
                        await resp.write(b"".join(out))
            except ShoalError as err:
                # The stream has begun: the error can only be told inside it. Docker's
                # daemon reads the broker through gRPC, hence the rpc wording.
                code = "Unknown" if isinstance(err, LogsIncomplete) else err.go_code
                text = f"Error grabbing logs: rpc error: code = {code} desc = {err.message}\n"
                await resp.write(encode(SYSTEMERR, text.encode()))
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client hung up; the subscription has been closed on the way out
    return resp


async def _while_connected(
    request: web.Request, batches: AsyncIterator[list[pb.LogMessage]]
) -> AsyncIterator[list[pb.LogMessage]]:
    """The batches, until they end or the client hangs up (noticed even while no line
    comes, so that a follow nobody reads any more ends on the nodes too)."""
    while True:
        nxt = asyncio.ensure_future(anext(batches))
        while not nxt.done():
            await asyncio.wait({nxt}, timeout=DISCONNECT_POLL)
            transport = request.transport
            if not nxt.done() and (transport is None or transport.is_closing()):
                nxt.cancel()
                await asyncio.gather(nxt, return_exceptions=True)
                return
        try:
            yield nxt.result()
        except StopAsyncIteration:
            return
