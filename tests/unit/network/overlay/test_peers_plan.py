import pytest

from shoal.network.overlay.model import Peer
from shoal.network.overlay.observed import Fdb
from shoal.network.overlay.peers_plan import plan_peers

A = Peer("10.0.1.3", "198.18.0.2")
B = Peer("10.0.1.4", "198.18.0.3", 4790)
NOTHING = Fdb({}, frozenset())


def written(peers: list[Peer]) -> tuple[dict[str, str], Fdb]:
    return (
        {p.address: p.mac for p in peers},
        Fdb({p.mac: (p.node, p.port) for p in peers}, frozenset(p.mac for p in peers)),
    )


def test_from_nothing() -> None:
    plan = plan_peers([B, A], {}, NOTHING)
    assert plan.ip == [
        "neigh replace 10.0.1.3 lladdr 02:42:0a:00:01:03 dev vxlan0 nud permanent",
        "neigh replace 10.0.1.4 lladdr 02:42:0a:00:01:04 dev vxlan0 nud permanent",
    ]
    assert plan.bridge == [
        "fdb replace 02:42:0a:00:01:03 dev vxlan0 dst 198.18.0.2 port 4789 self permanent",
        "fdb replace 02:42:0a:00:01:03 dev vxlan0 master static",
        "fdb replace 02:42:0a:00:01:04 dev vxlan0 dst 198.18.0.3 port 4790 self permanent",
        "fdb replace 02:42:0a:00:01:04 dev vxlan0 master static",
    ]


def test_the_same_set_changes_nothing() -> None:
    assert plan_peers([A, B], *written([A, B])).empty


def test_removal_and_a_move_to_another_node() -> None:
    moved = Peer("10.0.1.4", "198.18.0.9", 4789)
    plan = plan_peers([moved], *written([A, B]))
    assert plan.ip == ["neigh del 10.0.1.3 dev vxlan0"]  # same MAC for a moved address
    assert plan.bridge == [
        "fdb del 02:42:0a:00:01:03 dev vxlan0 self",
        "fdb del 02:42:0a:00:01:03 dev vxlan0 master",
        "fdb replace 02:42:0a:00:01:04 dev vxlan0 dst 198.18.0.9 port 4789 self permanent",
    ]


def test_to_nothing() -> None:
    plan = plan_peers([], *written([A]))
    assert plan.ip == ["neigh del 10.0.1.3 dev vxlan0"]
    assert len(plan.bridge) == 2


def test_one_address_on_two_nodes_is_refused() -> None:
    with pytest.raises(ValueError, match="two nodes"):
        plan_peers([A, Peer("10.0.1.3", "198.18.0.7")], {}, NOTHING)
    assert not plan_peers([A, A], {}, NOTHING).empty  # a repeat is harmless
