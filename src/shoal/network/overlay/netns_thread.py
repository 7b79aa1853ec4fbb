"""Running a function inside another network namespace, on a thread of its own.

What a thread creates there stays there: a socket belongs for good to the namespace of
the thread that created it (a DNS listener in a sandbox, the netlink socket of an nftables
context in a task's namespace). Python 3.11's ``os`` has no ``setns``, hence ctypes on
libc. ``setns`` changes the calling thread only; each call gets a thread started for it
and ended after it, so that a thread that could not get back to the node's namespace (it
always should) is not left to run other work there, as a pooled one would be
(asyncio.to_thread's).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _call_in(path: str, fn: Callable[[], T]) -> T:
    """Runs on a dedicated thread: enter, call, go back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            return fn()
        finally:
            _setns(home)  # if this fails, the exception ends the thread, as it should
    finally:
        os.close(home)


async def run_in_namespace(
    path: str, fn: Callable[[], T], discard: Callable[[T], None] | None = None
) -> T:
    """``fn()`` called inside the network namespace at ``path``; its result. ``discard``
    disposes of a result nobody waits for any more (the caller was cancelled)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: T) -> None:
        if future.cancelled():
            if discard is not None:
                discard(result)
        else:
            future.set_result(result)

    def fail(error: BaseException) -> None:
        if not future.cancelled():
            future.set_exception(error)

    def work() -> None:
        try:
            result = _call_in(path, fn)
        except BaseException as e:
            loop.call_soon_threadsafe(fail, e)
        else:
            loop.call_soon_threadsafe(deliver, result)

    threading.Thread(target=work, name=f"netns {path}", daemon=True).start()
    return await future
