import socket
from pathlib import Path

import pytest

from shoal.network.dns.upstream import (
    LOCAL,
    Upstream,
    from_resolv_conf,
    parse_upstream,
    parse_upstreams,
    system_upstreams,
)


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("10.0.0.2", "10.0.0.2", 53),
        (" 10.0.0.2:5353 ", "10.0.0.2", 5353),
        ("fd00::2", "fd00::2", 53),
        ("[fd00::2]:5353", "fd00::2", 5353),
        ("[fd00::2]", "fd00::2", 53),
        ("fe80::1%eth0", "fe80::1%eth0", 53),
    ],
)
def test_parse_upstream(text: str, host: str, port: int) -> None:
    assert parse_upstream(text) == Upstream(host, port)


@pytest.mark.parametrize(
    "text",
    ["dns.example", "10.0.0.2:0", "10.0.0.2:99999", "10.0.0.2:x", "[fd00::2", "[fd00::2]53", ""],
)
def test_bad_upstreams_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_upstream(text)


def test_family_and_text() -> None:
    assert Upstream("10.0.0.2").family == socket.AF_INET
    assert Upstream("fd00::2").family == socket.AF_INET6
    assert str(Upstream("10.0.0.2", 5353)) == "10.0.0.2:5353"
    assert str(Upstream("fd00::2")) == "[fd00::2]:53"
    assert parse_upstreams(["10.0.0.2", Upstream("10.0.0.3")]) == (
        Upstream("10.0.0.2"),
        Upstream("10.0.0.3"),
    )


def test_resolv_conf_keeps_every_nameserver_in_order_loopback_included() -> None:
    text = """# generated
search example.com
nameserver 127.0.0.53
nameserver   10.0.0.2  # trailing words are ignored
; comment
nameserver fd00::2
nameserver not-an-address
nameserver
options edns0 trust-ad
"""
    assert from_resolv_conf(text) == (
        Upstream("127.0.0.53"),
        Upstream("10.0.0.2"),
        Upstream("fd00::2"),
    )


def test_resolv_conf_without_nameservers_means_the_local_host() -> None:
    assert from_resolv_conf("search example.com\n") == LOCAL == (Upstream("127.0.0.1"),)


async def test_system_upstreams(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 192.0.2.53\n")
    assert await system_upstreams(conf) == (Upstream("192.0.2.53"),)
    assert await system_upstreams(tmp_path / "missing") == LOCAL
