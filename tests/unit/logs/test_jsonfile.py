import asyncio
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.logs.jsonfile import LineSplitter, decode_line, read_log, tail_offset
from shoal.logs.model import STDERR, STDOUT, LogOptions
from shoal.logs.timestamps import NS, format_rfc3339_nano_fixed, parse_rfc3339

T0 = parse_rfc3339("2026-11-22T10:00:00Z")


def record(text: str, stream: str = STDOUT, second: int = 0, **extra) -> bytes:
    rec = {
        "log": text,
        "stream": stream,
        "time": format_rfc3339_nano_fixed(T0 + second * NS),
        **extra,
    }
    return json.dumps(rec).encode() + b"\n"


# --- decoding ----------------------------------------------------------------------------


def test_decode_a_docker_record():
    raw = b'{"log":"hello\\n","stream":"stderr","time":"2026-11-22T10:44:47.8284772Z"}'
    line = decode_line(raw)
    assert line.data == b"hello\n"
    assert line.stream == STDERR
    assert line.timestamp_ns == parse_rfc3339("2026-11-22T10:44:47.828477200Z")
    assert line.attrs == ()


def test_decode_attrs_sorted():
    line = decode_line(record("x\n", attrs={"b": "2", "a": "1"}).strip())
    assert line.attrs == (("a", "1"), ("b", "2"))


def test_decode_unicode_round_trips_as_utf8():
    assert decode_line(record("héllo ✓\n").strip()).data == "héllo ✓\n".encode()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[]",
        b'{"log":"x","stream":"stdout"}',
        b'{"log":"x","stream":"stdin","time":"2026-11-22T10:44:47Z"}',
        b'{"log":"x","stream":"stdout","time":"later"}',
        b'{"log":1,"stream":"stdout","time":"2026-11-22T10:44:47Z"}',
    ],
)
def test_unreadable_records_are_skipped(raw):
    assert decode_line(raw) is None


# --- splitting a growing file into lines -------------------------------------------------


@given(
    st.lists(st.binary(min_size=1, max_size=20).filter(lambda b: b"\n" not in b), max_size=15),
    st.lists(st.integers(min_value=1, max_value=30), min_size=1),
)
def test_splitter_yields_each_complete_line_once_whatever_the_chunking(lines, cuts):
    data = b"".join(ln + b"\n" for ln in lines) + b"partial"
    splitter = LineSplitter()
    got = []
    pos = i = 0
    while pos < len(data):
        got += splitter.feed(data[pos : pos + cuts[i % len(cuts)]])
        pos += cuts[i % len(cuts)]
        i += 1
    assert got == lines
    assert splitter.pending == b"partial"


# --- tail ----------------------------------------------------------------------------------


def naive_tail_start(data: bytes, n: int) -> int:
    complete = data[: data.rfind(b"\n") + 1]
    lines = [ln + b"\n" for ln in complete.split(b"\n")[:-1]]
    keep = lines[max(0, len(lines) - n) :] if n else []
    return len(complete) - sum(map(len, keep))


@given(
    st.lists(st.binary(max_size=12).filter(lambda b: b"\n" not in b), max_size=30),
    st.binary(max_size=5).filter(lambda b: b"\n" not in b),
    st.integers(min_value=0, max_value=35),
    st.integers(min_value=1, max_value=16),
)
def test_tail_offset_matches_a_naive_count(lines, partial, n, block):
    data = b"".join(ln + b"\n" for ln in lines) + partial
    assert tail_offset(io.BytesIO(data), n, block=block) == naive_tail_start(data, n)


# --- reading -------------------------------------------------------------------------------


def write(path, *records: bytes) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(records))


async def collect(path, options, finished=lambda: True):
    return [ln async for ln in read_log(path, options, finished, poll=0)]


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "log.json"
    write(
        path,
        record("line 0\n", second=0),
        record("err 0\n", STDERR, second=0),
        record("line 1\n", second=1),
        record("err 1\n", STDERR, second=1),
        record("line 2\n", second=2),
        record("err 2\n", STDERR, second=2),
    )
    return path


async def test_everything_by_default(log):
    got = await collect(log, LogOptions())
    assert [ln.data for ln in got] == [
        b"line 0\n",
        b"err 0\n",
        b"line 1\n",
        b"err 1\n",
        b"line 2\n",
        b"err 2\n",
    ]


async def test_tail_counts_both_streams_then_filters(log):
    got = await collect(log, LogOptions(tail=3))
    assert [ln.data for ln in got] == [b"err 1\n", b"line 2\n", b"err 2\n"]
    got = await collect(log, LogOptions(tail=3, stderr=False))
    assert [ln.data for ln in got] == [b"line 2\n"]
    assert await collect(log, LogOptions(tail=0)) == []
    assert len(await collect(log, LogOptions(tail=100))) == 6


async def test_since_is_inclusive(log):
    got = await collect(log, LogOptions(since_ns=T0 + NS))
    assert [ln.data for ln in got] == [b"line 1\n", b"err 1\n", b"line 2\n", b"err 2\n"]
    got = await collect(log, LogOptions(since_ns=T0 + NS + 1, stdout=False))
    assert [ln.data for ln in got] == [b"err 2\n"]


async def test_a_torn_last_write_is_not_shown(log):
    write(log, record("never finished\n")[:20])
    got = await collect(log, LogOptions(tail=1))
    assert [ln.data for ln in got] == [b"err 2\n"]


async def test_no_log_yet_without_follow_is_empty(tmp_path):
    assert await collect(tmp_path / "none.json", LogOptions()) == []


async def test_follow_reads_what_is_written_until_the_writer_is_done(tmp_path):
    path = tmp_path / "log.json"
    done = False
    got = []
    arrived = asyncio.Event()

    async def reader():
        async for ln in read_log(path, LogOptions(follow=True), lambda: done, poll=0):
            got.append(ln.data)
            arrived.set()

    async def until(n):
        while len(got) < n:
            await arrived.wait()
            arrived.clear()

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)  # the reader waits for the log to exist
    write(path, record("a\n"))
    await asyncio.wait_for(until(1), 10)
    # A line written in two pieces comes out once, whole.
    piece = record("b\n", STDERR)
    write(path, piece[:10])
    for _ in range(5):
        await asyncio.sleep(0)
    assert got == [b"a\n"]
    write(path, piece[10:])
    await asyncio.wait_for(until(2), 10)
    # What the writer wrote just before finishing still arrives, then the reader stops.
    write(path, record("c\n"))
    done = True
    await asyncio.wait_for(task, 10)
    assert got == [b"a\n", b"b\n", b"c\n"]


async def test_follow_with_tail_starts_at_the_last_lines(log):
    got = await collect(log, LogOptions(follow=True, tail=1))
    assert [ln.data for ln in got] == [b"err 2\n"]
