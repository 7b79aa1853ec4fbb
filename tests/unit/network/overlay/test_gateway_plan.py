import pytest

from shoal.network.overlay.gateway_plan import (
    allocate,
    bridge_commands,
    choose_subnet,
    render_table,
    taken_by,
)
from shoal.network.overlay.observed import Link, Route


def test_subnet_avoids_routes_and_addresses() -> None:
    assert choose_subnet([], 16) == "172.16.0.0/16"
    assert choose_subnet(["172.16.0.0/16", "172.17.0.0/16"], 16) == "172.18.0.0/16"
    with pytest.raises(ValueError):
        choose_subnet(["172.16.0.0/12"], 16)
    assert choose_subnet(["172.16.0.5/32"], 24) == "172.16.1.0/24"


def test_taken_by_what_the_node_has() -> None:
    links = {"docker0": Link("docker0", 5, "bridge", addresses=("172.17.0.1/16",))}
    routes = [Route("default", "192.0.2.1", "eth0"), Route("172.18.0.0/16", None, "x")]
    assert choose_subnet(taken_by(links, routes), 16) == "172.16.0.0/16"
    assert sorted(taken_by(links, routes)) == ["172.17.0.1/16", "172.18.0.0/16"]


def test_default_routes_do_not_count_even_split_ones() -> None:
    routes = [
        Route("default", "10.0.0.1", "eth0"),
        Route("0.0.0.0/1", "10.8.0.1", "tun0"),
        Route("128.0.0.0/1", "10.8.0.1", "tun0"),
        Route("172.16.0.0/12", None, "vpn1"),  # a real route: the whole pool is taken
    ]
    assert taken_by({}, routes) == ["172.16.0.0/12"]
    assert choose_subnet(taken_by({}, routes[:3]), 16) == "172.16.0.0/16"


def test_bridge() -> None:
    assert bridge_commands("n1gw", "172.16.0.0/16") == [
        "link add n1gw mtu 1500 type bridge",
        "addr add 172.16.0.1/16 dev n1gw",
        "link set n1gw up",
    ]


def test_allocation_is_the_lowest_free_address() -> None:
    assert allocate("172.16.0.1/16", []) == "172.16.0.2/16"
    assert allocate("172.16.0.1/16", ["172.16.0.2", "172.16.0.4/16"]) == "172.16.0.3/16"
    with pytest.raises(ValueError):
        allocate("10.0.0.1/30", ["10.0.0.2"])


def test_masquerade_table() -> None:
    text = render_table("n1_gw", "n1gw", "172.16.0.0/16")
    assert text.splitlines()[:4] == [
        "table ip n1_gw {",
        "}",
        "delete table ip n1_gw",
        "table ip n1_gw {",
    ]
    assert 'ip saddr 172.16.0.0/16 oifname != "n1gw" masquerade' in text
