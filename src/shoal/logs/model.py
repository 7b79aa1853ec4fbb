"""What a log source yields and what a subscription asks for, and their wire forms."""

from collections.abc import Iterable
from dataclasses import dataclass

from shoal.rpc import pb

STDOUT = "stdout"
STDERR = "stderr"
# Stream numbers on the wire, the same as in Docker's multiplexed stream.
STREAM_NUMBERS = {STDOUT: 1, STDERR: 2}
STREAM_NAMES = {n: name for name, n in STREAM_NUMBERS.items()}


@dataclass(frozen=True)
class LogLine:
    """One line of a task's output, as its log source recorded it."""

    timestamp_ns: int  # Unix nanoseconds
    stream: str  # STDOUT or STDERR
    data: bytes  # with its newline; a line split for length has none
    attrs: tuple[tuple[str, str], ...] = ()  # extra details the log source recorded


@dataclass(frozen=True)
class LogOptions:
    """Which lines of a task's log to read."""

    follow: bool = False  # keep reading as the task writes, until it stops
    tail: int | None = None  # only the last N lines of the log; None for all
    since_ns: int | None = None  # only lines written at or after this time
    stdout: bool = True
    stderr: bool = True

    def selects(self, line: LogLine) -> bool:
        """Whether a line read from the log passes the stream and time filters (the tail is
        the reader's business: it counts lines of both streams, as Docker does)."""
        if line.stream == STDOUT and not self.stdout:
            return False
        if line.stream == STDERR and not self.stderr:
            return False
        return self.since_ns is None or line.timestamp_ns >= self.since_ns

    def to_pb(self) -> pb.LogSubscriptionOptions:
        opts = pb.LogSubscriptionOptions(follow=self.follow, stdout=self.stdout, stderr=self.stderr)
        if self.tail is not None:
            opts.tail = self.tail
        if self.since_ns is not None:
            opts.since_ns = self.since_ns
        return opts

    @classmethod
    def from_pb(cls, opts: pb.LogSubscriptionOptions) -> "LogOptions":
        both = not opts.stdout and not opts.stderr  # neither means both, as in swarmkit
        return cls(
            follow=opts.follow,
            tail=opts.tail if opts.HasField("tail") else None,
            since_ns=opts.since_ns if opts.HasField("since_ns") else None,
            stdout=opts.stdout or both,
            stderr=opts.stderr or both,
        )


@dataclass(frozen=True)
class LogContext:
    """Where a line comes from."""

    node_id: str
    service_id: str
    task_id: str


@dataclass(frozen=True)
class LogMessage:
    context: LogContext
    line: LogLine

    def to_pb(self) -> pb.LogMessage:
        return pb.LogMessage(
            node_id=self.context.node_id,
            service_id=self.context.service_id,
            task_id=self.context.task_id,
            timestamp_ns=self.line.timestamp_ns,
            stream=STREAM_NUMBERS.get(self.line.stream, 0),
            data=self.line.data,
            attrs=[pb.LogAttr(key=k, value=v) for k, v in self.line.attrs],
        )

    @classmethod
    def from_pb(cls, msg: pb.LogMessage) -> "LogMessage":
        return cls(
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
