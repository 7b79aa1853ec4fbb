import pytest

from shoal.network.overlay.vip_ruleset import render, render_delete


def test_round_robin_over_sorted_backends_keeping_the_port() -> None:
    text = render("n1_vip", {"10.0.1.2": ["10.0.1.10", "10.0.1.9"]})
    assert text.splitlines()[:4] == [
        "table ip n1_vip {", "}", "delete table ip n1_vip", "table ip n1_vip {",
    ]  # fmt: skip
    assert "ip daddr vmap { 10.0.1.2 : goto vip-0a000102 }" in text
    assert "dnat to numgen inc mod 2 map { 0 : 10.0.1.9, 1 : 10.0.1.10 }" in text
    assert "type nat hook output priority -100" in text
    assert "reject" not in text


def test_equal_sets_render_alike() -> None:
    a = render("t", {"10.0.1.2": ["10.0.1.3", "10.0.1.4"], "10.0.2.2": ["10.0.2.5"]})
    b = render("t", {"10.0.2.2": ["10.0.2.5"], "10.0.1.2": ["10.0.1.4", "10.0.1.3", "10.0.1.4"]})
    assert a == b


def test_a_vip_without_backends_refuses() -> None:
    text = render("t", {"10.0.1.2": [], "10.0.1.5": ["10.0.1.6"], "10.0.1.7": []})
    assert "ip daddr vmap { 10.0.1.5 : goto vip-0a000105 }" in text
    assert "type filter hook output priority filter" in text
    assert "ip daddr { 10.0.1.2, 10.0.1.7 } meta l4proto tcp reject with tcp reset" in text
    assert "ip daddr { 10.0.1.2, 10.0.1.7 } reject" in text


def test_no_vips_is_an_empty_table() -> None:
    text = render("t", {})
    assert "vmap" not in text and "chain output" in text


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        render("bad name", {})
    with pytest.raises(ValueError):
        render("t", {"10.0.1.2": ["not-an-address"]})
    assert render_delete("t") == "table ip t {\n}\ndelete table ip t\n"
