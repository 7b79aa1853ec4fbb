"""A log line as Docker's daemon writes it into a logs response: with ``timestamps``, the
time (RFC3339NanoFixed) and a space first; with ``details``, the line's attributes (for
swarm logs, which node, service and task it comes from) and a space before the text."""

from collections.abc import Iterable
from urllib.parse import quote_plus

from shoal.logs.model import LogMessage
from shoal.logs.timestamps import format_rfc3339_nano_fixed

NODE_ID_ATTR = "com.docker.swarm.node.id"
SERVICE_ID_ATTR = "com.docker.swarm.service.id"
TASK_ID_ATTR = "com.docker.swarm.task.id"
CONTEXT_ATTRS = (NODE_ID_ATTR, SERVICE_ID_ATTR, TASK_ID_ATTR)


def details_text(attrs: Iterable[tuple[str, str]]) -> str:
    """``key=value`` pairs sorted by key, query-escaped, joined by commas."""
    return ",".join(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k, v in sorted(attrs))


def message_attrs(msg: LogMessage) -> list[tuple[str, str]]:
    """The details of a swarm log line: the source's own attributes, then its context,
    which has the final say over attributes of the same name."""
    attrs = [(k, v) for k, v in msg.line.attrs if k not in CONTEXT_ATTRS]
    ctx = msg.context
    attrs += [
        (NODE_ID_ATTR, ctx.node_id),
        (SERVICE_ID_ATTR, ctx.service_id),
        (TASK_ID_ATTR, ctx.task_id),
    ]
    return attrs


def render_line(msg: LogMessage, timestamps: bool, details: bool) -> bytes:
    data = msg.line.data
    if details:
        data = details_text(message_attrs(msg)).encode() + b" " + data
    if timestamps:
        data = format_rfc3339_nano_fixed(msg.line.timestamp_ns).encode() + b" " + data
    return data
