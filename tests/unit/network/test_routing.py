import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.network.routing import Backend, PortRoute, RoutingTable, diff_tables

A = Backend("10.0.0.1", 30001)
B = Backend("10.0.0.2", 30002)
C = Backend("10.0.0.3", 30003)


def test_backends_are_a_set_kept_sorted() -> None:
    r = PortRoute("tcp", 8080, "svc", (C, A, C, B))
    assert r.backends == (A, B, C)
    assert r == PortRoute("tcp", 8080, "svc", (B, C, A))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"protocol": "sctp", "port": 80},
        {"protocol": "tcp", "port": 0},
        {"protocol": "tcp", "port": 65536},
    ],
)
def test_route_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        PortRoute(service_id="s", **kwargs)


def test_backend_rejects_names_and_bad_ports() -> None:
    with pytest.raises(ValueError):
        Backend("example.com", 80)
    with pytest.raises(ValueError):
        Backend("10.0.0.1", 0)
    assert str(Backend("::1", 80)) == "[::1]:80"


def test_a_port_published_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="8080/tcp"):
        RoutingTable.of([PortRoute("tcp", 8080, "a"), PortRoute("tcp", 8080, "b")])


def test_same_port_number_on_tcp_and_udp_are_two_routes() -> None:
    t = RoutingTable.of([PortRoute("udp", 53, "a"), PortRoute("tcp", 53, "a")])
    assert len(t) == 2
    assert [r.protocol for r in t] == ["tcp", "udp"]


def test_diff_adds_changes_and_removes() -> None:
    old = RoutingTable.of(
        [
            PortRoute("tcp", 80, "web", (A, B)),
            PortRoute("tcp", 81, "api", (A,)),
            PortRoute("udp", 53, "dns", (C,)),
        ]
    )
    new = RoutingTable.of(
        [
            PortRoute("tcp", 80, "web", (B, A)),  # same set: unchanged
            PortRoute("tcp", 81, "api", (A, C)),
            PortRoute("tcp", 82, "new", (B,)),
        ]
    )
    d = diff_tables(old, new)
    assert [r.port for r in d.added] == [82]
    assert [r.port for r in d.removed] == [53]
    assert [(o.backends, n.backends) for o, n in d.changed] == [((A,), (A, C))]
    assert diff_tables(new, new).empty


def test_a_change_of_service_is_a_change() -> None:
    old = RoutingTable.of([PortRoute("tcp", 80, "a", (A,))])
    new = RoutingTable.of([PortRoute("tcp", 80, "b", (A,))])
    assert len(diff_tables(old, new).changed) == 1


def test_json_round_trip() -> None:
    t = RoutingTable.of([PortRoute("tcp", 80, "web", (A, B)), PortRoute("udp", 53, "d", ())])
    assert RoutingTable.from_json(t.to_json()) == t


backends = st.builds(
    Backend,
    st.sampled_from(["10.0.0.1", "10.0.0.2", "127.0.0.1", "::1"]),
    st.integers(1, 4),
)
routes = st.builds(
    PortRoute,
    st.sampled_from(["tcp", "udp"]),
    st.integers(1, 5),
    st.sampled_from(["s1", "s2"]),
    st.lists(backends, max_size=4).map(tuple),
)
tables = st.lists(routes, max_size=6).map(
    lambda rs: RoutingTable.of({r.key: r for r in rs}.values())
)


@given(tables, tables)
def test_applying_a_diff_to_the_old_table_gives_the_new(old: RoutingTable, new: RoutingTable):
    d = diff_tables(old, new)
    result = dict(old.routes)
    for r in d.removed:
        del result[r.key]
    for o, n in d.changed:
        assert result[o.key] == o
        result[n.key] = n
    for r in d.added:
        assert r.key not in result
        result[r.key] = r
    assert RoutingTable.of(result.values()) == new
    assert diff_tables(old, new).empty == (old == new)
