"""nftables through libnftables (the library ``nft`` itself is built on), with a context
kept open per network namespace.

Why, when nftables.py runs ``nft -f``: found by experiment (kernel 6.18, nftables 1.0.6),
every nftables transaction that deletes something (a rule, a chain, a table, a map
element: replacing a table does) leaves the deleted objects to a deferred destruction
that waits for an RCU grace period, and closing the netlink socket that made the
transaction waits for that destruction to finish. An ``nft`` process closes its socket as
it exits, so each replace costs ~16 ms of wall time (~4 ms of CPU), and that wait is
serialized across the whole machine (10 namespaces in parallel: 140 ms). A context kept
open never closes its socket: the same replace costs ~0.4 ms, and the destruction happens
in the background. For VIP tables, rewritten in every task namespace of a node whenever a
service's backends change, that is the difference between milliseconds and seconds.

libnftables.so.1 comes with the nftables package (``nft`` is linked against it), so it is
there wherever ``nft`` is; Debian's python3-nftables is only ctypes over it, and is not
installable in a virtualenv, hence ctypes here. The text applied is ``nft -f``'s.

A context's socket belongs to the namespace it was created in (made on a thread inside
it, see netns_thread), and holds that namespace alive: close the context when the
namespace goes away. A context is not thread-safe: calls are serialized by a lock.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading

from shoal.network.overlay.netns_thread import run_in_namespace
from shoal.network.overlay.tools import ToolError

_lib: ctypes.CDLL | None = None
_lib_error: str | None = None


def library() -> ctypes.CDLL | None:
    """libnftables, loaded once; None if it cannot be (see ``why_not``)."""
    global _lib, _lib_error
    if _lib is None and _lib_error is None:
        try:
            lib = ctypes.CDLL("libnftables.so.1")
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
            _lib = lib
        except (OSError, AttributeError) as e:
            _lib_error = str(e)
    return _lib


def why_not() -> str | None:
    library()
    return _lib_error


class NftContext:
    """An open libnftables context in one namespace."""

    def __init__(self, lib: ctypes.CDLL, ctx: int, path: str, ns_id: tuple[int, int]) -> None:
        self._lib = lib
        self._ctx: int | None = ctx
        self.path = path
        # Which namespace it is in (nsfs device and inode): the file at ``path`` may later
        # name another one (a task namespace deleted and made again under the same name).
        self.ns_id = ns_id
        self._lock = threading.Lock()

    def _run(self, script: str) -> None:
        with self._lock:
            if self._ctx is None:
                raise ToolError(f"nftables context for {self.path} is closed")
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, script.encode())
            if rc != 0:
                err = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode(
                    errors="replace"
                )
                raise ToolError(
                    f"nft in {self.path} failed: {err.strip()}\n--- input ---\n{script}"
                )

    async def run(self, script: str) -> None:
        """Applies an ``nft -f`` text: one transaction, all of it or nothing."""
        await asyncio.to_thread(self._run, script)

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None


def namespace_id(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


async def open_context(path: str) -> NftContext:
    """A context whose netlink socket lives in the namespace at ``path``."""
    lib = library()
    if lib is None:
        raise ToolError(f"libnftables is not available: {_lib_error}")

    def create() -> int:
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            raise ToolError("nft_ctx_new failed")
        # Keep libnftables from printing: output and errors go to buffers we read.
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        return ctx

    ns_id = namespace_id(path)
    ctx = await run_in_namespace(path, create, lib.nft_ctx_free)
    return NftContext(lib, ctx, path, ns_id)
