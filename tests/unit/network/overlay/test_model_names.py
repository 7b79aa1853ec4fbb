import pytest

from shoal.network.overlay.model import OverlayNetwork, Peer, mac_for_ip
from shoal.network.overlay.names import IFNAMSIZ, NodeNames, check_ifname


def test_mac_is_dockers() -> None:
    assert mac_for_ip("10.0.1.3") == "02:42:0a:00:01:03"
    assert mac_for_ip("172.18.255.254/16") == "02:42:ac:12:ff:fe"


def test_network_checks_and_normalizes() -> None:
    net = OverlayNetwork("abc123", "web", "10.0.1.0/24", "10.0.1.1", 4097)
    assert net.mtu == 1450 and not net.internal
    assert net.gateway_cidr == "10.0.1.1/24"
    assert net.address_cidr("10.0.1.7") == "10.0.1.7/24"
    assert net.address_cidr("10.0.1.7/24") == "10.0.1.7/24"
    with pytest.raises(ValueError):
        net.address_cidr("10.0.2.7")
    with pytest.raises(ValueError):
        OverlayNetwork("abc", "x", "10.0.1.0/24", "10.0.1.0", 4097)  # network address
    with pytest.raises(ValueError):
        OverlayNetwork("abc", "x", "10.0.1.1/24", "10.0.1.2", 4097)  # host bits set
    with pytest.raises(ValueError):
        OverlayNetwork("abc", "x", "10.0.1.0/24", "10.0.1.1", 2**24)
    with pytest.raises(ValueError):
        OverlayNetwork("../etc", "x", "10.0.1.0/24", "10.0.1.1", 4097)


def test_peer() -> None:
    p = Peer("10.0.1.3", "198.18.0.2", 4790)
    assert p.mac == "02:42:0a:00:01:03"
    with pytest.raises(ValueError):
        Peer("10.0.1.3", "198.18.0.2", 0)


def test_every_name_fits_and_carries_the_prefix() -> None:
    names = NodeNames("abcdef")  # the longest prefix
    port = names.gateway_port("255.255.255.254")
    assert port == "abcdefgfffffffe" and len(port) == IFNAMSIZ
    assert names.gateway_port_address(port) == "255.255.255.254"
    assert names.gateway_port_address(names.gateway_bridge) is None
    assert names.gateway_port_address("otherg0a000001") is None
    assert names.gateway_bridge == "abcdefgw"
    assert len(NodeNames.sandbox_port("10.0.1.3")) <= IFNAMSIZ
    assert names.sandbox("0123456789abcdefghijklmno") == "abcdef-0123456789"
    assert names.task("web.1.xyz") == "abcdef-t-web.1.xyz"
    assert names.gateway_table.startswith("abcdef") and names.vip_table.startswith("abcdef")


@pytest.mark.parametrize("prefix", ["", "abcdefg", "1ab", "a-b", "AB"])
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError):
        NodeNames(prefix)


def test_interface_names() -> None:
    assert check_ifname("eth0") == "eth0"
    for bad in ["", "x" * 16, "a b", "a/b"]:
        with pytest.raises(ValueError):
            check_ifname(bad)
    with pytest.raises(ValueError):
        NodeNames("n1").task("../x")
