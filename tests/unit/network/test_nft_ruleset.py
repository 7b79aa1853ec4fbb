import pytest

from shoal.network.nft_ruleset import render, render_delete
from shoal.network.routing import Backend, PortRoute, RoutingTable

A = Backend("198.18.0.1", 30001)
B = Backend("198.18.0.2", 30002)


def published_rule(text: str) -> str:
    lines = text.splitlines()
    i = lines.index("\tchain published {")
    return lines[i + 1].strip()


def test_replaces_the_whole_table_in_one_file() -> None:
    text = render(RoutingTable(), None, "shoal-n1").text
    head = text.splitlines()[:4]
    assert head == ["table ip shoal-n1 {", "}", "delete table ip shoal-n1", "table ip shoal-n1 {"]
    assert "type nat hook prerouting" in text
    assert "type nat hook output" in text
    assert "masquerade" in text


def test_round_robin_dnat_per_port() -> None:
    t = RoutingTable.of([PortRoute("tcp", 8080, "svc1", (B, A))])
    text = render(t, None).text
    assert (
        "meta l4proto tcp dnat ip to numgen inc mod 2 map "
        "{ 0 : 198.18.0.1 . 30001, 1 : 198.18.0.2 . 30002 }"
    ) in text
    assert 'comment "service svc1"' in text
    assert "tcp . 8080 : goto port-tcp-8080" in published_rule(text)


def test_all_addresses_means_local_ones_except_loopback() -> None:
    t = RoutingTable.of([PortRoute("tcp", 80, "s", (A,))])
    assert published_rule(render(t, None).text).startswith(
        "ip daddr != 127.0.0.0/8 fib daddr type local meta l4proto . th dport vmap"
    )


def test_explicit_addresses_become_a_set_without_loopback_or_ipv6() -> None:
    t = RoutingTable.of([PortRoute("udp", 53, "s", (A,))])
    text = render(t, ["198.18.0.3", "127.0.0.2", "::1", "198.18.0.4"]).text
    assert "elements = { 198.18.0.3, 198.18.0.4 }" in text
    assert published_rule(text).startswith("ip daddr @addresses meta l4proto . th dport vmap")
    assert "udp . 53 : goto port-udp-53" in text


def test_nothing_servable_leaves_the_published_chain_empty() -> None:
    t = RoutingTable.of([PortRoute("tcp", 80, "s", (A,))])
    assert published_rule(render(t, ["127.0.0.2"]).text) == "}"
    assert published_rule(render(RoutingTable(), None).text) == "}"


def test_a_port_without_backends_is_not_intercepted() -> None:
    t = RoutingTable.of([PortRoute("tcp", 80, "s", ()), PortRoute("tcp", 81, "s", (A,))])
    text = render(t, None).text
    assert "port-tcp-80 " not in text and "port-tcp-81" in text


def test_loopback_and_ipv6_backends_are_left_out_and_reported() -> None:
    t = RoutingTable.of(
        [PortRoute("tcp", 80, "s", (A, Backend("127.0.0.1", 5), Backend("::1", 6)))]
    )
    r = render(t, None)
    assert "numgen inc mod 1 map { 0 : 198.18.0.1 . 30001 }" in r.text
    assert r.errors == {
        "80/tcp": "backends on loopback or IPv6 addresses left out: 127.0.0.1:5, [::1]:6"
    }


def test_mark_is_set_and_matched() -> None:
    text = render(RoutingTable.of([PortRoute("tcp", 80, "s", (A,))]), None, mark=0x8000).text
    assert "meta mark set meta mark | 0x8000" in text
    assert 'meta mark & 0x8000 == 0x8000 oifname != "lo" masquerade' in text


@pytest.mark.parametrize("name", ["", "a b", "x;flush ruleset", "9abc", "a" * 40])
def test_bad_table_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        render(RoutingTable(), None, name)
    with pytest.raises(ValueError):
        render_delete(name)


def test_service_ids_cannot_break_out_of_the_comment() -> None:
    t = RoutingTable.of([PortRoute("tcp", 80, 'x" ; flush ruleset ; "', (A,))])
    text = render(t, None).text
    assert "flush ruleset" not in text.replace("_flush_ruleset_", "")
