from shoal.network.overlay.observed import Link, Route
from shoal.network.overlay.veth_plan import VethSpec, plan_veth

TASK = "/run/netns/n1-t-web.1"
SPEC = VethSpec(TASK, "eth0", "10.0.1.3/24", "02:42:0a:00:01:03", 1450, "ve0a000103", "br0")
GW = VethSpec(
    TASK, "eth1", "172.16.0.2/16", "02:42:ac:10:00:02", 1500, "n1gac100002", "n1gw",
    isolated=True, default_via="172.16.0.1",
)  # fmt: skip


def pair(spec: VethSpec, **outer: object) -> tuple[dict[str, Link], dict[str, Link]]:
    inner = Link(
        spec.inner_name, 2, "veth", True, spec.mtu, spec.mac, peer_ifindex=7,
        addresses=(spec.address,),
    )  # fmt: skip
    o = dict(
        name=spec.outer_name, ifindex=7, kind="veth", up=True, mtu=spec.mtu,
        master=spec.bridge, peer_ifindex=2, port={"isolated": spec.isolated},
    )  # fmt: skip
    o.update(outer)
    return {spec.inner_name: inner}, {spec.outer_name: Link(**o)}  # type: ignore[arg-type]


def test_a_new_attachment() -> None:
    plan = plan_veth(SPEC, {}, {})
    assert plan.inner_first == []
    assert plan.outer == [
        "link add ve0a000103 mtu 1450 type veth peer name eth0 address 02:42:0a:00:01:03 "
        "mtu 1450 netns /run/netns/n1-t-web.1",
        "link set ve0a000103 master br0",
        "link set ve0a000103 up",
    ]
    assert plan.inner == ["addr add 10.0.1.3/24 dev eth0", "link set eth0 up"]


def test_a_gateway_attachment_is_isolated_with_a_default_route() -> None:
    plan = plan_veth(GW, {}, {}, [])
    assert "link set n1gac100002 type bridge_slave isolated on" in plan.outer
    assert plan.inner[-1] == "route replace default via 172.16.0.1 dev eth1"


def test_a_right_attachment_is_adopted() -> None:
    assert plan_veth(SPEC, *pair(SPEC)).empty
    assert plan_veth(GW, *pair(GW), [Route("default", "172.16.0.1", "eth1")]).empty


def test_small_differences_are_fixed_in_place() -> None:
    inner, outer = pair(GW, up=False, port={"isolated": False})
    plan = plan_veth(GW, inner, outer, [])
    assert plan.inner_first == []
    assert plan.outer == [
        "link set n1gac100002 type bridge_slave isolated on",
        "link set n1gac100002 up",
    ]
    assert plan.inner == ["route replace default via 172.16.0.1 dev eth1"]


def test_ends_of_different_pairs_are_replaced() -> None:
    inner, outer = pair(SPEC, peer_ifindex=9)
    plan = plan_veth(SPEC, inner, outer)
    assert plan.inner_first == ["link del eth0"]
    assert plan.outer[0] == "link del ve0a000103"
    assert plan.outer[1].startswith("link add ve0a000103")


def test_a_pair_with_the_wrong_mac_goes_whole_with_its_inner_end() -> None:
    inner, outer = pair(SPEC)
    inner["eth0"] = Link("eth0", 2, "veth", True, 1450, "02:42:0a:00:01:99", peer_ifindex=7)
    plan = plan_veth(SPEC, inner, outer)
    assert plan.inner_first == ["link del eth0"]
    assert plan.outer[0].startswith("link add")  # no "link del": it went with its peer


def test_a_stale_end_alone() -> None:
    _, outer = pair(SPEC)
    plan = plan_veth(SPEC, {}, outer)
    assert plan.inner_first == [] and plan.outer[0] == "link del ve0a000103"
