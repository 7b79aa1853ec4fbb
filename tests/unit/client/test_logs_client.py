import calendar

import pytest

from shoal.client.logs import (
    DaemonStreamError,
    parse_details,
    read_frames,
    split_line,
)
from shoal.logs.multiplex import STDERR, STDIN, STDOUT, SYSTEMERR, frame
from shoal.logs.timestamps import NS, get_timestamp

NOW_S = calendar.timegm((2026, 11, 22, 10, 44, 47, 0, 0, 0))
NOW = NOW_S * NS + 123_000_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10m", str(NOW_S - 600)),
        ("1h30m", str(NOW_S - 5400)),
        ("1.5s", str(NOW_S - 2)),  # floor, as Go's Unix() of the instant
        ("0", "0"),
        ("1700000000", "1700000000"),
        ("1700000000.5", "1700000000.5"),
        ("2026-11-22T10:00:00Z", f"{NOW_S - 2687}.000000000"),
        ("2026-11-22T12:00:00+02:00", f"{NOW_S - 2687}.000000000"),
        ("2026-11-22T10:00:00.25Z", f"{NOW_S - 2687}.250000000"),
        ("2026-11-22T10Z", f"{NOW_S - 2687}.000000000"),
        ("2026-11-22T10:00Z", f"{NOW_S - 2687}.000000000"),
        ("2026-11-22Z", f"{calendar.timegm((2026, 11, 22, 0, 0, 0))}.000000000"),
        # No zone: the client's local time (here UTC+1).
        ("2026-11-22T11:00:00", f"{NOW_S - 2687}.000000000"),
        ("2026-11-22T11", f"{NOW_S - 2687}.000000000"),
        ("2026-11-22", f"{calendar.timegm((2026, 11, 21, 23, 0, 0))}.000000000"),
        ("2026-11-22T11:00:00.000000001", f"{NOW_S - 2687}.000000001"),
    ],
)
def test_since_as_dockers_get_timestamp(value, expected):
    assert get_timestamp(value, now_ns=NOW, utc_offset=3600) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", 'failed to parse value as time or duration: "yesterday"'),
        ("10x", 'failed to parse value as time or duration: "10x"'),
        ("2026-11-31", "parsing time"),
        ("2026-1-2", "parsing time"),
    ],
)
def test_since_errors(value, message):
    with pytest.raises(ValueError, match=message):
        get_timestamp(value, now_ns=NOW, utc_offset=0)


class Body:
    """An aiohttp StreamReader's readany, over fixed chunks."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    async def readany(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


async def frames_of(*chunks):
    return [f async for f in read_frames(Body(*chunks))]


async def test_frames_across_chunks():
    wire = frame(STDOUT, b"a\n") + frame(STDERR, b"b\n") + frame(STDIN, b"c\n")
    assert await frames_of(wire[:3], wire[3:12], wire[12:]) == [
        (STDOUT, b"a\n"),
        (STDERR, b"b\n"),
        (STDOUT, b"c\n"),
    ]


async def test_a_daemon_error_ends_the_stream():
    body = Body(frame(STDOUT, b"a\n") + frame(SYSTEMERR, b"Error grabbing logs: boom\n"))
    got = []
    with pytest.raises(DaemonStreamError) as err:
        async for f in read_frames(body):
            got.append(f)
    assert got == [(STDOUT, b"a\n")]
    assert str(err.value) == "error from daemon in stream: Error grabbing logs: boom\n"


async def test_a_cut_stream_is_an_error():
    with pytest.raises(EOFError):
        await frames_of(frame(STDOUT, b"abc")[:-1])


CTX = b"com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1"


def test_split_line_with_and_without_timestamps():
    parts = split_line(CTX + b" hello world\n", timestamps=False)
    assert (parts.node_id, parts.service_id, parts.task_id) == ("n1", "s1", "t1")
    assert parts.message == b"hello world\n" and parts.details == {} and parts.timestamp == ""
    stamped = split_line(b"2026-11-22T10:44:47.000000000Z " + CTX + b",x=a+b hi\n", True)
    assert stamped.timestamp == "2026-11-22T10:44:47.000000000Z"
    assert stamped.details == {"x": "a b"}
    assert stamped.message == b"hi\n"


def test_split_line_errors():
    with pytest.raises(ValueError, match="invalid context in log message"):
        split_line(b"nospace", timestamps=False)
    with pytest.raises(ValueError, match="missing task id in details"):
        split_line(b"com.docker.swarm.node.id=n,com.docker.swarm.service.id=s x", False)
    with pytest.raises(ValueError, match="invalid details format"):
        parse_details("novalue")
