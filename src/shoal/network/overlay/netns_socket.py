"""A socket made and bound in another network namespace, used from this one: made by a
thread that enters the namespace (netns_thread), served afterwards from the node's event
loop like any other socket, e.g. the DNS listener on a network's gateway address inside
its sandbox.

The socket holds its namespace: a namespace deleted (``ip netns del``) while such a socket
is open lives on, with every device still in it, until the socket is closed.
"""

from __future__ import annotations

import socket
from typing import Any

from shoal.network.overlay.netns_thread import run_in_namespace


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


async def open_socket_in_namespace(
    path: str, family: int, type: int, address: Any
) -> socket.socket:
    """A socket of ``family`` and ``type``, bound to ``address`` inside the network
    namespace at ``path`` (e.g. ``/run/netns/<sandbox>``). TCP sockets get SO_REUSEADDR
    and are not listening yet; the caller listens (or hands it to ``loop.create_server``)."""
    return await run_in_namespace(path, lambda: _bound(family, type, address), socket.socket.close)
