"""dockerd's -H, as shoal daemon reads it."""

from pathlib import Path

import pytest

from shoal.engineapi.listeners import Listener, parse_host

SOCK = Path("/run/shoal.sock")


@pytest.mark.parametrize(
    ("value", "tls", "expected"),
    [
        ("unix:///tmp/a.sock", False, Listener(path=Path("/tmp/a.sock"))),
        ("unix://", False, Listener(path=SOCK)),
        ("tcp://0.0.0.0:2376", True, Listener(host="0.0.0.0", port=2376)),
        ("tcp://10.0.0.1", False, Listener(host="10.0.0.1", port=2375)),
        ("tcp://10.0.0.1", True, Listener(host="10.0.0.1", port=2376)),
        ("tcp://:4243", False, Listener(host="127.0.0.1", port=4243)),
        ("127.0.0.1:2000", False, Listener(host="127.0.0.1", port=2000)),
        ("tcp://[::1]:2376", True, Listener(host="::1", port=2376)),
    ],
)
def test_hosts(value, tls, expected):
    assert parse_host(value, tls, SOCK) == expected


@pytest.mark.parametrize("value", ["udp://1.2.3.4:5", "tcp://1.2.3.4:port", "tcp://h:1/path"])
def test_bad_hosts(value):
    with pytest.raises(ValueError, match=f"Invalid bind address format: {value}"):
        parse_host(value, False, SOCK)


def test_urls():
    assert Listener(host="::1", port=2376).url == "tcp://[::1]:2376"
    assert Listener(path=Path("/x.sock")).url == "unix:///x.sock"
