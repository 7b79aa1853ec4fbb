"""Reading a logs response as Docker's client does: the multiplexed stream's frames (an error from the daemon arrives as a frame of its own),
and the parts of a line sent with ``details``."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote_plus

from shoal.logs.multiplex import STDERR, STDIN, STDOUT, SYSTEMERR, Demultiplexer
from shoal.logs.render import NODE_ID_ATTR, SERVICE_ID_ATTR, TASK_ID_ATTR

# --- the stream -----------------------------------------------------------------------------


class DaemonStreamError(Exception):
    """The daemon reported an error inside the stream (after the response had begun)."""


class Readable(Protocol):
    """A response body read as it arrives (aiohttp's ``StreamReader``)."""

    async def readany(self) -> bytes: ...


async def read_frames(content: Readable) -> AsyncIterator[tuple[int, bytes]]:
    """(stream, payload) of each frame of a multiplexed response body, stdin counted as stdout as Docker's client
    does. A system-error frame ends the stream with DaemonStreamError."""
    demux = Demultiplexer()
    while chunk := await content.readany():
        for stream, payload in demux.feed(chunk):
            if stream == SYSTEMERR:
                raise DaemonStreamError(
                    "error from daemon in stream: " + payload.decode(errors="replace")
                )
            if stream not in (STDIN, STDOUT, STDERR):
                raise ValueError(f"unrecognized stream: {stream}")
            yield (STDOUT if stream == STDIN else stream), payload
    if demux.pending:
        raise EOFError("unexpected EOF")


# --- a line with details --------------------------------------------------------------------


@dataclass
class LineParts:
    timestamp: str  # "" without timestamps
    details: dict[str, str]  # without the task context
    node_id: str
    service_id: str
    task_id: str
    message: bytes


def parse_details(text: str) -> dict[str, str]:
    """``k=v,l=w`` with query-escaped keys and values (Docker's logdetails.Parse)."""
    out: dict[str, str] = {}
    for pair in text.split(","):
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise ValueError("invalid details format")
        out[unquote_plus(key)] = unquote_plus(value)
    return out


def split_line(payload: bytes, timestamps: bool) -> LineParts:
    """A line of a swarm logs response sent with ``details=1`` (as ``service logs`` always
    asks for it), cut into its parts as Docker's CLI cuts it."""
    parts = payload.split(b" ", 2 if timestamps else 1)
    if len(parts) != (3 if timestamps else 2):
        raise ValueError(f"invalid context in log message: {payload.decode(errors='replace')}")
    stamp = parts[0].decode() if timestamps else ""
    details = parse_details(parts[-2].decode(errors="replace"))
    context = {}
    for key, what in ((NODE_ID_ATTR, "node"), (SERVICE_ID_ATTR, "service"), (TASK_ID_ATTR, "task")):
        if key not in details:
            raise ValueError(f"missing {what} id in details: {details}")
        context[what] = details.pop(key)
    return LineParts(
        stamp,
        details,
        node_id=context["node"],
        service_id=context["service"],
        task_id=context["task"],
        message=parts[-1],
    )
