"""Docker's multiplexed stream (``application/vnd.docker.multiplexed-stream``): each write is
a frame of an 8-byte header (stream type, three zero bytes, big-endian uint32 length) and
the payload. Stream 3 carries an error from the daemon after the response has begun."""

import struct

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
HEADER = struct.Struct(">BxxxL")
MEDIA_TYPE = "application/vnd.docker.multiplexed-stream"
RAW_MEDIA_TYPE = "application/vnd.docker.raw-stream"


def frame(stream: int, payload: bytes) -> bytes:
    return HEADER.pack(stream, len(payload)) + payload


class Demultiplexer:
    """Splits a multiplexed stream, fed in pieces of any size, back into its frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        frames = []
        while len(self._buf) >= HEADER.size:
            stream, length = HEADER.unpack_from(self._buf)
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            frames.append((stream, bytes(self._buf[HEADER.size : end])))
            del self._buf[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame (non-zero at the end of a stream means it was cut)."""
        return len(self._buf)
