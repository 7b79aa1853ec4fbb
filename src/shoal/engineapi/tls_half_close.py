"""Half-closed TLS connections, as Go's server keeps them: a Docker client done sending on a
hijacked connection (``docker exec`` at the end of its input) sends a TLS close_notify (Go's
CloseWrite) or shuts its TCP side down, and reads on until the output ends.

asyncio's TLS layer takes either for the end of the connection and closes it, the output
unsent, and it has no public hook for doing otherwise. So for as long as a connection is a
tunnel, its TLS layer's own end-of-input handling is set aside on that connection alone: the
end of the client's input is passed on, and the connection closes only when the tunnel ends."""

import asyncio
import contextlib
from collections.abc import Callable


def keep_tls_half_open(
    transport: asyncio.BaseTransport, on_eof: Callable[[], object]
) -> Callable[[], None]:
    """Keep ``transport`` (if it is asyncio's TLS) open when its client ends its input,
    calling ``on_eof`` instead; returns what undoes it (call it before closing)."""
    layer = getattr(transport, "_ssl_protocol", None)
    if layer is None or not hasattr(layer, "_start_shutdown") or not hasattr(layer, "eof_received"):
        return lambda: None

    def raw_eof_received() -> bool:
        on_eof()
        return True  # the TCP connection stays open for the output

    # The TCP side shut down: the end of the client's input only.
    layer.eof_received = raw_eof_received
    # Called on a close_notify (once the application was told of the end of input) and by
    # close(): the connection is closed only once the tunnel is over, after restore().
    layer._start_shutdown = lambda: None

    def restore() -> None:
        for name in ("eof_received", "_start_shutdown"):
            with contextlib.suppress(AttributeError):
                delattr(layer, name)

    return restore
