"""Where HTTP/1.1 messages end, as the front reads them from bytes that come in pieces."""

import pytest

from shoal.engineapi.http_framing import Chunked, Head, Length, Malformed


def head(text: str) -> Head:
    return Head.parse(text.replace("\n", "\r\n").encode() + b"\r\n")


def test_request_heads():
    h = head("POST /v1.41/containers/create?name=x HTTP/1.1\nHost: docker\nContent-Length: 12\n")
    assert h.first == ["POST", "/v1.41/containers/create?name=x", "HTTP/1.1"]
    body = h.body_framing()
    assert isinstance(body, Length) and body.remaining == 12 and not h.close
    get = head("GET /_ping HTTP/1.1\nHost: docker\nConnection: close\n")
    assert get.close and get.body_framing().done  # no body
    chunked = head("POST /build HTTP/1.1\nTransfer-Encoding: chunked\nContent-Length: 5\n")
    assert isinstance(chunked.body_framing(), Chunked)  # chunked wins over a length
    assert head("GET / HTTP/1.0\n").close


def test_response_heads():
    ok = head("HTTP/1.1 200 OK\nContent-Type: application/json\ncontent-length: 3\n")
    assert ok.status == 200 and ok.body_framing("GET").remaining == 3
    assert ok.body_framing("HEAD").done  # a HEAD's answer has no body, whatever its length
    assert head("HTTP/1.1 204 No Content\n").body_framing("DELETE").done
    assert head("HTTP/1.1 304 Not Modified\n").body_framing("GET").done
    # No length: the body ends with the connection (attach's raw stream).
    raw = head("HTTP/1.1 200 OK\nContent-Type: application/vnd.docker.raw-stream\n")
    assert raw.body_framing("POST") is None
    upgraded = head("HTTP/1.1 101 UPGRADED\nConnection: Upgrade\nUpgrade: tcp\n")
    assert upgraded.status == 101 and not upgraded.close


@pytest.mark.parametrize(
    "text",
    ["garbage\n", "HTTP/1.1 200 OK\nContent-Length: x\n", "HTTP/1.1 200 OK\nContent-Length: -1\n"],
)
def test_malformed(text):
    with pytest.raises(Malformed):
        head(text)


def test_length_stops_at_the_end():
    body = Length(5)
    assert body.feed(b"abc") == 3 and not body.done
    assert body.feed(b"deGET /next") == 2 and body.done


STREAM = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n"


@pytest.mark.parametrize("piece", [1, 2, 3, 7, len(STREAM)])
def test_chunked_in_any_pieces(piece):
    body = Chunked()
    data = STREAM + b"GET /next HTTP/1.1\r\n"
    used = 0
    for i in range(0, len(data), piece):
        if body.done:
            break
        used += body.feed(data[i : i + piece])
    assert body.done and used == len(STREAM)


def test_chunked_bad_size():
    with pytest.raises(Malformed):
        Chunked().feed(b"zz\r\n")
