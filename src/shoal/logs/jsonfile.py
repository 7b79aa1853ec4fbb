"""Reading a log in Docker's json-file format: one JSON object per line,
``{"log": "...\\n", "stream": "stdout", "time": "2026-11-22T10:44:47.828477198Z"}``
(optionally with ``"attrs"``), appended to by the task's writer while we read.

The pure parts (decoding a line, splitting complete lines off a growing file, finding where
the last N lines begin) are separate from the reader that follows the file."""

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

from shoal.logs.model import STDERR, STDOUT, LogLine, LogOptions
from shoal.logs.timestamps import parse_rfc3339

CHUNK = 256 * 1024
TAIL_BLOCK = 64 * 1024
# How often a follower looks for more output: a log is a file, and asyncio has no portable
# way to be told it grew.
FOLLOW_POLL = 0.1


def decode_line(raw: bytes) -> LogLine | None:
    """The line a json-file record holds; None for a record that cannot be read (a torn
    write after a crash), which readers skip as Docker's does."""
    try:
        record = json.loads(raw)
        stream = record["stream"]
        timestamp = parse_rfc3339(record["time"])
        data = record["log"].encode()
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if stream not in (STDOUT, STDERR):
        return None
    attrs = record.get("attrs") or {}
    pairs = (
        tuple(sorted((str(k), str(v)) for k, v in attrs.items())) if isinstance(attrs, dict) else ()
    )
    return LogLine(timestamp_ns=timestamp, stream=stream, data=data, attrs=pairs)


class LineSplitter:
    """Cuts a byte stream into complete lines; a partial line at the end of what has been
    written so far waits for the rest."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[bytes]:
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [ln for ln in lines if ln]

    @property
    def pending(self) -> bytes:
        return self._partial


def tail_offset(f: BinaryIO, n: int, block: int = TAIL_BLOCK) -> int:
    """Where the last ``n`` complete lines of the file begin (a partial line being written
    at the end is not counted). Reads backwards in blocks, so a long log costs little."""
    size = f.seek(0, os.SEEK_END)
    pos = size
    # Newlines seen so far scanning backwards. The last complete line ends at the last
    # newline; the last n lines begin just after the (n+1)-th newline from the end.
    seen = 0
    while pos > 0:
        start = max(0, pos - block)
        f.seek(start)
        chunk = f.read(pos - start)
        i = len(chunk)
        while (i := chunk.rfind(b"\n", 0, i)) >= 0:
            seen += 1
            if seen == n + 1:
                return start + i + 1
        pos = start
    return 0  # fewer than n lines: all of them


async def _open_when_there(
    path: Path, follow: bool, finished: Callable[[], bool], poll: float
) -> BinaryIO | None:
    """The log opened for reading; with follow, once the writer has made it (None if it never
    will)."""
    while True:
        try:
            return await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            if not follow or finished():
                return None
            await asyncio.sleep(poll)


async def read_log(
    path: Path,
    options: LogOptions,
    finished: Callable[[], bool],
    poll: float = FOLLOW_POLL,
) -> AsyncIterator[LogLine]:
    """The lines of the log at ``path`` that ``options`` select. Without follow, what is
    there now. With follow, also what is written later, until ``finished()`` says the writer
    is done for good and everything it wrote has been read (or the caller stops iterating).
    A log that does not exist yet is waited for when following."""
    f = await _open_when_there(path, options.follow, finished, poll)
    if f is None:
        return
    try:
        if options.tail is not None:
            f.seek(await asyncio.to_thread(tail_offset, f, max(options.tail, 0)))
        splitter = LineSplitter()
        writer_done = False
        while True:
            chunk = await asyncio.to_thread(f.read, CHUNK)
            if chunk:
                for raw in splitter.feed(chunk):
                    line = decode_line(raw)
                    if line is not None and options.selects(line):
                        yield line
                continue
            if not options.follow or writer_done:
                return
            # Ask before reading again: whatever the writer wrote before it finished is
            # then read by the next pass, and the one after that ends the loop.
            if finished():
                writer_done = True
                continue
            await asyncio.sleep(poll)
    finally:
        f.close()
