"""Awaiting work that must run to its end even if the one awaiting it is cancelled (a write
handed to the log must also be applied), without losing the error it may end with."""

import asyncio
import logging
from collections.abc import Awaitable
from functools import partial
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


async def shielded(aw: Awaitable[T], what: str) -> T:
    """Await ``aw``, which goes on if the caller is cancelled. Once the caller is gone nobody
    awaits it: the error it may end with (raft's NotLeader, CommitUnknown or
    ProposalDropped when leadership is lost or the node stops) is retrieved and logged at
    debug, or asyncio would report "Task exception was never retrieved"."""
    task = asyncio.ensure_future(aw)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            task.add_done_callback(partial(_log_orphan, what))
        raise


def _log_orphan(what: str, task: asyncio.Future[object]) -> None:
    if not task.cancelled() and (err := task.exception()) is not None:
        log.debug("%s, whose caller was cancelled, failed: %s", what, err)
