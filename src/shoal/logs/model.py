"""What a log source yields and what a subscription asks for (their wire forms are in
``shoal.rpc.logs``)."""

from dataclasses import dataclass

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
