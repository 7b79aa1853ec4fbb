from shoal.network.overlay.model import OverlayNetwork
from shoal.network.overlay.observed import Link
from shoal.network.overlay.sandbox_plan import plan_sandbox

NET = OverlayNetwork("abc123", "web", "10.0.1.0/24", "10.0.1.1", 4097)
PATH = "/run/netns/n1-abc123"
VXLAN_INFO = {"id": 4097, "port": 4789, "local": "198.18.0.1", "learning": False, "proxy": True}


def right() -> dict[str, Link]:
    return {
        "lo": Link("lo", 1, up=True),
        "br0": Link("br0", 3, "bridge", True, 1450, addresses=("10.0.1.1/24",)),
        "vxlan0": Link(
            "vxlan0", 2, "vxlan", True, 1450, master="br0", info=VXLAN_INFO,
            port={"learning": False},
        ),
    }  # fmt: skip


def test_a_new_sandbox() -> None:
    plan = plan_sandbox(NET, PATH, {}, 4789, "198.18.0.1")
    assert plan.sandbox_first == []
    assert plan.node == [
        "link add vxlan0 netns /run/netns/n1-abc123 mtu 1450 type vxlan id 4097 "
        "dstport 4789 nolearning proxy local 198.18.0.1"
    ]
    assert plan.sandbox == [
        "link set lo up",
        "link add br0 mtu 1450 type bridge",
        "addr add 10.0.1.1/24 dev br0",
        "link set br0 up",
        "link set vxlan0 master br0",
        "link set vxlan0 type bridge_slave learning off",
        "link set vxlan0 up",
    ]


def test_without_local_address_the_kernel_chooses() -> None:
    plan = plan_sandbox(NET, PATH, {}, 4790, None)
    assert plan.node[0].endswith("dstport 4790 nolearning proxy")


def test_a_right_sandbox_is_adopted_untouched() -> None:
    assert plan_sandbox(NET, PATH, right(), 4789, "198.18.0.1").empty


def test_a_vxlan_device_of_another_port_vni_or_address_is_replaced() -> None:
    for port, local, net in [
        (4790, "198.18.0.1", NET),
        (4789, "198.18.0.9", NET),
        (4789, "198.18.0.1", OverlayNetwork("abc123", "web", "10.0.1.0/24", "10.0.1.1", 4098)),
    ]:
        plan = plan_sandbox(net, PATH, right(), port, local)
        assert plan.sandbox_first == ["link del vxlan0"]
        assert len(plan.node) == 1
        assert "link set vxlan0 master br0" in plan.sandbox


def test_bridge_repairs() -> None:
    links = right()
    links["br0"] = Link("br0", 3, "bridge", False, 1500, addresses=("10.0.1.1/16", "10.9.9.9/8"))
    links["vxlan0"] = Link("vxlan0", 2, "vxlan", False, 1500, master=None, info=VXLAN_INFO)
    plan = plan_sandbox(NET, PATH, links, 4789, "198.18.0.1")
    assert plan.sandbox_first == [] and plan.node == []
    assert plan.sandbox == [
        "addr del 10.0.1.1/16 dev br0",
        "addr del 10.9.9.9/8 dev br0",
        "addr add 10.0.1.1/24 dev br0",
        "link set br0 mtu 1450",
        "link set br0 up",
        "link set vxlan0 master br0",
        "link set vxlan0 type bridge_slave learning off",
        "link set vxlan0 mtu 1450",
        "link set vxlan0 up",
    ]


def test_a_br0_that_is_not_a_bridge_is_replaced() -> None:
    links = right()
    links["br0"] = Link("br0", 3, "dummy", True, 1450)
    plan = plan_sandbox(NET, PATH, links, 4789, "198.18.0.1")
    assert plan.sandbox_first == ["link del br0"]
    assert "link add br0 mtu 1450 type bridge" in plan.sandbox
