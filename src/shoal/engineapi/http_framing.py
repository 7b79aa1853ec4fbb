"""Where an HTTP/1.1 message ends, read from its bytes as they come (RFC 9112 6): what the
front needs to pass messages on unchanged, one after the other on a connection, without
decoding them. Pure logic, no I/O."""

from dataclasses import dataclass

LINE_LIMIT = 8192


class Malformed(Exception):
    """Bytes that are not HTTP/1.1 as this reads it."""


@dataclass
class Head:
    """A request's or response's head (up to and with its empty line)."""

    raw: bytes
    first: list[str]  # method, target, version | version, status, reason
    length: int | None
    chunked: bool
    close: bool

    @classmethod
    def parse(cls, raw: bytes) -> "Head":
        """The head's framing: only the headers that say where the body ends are looked at
        (the upstream reads the rest), found in the lower-cased bytes rather than split."""
        end = raw.find(b"\r\n")
        first = raw[:end].decode("latin-1").split(" ", 2)
        if len(first) < 2:
            raise Malformed(raw[:100])
        lower = raw.lower()
        length = None
        text = _header(lower, b"\r\ncontent-length:")
        if text is not None:
            try:
                length = int(text)
            except ValueError:
                raise Malformed(raw[:100]) from None
            if length < 0:
                raise Malformed(raw[:100])
        encoding = _header(lower, b"\r\ntransfer-encoding:")
        chunked = encoding is not None and b"chunked" in encoding
        connection = _header(lower, b"\r\nconnection:")
        close = connection is not None and b"close" in connection
        if first[0] == "HTTP/1.0" or first[-1] == "HTTP/1.0":
            close = True
        return cls(raw, first, None if chunked else length, chunked, close)

    @property
    def status(self) -> int:
        try:
            return int(self.first[1])
        except ValueError:
            raise Malformed(self.raw[:100]) from None

    def body_framing(self, request_method: str | None = None) -> "Body | None":
        """How this message's body ends: a Body to feed, or None for one that ends only with
        the connection. ``request_method``: for a response, the request's method."""
        if request_method is not None:  # a response
            status = self.status
            if request_method == "HEAD" or 100 <= status < 200 or status in (204, 304):
                return Length(0)
        if self.chunked:
            return Chunked()
        if self.length is not None:
            return Length(self.length)
        return Length(0) if request_method is None else None


def _header(lower: bytes, name: bytes) -> bytes | None:
    """The value of the header ``name`` (lower case, with the CRLF before it) in a
    lower-cased head; several of them are joined as one list, as HTTP allows."""
    values = []
    start = lower.find(name)
    while start >= 0:
        begin = start + len(name)
        values.append(lower[begin : lower.find(b"\r\n", begin)].strip())
        start = lower.find(name, begin)
    return b",".join(values) if values else None


class Body:
    done: bool

    def feed(self, data: bytes | memoryview) -> int:
        """How many bytes of ``data`` belong to the body (the rest is the next message)."""
        raise NotImplementedError


class Length(Body):
    def __init__(self, length: int) -> None:
        self.remaining = length
        self.done = length == 0

    def feed(self, data: bytes | memoryview) -> int:
        take = min(self.remaining, len(data))
        self.remaining -= take
        self.done = self.remaining == 0
        return take


class Chunked(Body):
    """Chunks (size line, data, CRLF), a last chunk of size 0, trailers, an empty line."""

    def __init__(self) -> None:
        self.done = False
        self._remaining = 0  # bytes of the current chunk's data and its CRLF still to come
        self._line = b""
        self._trailers = False

    def feed(self, data: bytes | memoryview) -> int:
        data = bytes(data) if isinstance(data, memoryview) else data
        i, n = 0, len(data)
        while i < n and not self.done:
            if self._remaining:
                take = min(self._remaining, n - i)
                i += take
                self._remaining -= take
                continue
            end = data.find(b"\n", i)
            if end < 0:
                self._line += data[i:]
                if len(self._line) > LINE_LIMIT:
                    raise Malformed(self._line[:100])
                return n
            line = self._line + data[i : end + 1]
            self._line = b""
            i = end + 1
            if self._trailers:
                self.done = line.strip() == b""
                continue
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise Malformed(line[:100]) from None
            if size == 0:
                self._trailers = True
            else:
                self._remaining = size + 2
        return i
