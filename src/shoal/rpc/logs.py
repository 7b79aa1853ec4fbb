"""Log subscriptions and lines on the wire: shoal.logs' values to and from their messages."""

from collections.abc import Iterable

from shoal.logs.model import (
    STREAM_NAMES,
    STREAM_NUMBERS,
    LogContext,
    LogLine,
    LogMessage,
    LogOptions,
)
from shoal.rpc import pb


def options_to_pb(options: LogOptions) -> pb.LogSubscriptionOptions:
    opts = pb.LogSubscriptionOptions(
        follow=options.follow, stdout=options.stdout, stderr=options.stderr
    )
    if options.tail is not None:
        opts.tail = options.tail
    if options.since_ns is not None:
        opts.since_ns = options.since_ns
    return opts


def options_from_pb(opts: pb.LogSubscriptionOptions) -> LogOptions:
    both = not opts.stdout and not opts.stderr  # neither means both, as in swarmkit
    return LogOptions(
        follow=opts.follow,
        tail=opts.tail if opts.HasField("tail") else None,
        since_ns=opts.since_ns if opts.HasField("since_ns") else None,
        stdout=opts.stdout or both,
        stderr=opts.stderr or both,
    )


def message_to_pb(message: LogMessage) -> pb.LogMessage:
    context, line = message.context, message.line
    return pb.LogMessage(
        node_id=context.node_id,
        service_id=context.service_id,
        task_id=context.task_id,
        timestamp_ns=line.timestamp_ns,
        stream=STREAM_NUMBERS.get(line.stream, 0),
        data=line.data,
        attrs=[pb.LogAttr(key=k, value=v) for k, v in line.attrs],
    )


def message_from_pb(msg: pb.LogMessage) -> LogMessage:
    return LogMessage(
        LogContext(node_id=msg.node_id, service_id=msg.service_id, task_id=msg.task_id),
        LogLine(
            timestamp_ns=msg.timestamp_ns,
            stream=STREAM_NAMES.get(msg.stream, ""),
            data=msg.data,
            attrs=tuple((a.key, a.value) for a in msg.attrs),
        ),
    )


def selector_pb(
    service_ids: Iterable[str] = (), task_ids: Iterable[str] = (), node_ids: Iterable[str] = ()
) -> pb.LogSelector:
    return pb.LogSelector(
        service_ids=list(service_ids), task_ids=list(task_ids), node_ids=list(node_ids)
    )
