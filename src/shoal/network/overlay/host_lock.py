"""One node at a time, host-wide: for choices made by reading the host's own state.

Several nodes may share a host (a local cluster; the test beds). Most of what a node makes
carries its prefix and cannot clash, but the gateway bridge's subnet is chosen by reading
which subnets the host's links and routes already use: two nodes reading at once would
choose the same one, and each task's way out (and its published ports) would then go to
whichever bridge the host's routing picks. Holding this lock from the read to the write
makes the second node see the first one's bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

LOCK_DIR = Path("/run/shoal")
POLL_S = 0.005  # the lock is held for the few milliseconds of a read and a write


@contextlib.asynccontextmanager
async def host_lock(name: str, directory: Path = LOCK_DIR) -> AsyncIterator[None]:
    """An exclusive flock on ``directory/name.lock``, released when the block ends (or the
    process dies). Polled rather than waited for in a thread, so that a cancelled waiter
    leaves nothing behind that could take the lock later."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(POLL_S)
        yield
    finally:
        os.close(fd)
