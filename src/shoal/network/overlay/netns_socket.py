"""A socket made and bound in another network namespace, used from this one.

A socket belongs for good to the namespace of the thread that created it: it can be made
there by a thread that enters the namespace (``setns``, which Python 3.11's ``os`` lacks,
hence ctypes on libc), creates and binds it, and leaves. The node serves it afterwards
from its event loop like any other socket, e.g. the DNS listener on a network's gateway
address inside its sandbox.

Each call runs on a thread of its own, started for it and ended after it: ``setns``
changes the calling thread only, and a thread that could not get back to the node's
namespace (it always should) must not be left to run other work there, as a pooled one
would be (asyncio.to_thread's).

The socket holds its namespace: a namespace deleted (``ip netns del``) while such a socket
is open lives on, with every device still in it, until the socket is closed.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import socket
import threading
from typing import Any

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _bound(family: int, type: int, address: Any) -> socket.socket:
    sock = socket.socket(family, type)
    try:
        if type == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _open_in(path: str, family: int, type: int, address: Any) -> socket.socket:
    """Runs on a dedicated thread: enter, create and bind, go back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            sock = _bound(family, type, address)
        finally:
            _setns(home)  # if this fails, the exception ends the thread, as it should
        return sock
    finally:
        os.close(home)


async def open_socket_in_namespace(
    path: str, family: int, type: int, address: Any
) -> socket.socket:
    """A socket of ``family`` and ``type``, bound to ``address`` inside the network
    namespace at ``path`` (e.g. ``/run/netns/<sandbox>``). TCP sockets get SO_REUSEADDR
    and are not listening yet; the caller listens (or hands it to ``loop.create_server``)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[socket.socket] = loop.create_future()

    def deliver(result: socket.socket | None, error: BaseException | None) -> None:
        if future.cancelled():
            if result is not None:
                result.close()
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            sock = _open_in(path, family, type, address)
        except BaseException as e:
            loop.call_soon_threadsafe(deliver, None, e)
        else:
            loop.call_soon_threadsafe(deliver, sock, None)

    threading.Thread(target=work, name=f"netns-socket {path}", daemon=True).start()
    return await future
