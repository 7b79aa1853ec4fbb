"""Small asyncio helpers the loops share: racing an awaitable against another, and writing to
the store from code that may be cancelled."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from shoal.store import MemoryStore, Tx, shielded

T = TypeVar("T")

log = logging.getLogger("shoal.manager.orchestrator")


async def first_of(*aws: Awaitable[Any]) -> int:
    """Wait until the first of ``aws`` finishes; cancel the others; return its position."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
    for i, t in enumerate(tasks):
        if t in done:
            t.result()  # re-raise its exception, if any
            return i
    raise AssertionError("unreachable")


async def write(store: MemoryStore, fn: Callable[[Tx], T]) -> T:
    """``store.update(fn)``, finished even if the caller is cancelled meanwhile: a write that
    began is not torn in two (the log and the tables stay in step). Its error, once the
    caller is gone (leadership lost, the manager stopping), is logged at debug."""
    return await shielded(store.update(fn), "a store write")


async def write_batch(store: MemoryStore, fns: Sequence[Callable[[Tx], Any]]) -> None:
    if fns:
        await shielded(store.batch(fns), "a store batch")


def logged(fn: Callable[[Tx], T], what: str) -> Callable[[Tx], T | None]:
    """Wrap a batch function so that a failure is logged (store.batch skips it silently)."""

    def run(tx: Tx) -> T | None:
        try:
            return fn(tx)
        except Exception:
            log.exception("%s failed", what)
            raise

    return run
