from ipaddress import ip_address

import pytest

from shoal.network.dns.records import (
    NetworkRecords,
    ServiceEntry,
    TaskEntry,
    lookup_address,
    lookup_name,
    parse_address,
)


def ips(*texts: str) -> tuple:
    return tuple(ip_address(t) for t in texts)


FRONT = NetworkRecords.build(
    "front",
    [
        ServiceEntry(
            "web",
            "vip",
            "10.0.1.2/24",
            aliases=("www",),
            tasks=(
                TaskEntry("web.1.aaa", "10.0.1.3/24", aliases=("web-one",)),
                TaskEntry("web.2.bbb", "10.0.1.4/24"),
            ),
        ),
        ServiceEntry(
            "db",
            "dnsrr",
            aliases=("Store",),
            tasks=(TaskEntry("db.1.ccc", "10.0.1.5"), TaskEntry("db.2.ddd", "10.0.1.6")),
        ),
        ServiceEntry("idle", "vip", "10.0.1.7"),
        ServiceEntry("gone", "dnsrr"),
        ServiceEntry("fresh", "vip", None, tasks=(TaskEntry("fresh.1.eee", "10.0.1.8"),)),
    ],
)
BACK = NetworkRecords.build(
    "Back",
    [
        ServiceEntry("web", "vip", "10.0.2.2/24", tasks=(TaskEntry("web.1.aaa", "10.0.2.3"),)),
        ServiceEntry("api", "vip", "10.0.2.9", tasks=(TaskEntry("api.1.fff", "10.0.2.10"),)),
    ],
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web", ips("10.0.1.2")),  # vip mode: the VIP only
        ("tasks.web", ips("10.0.1.3", "10.0.1.4")),
        ("www", ips("10.0.1.2")),  # a service alias answers as the service does
        ("tasks.www", ips("10.0.1.3", "10.0.1.4")),
        ("db", ips("10.0.1.5", "10.0.1.6")),  # dnsrr: every task
        ("tasks.db", ips("10.0.1.5", "10.0.1.6")),
        ("store", ips("10.0.1.5", "10.0.1.6")),
        ("web.1.aaa", ips("10.0.1.3")),
        ("web-one", ips("10.0.1.3")),  # a task alias: that task
        ("fresh", ips("10.0.1.8")),  # vip mode without a VIP yet: round robin, as Docker
        ("idle", ips("10.0.1.7")),  # a VIP answers even with no task behind it
        ("tasks.idle", ()),  # ours, with no running task
        ("gone", ()),
    ],
)
def test_names_of_one_network(name: str, expected: tuple) -> None:
    assert lookup_name([FRONT], name) == expected


@pytest.mark.parametrize("name", ["WEB", "Tasks.Web", "web.", "TASKS.WEB.", "STORE", "Web.1.AAA"])
def test_names_are_case_insensitive_with_optional_trailing_dot(name: str) -> None:
    assert lookup_name([FRONT], name) == lookup_name([FRONT], name.rstrip(".").lower())
    assert lookup_name([FRONT], name)


@pytest.mark.parametrize("name", ["nginx", "tasks", "tasks.nope", "web.svc.cluster.local", ""])
def test_other_names_are_not_ours(name: str) -> None:
    assert lookup_name([FRONT, BACK], name) is None


def test_a_name_claimed_twice_on_a_network_has_both_addresses() -> None:
    net = NetworkRecords.build(
        "n",
        [
            ServiceEntry("cache", "vip", "10.0.3.2", tasks=(TaskEntry("cache.1.x", "10.0.3.3"),)),
            # a task of another service whose alias is "cache"
            ServiceEntry(
                "other", "vip", "10.0.3.4", tasks=(TaskEntry("o.1.y", "10.0.3.5", ("cache",)),)
            ),
        ],
    )
    assert lookup_name([net], "cache") == ips("10.0.3.2", "10.0.3.5")


def test_the_first_of_the_askers_networks_that_knows_a_name_answers() -> None:
    assert lookup_name([FRONT, BACK], "web") == ips("10.0.1.2")
    assert lookup_name([BACK, FRONT], "web") == ips("10.0.2.2")
    # names only one network has are found whatever the order
    assert lookup_name([FRONT, BACK], "api") == ips("10.0.2.9")
    assert lookup_name([BACK, FRONT], "db") == ips("10.0.1.5", "10.0.1.6")


def test_a_name_qualified_with_a_network_asks_that_network() -> None:
    assert lookup_name([FRONT, BACK], "web.back") == ips("10.0.2.2")
    assert lookup_name([FRONT, BACK], "tasks.web.BACK.") == ips("10.0.2.3")
    assert lookup_name([FRONT, BACK], "web.1.aaa.front") == ips("10.0.1.3")
    # only the asker's networks: a task on front alone does not see back's names
    assert lookup_name([FRONT], "web.back") is None
    assert lookup_name([FRONT], "api") is None


def test_a_client_on_no_network_knows_no_name() -> None:
    assert lookup_name([], "web") is None


def test_pointers_name_tasks_and_vips_with_their_network() -> None:
    assert lookup_address([FRONT, BACK], ip_address("10.0.1.3")) == "web.1.aaa.front"
    assert lookup_address([FRONT, BACK], ip_address("10.0.1.2")) == "web.front"
    assert lookup_address([FRONT, BACK], ip_address("10.0.2.2")) == "web.Back"
    assert lookup_address([FRONT, BACK], ip_address("10.0.2.10")) == "api.1.fff.Back"
    assert lookup_address([FRONT], ip_address("10.0.2.10")) is None
    assert lookup_address([FRONT], ip_address("192.0.2.1")) is None


def test_ipv6_addresses() -> None:
    net = NetworkRecords.build(
        "v6", [ServiceEntry("s", "dnsrr", tasks=(TaskEntry("s.1.a", "fd00::3/64"),))]
    )
    assert lookup_name([net], "s") == ips("fd00::3")
    assert lookup_address([net], ip_address("fd00::3")) == "s.1.a.v6"


def test_unknown_endpoint_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="endpoint mode"):
        ServiceEntry("s", "ipvs")  # type: ignore[arg-type]


def test_bad_address_is_refused() -> None:
    with pytest.raises(ValueError):
        NetworkRecords.build("n", [ServiceEntry("s", "vip", "not-an-ip")])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.1.3", "10.0.1.3"),
        ("10.0.1.3/24", "10.0.1.3"),
        ("fd00::3", "fd00::3"),
        ("fd00::3/64", "fd00::3"),
    ],
)
def test_parse_address(text: str, expected: str) -> None:
    assert parse_address(text) == ip_address(expected)


@pytest.mark.parametrize("text", ["", "web", "10.0.1", "10.0.1.256", "/24", "fd00::g"])
def test_parse_address_refuses_what_is_no_address(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)
