"""Reading a logs response as Docker's client does: the ``since`` value clients send (a
duration, a date or a Unix time, turned into Unix seconds as Docker's GetTimestamp does),
the multiplexed stream's frames (an error from the daemon arrives as a frame of its own),
and the parts of a line sent with ``details``."""

import calendar
import datetime
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote_plus

from shoal.golang import parse_duration
from shoal.logs.multiplex import STDERR, STDIN, STDOUT, SYSTEMERR, Demultiplexer
from shoal.logs.render import NODE_ID_ATTR, SERVICE_ID_ATTR, TASK_ID_ATTR
from shoal.logs.timestamps import NS, parse_unix_timestamp

# --- since ----------------------------------------------------------------------------------

_ZONE = r"(?P<zone>Z|[+-]\d{2}:\d{2})"
_DATE = r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"


def _layout(value: str, in_location: bool) -> tuple[str, str]:
    """The regular expression for the layout GetTimestamp picks for ``value``, and that
    layout's Go spelling (for error messages)."""
    zone = "" if in_location else _ZONE
    if "." in value:
        rx = _DATE + r"T(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})\.(?P<f>\d+)" + zone
        return rx, "2006-01-02T15:04:05.999999999" + ("" if in_location else "Z07:00")
    if "T" in value:
        colons = value.count(":")
        if not in_location and not any(c in value for c in "zZ") and colons > 0:
            colons -= 1  # the zone offset's own colon
        if colons == 0:
            rx, go = _DATE + r"T(?P<h>\d{1,2})", "2006-01-02T15"
        elif colons == 1:
            rx, go = _DATE + r"T(?P<h>\d{1,2}):(?P<mi>\d{2})", "2006-01-02T15:04"
        else:
            rx = _DATE + r"T(?P<h>\d{1,2}):(?P<mi>\d{2}):(?P<s>\d{2})"
            go = "2006-01-02T15:04:05"
        return rx + zone, go + ("" if in_location else "Z07:00")
    return _DATE + zone, "2006-01-02" + ("" if in_location else "Z07:00")


def _local_offset(now_ns: int) -> int:
    return time.localtime(now_ns // NS).tm_gmtoff


def since_param(value: str, now_ns: int | None = None, utc_offset: int | None = None) -> str:
    """The ``since`` query value for what a user typed: "10m" (that long before now),
    "2013-01-02T13:23:37Z" or a date (local time without a zone), or Unix seconds as they
    are. Raises ValueError with Docker's wording for anything else."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    if value != "0":
        try:
            return str((now_ns - parse_duration(value)) // NS)
        except ValueError:
            pass
    in_location = not any(c in value for c in "zZ+") and value.count("-") != 3
    rx, layout = _layout(value, in_location)
    m = re.fullmatch(rx, value)
    if m is None:
        if "-" in value:
            raise ValueError(f'parsing time "{value}" as "{layout}": cannot parse "{value}"')
        try:
            parse_unix_timestamp(value)
        except ValueError:
            raise ValueError(f'failed to parse value as time or duration: "{value}"') from None
        return value  # already Unix seconds
    fields = m.groupdict()
    year, month, day = int(fields["y"]), int(fields["mo"]), int(fields["d"])
    hour, minute, second = (int(fields.get(k) or 0) for k in ("h", "mi", "s"))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
        raise ValueError(f'parsing time "{value}": value out of range')
    try:
        datetime.date(year, month, day)
    except ValueError:
        raise ValueError(f'parsing time "{value}": day out of range') from None
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    zone = fields.get("zone")
    if zone is None:
        seconds -= _local_offset(now_ns) if utc_offset is None else utc_offset
    elif zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    frac = int((fields.get("f") or "")[:9].ljust(9, "0"))
    return f"{seconds}.{frac:09d}"


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
