"""The checker itself: it must accept linearizable histories and catch the classic
anomalies, or the simulation's verdicts mean nothing."""

import pytest

from tests.unit.raft.linearizability import NotLinearizable, Op, check


def w(c, v, a, b, key="k"):
    return Op(c, "w", key, v, a, b)


def r(c, v, a, b, key="k"):
    return Op(c, "r", key, v, a, b)


def test_sequential_history():
    check([w(1, "a", 0, 1), r(2, "a", 2, 3), w(1, "b", 4, 5), r(2, "b", 6, 7)])


def test_concurrent_read_may_see_either_value():
    check([w(1, "a", 0, 1), w(1, "b", 2, 6), r(2, "a", 3, 4), r(3, "b", 3, 5)])


def test_stale_read_is_caught():
    with pytest.raises(NotLinearizable):
        check([w(1, "a", 0, 1), w(1, "b", 2, 3), r(2, "a", 4, 5)])


def test_read_of_initial_value_after_a_write_is_caught():
    with pytest.raises(NotLinearizable):
        check([w(1, "a", 0, 1), r(2, None, 2, 3)])


def test_reads_must_not_go_back_in_time():
    # b overlaps both reads, but once one read saw b, a later read cannot see a
    with pytest.raises(NotLinearizable):
        check([w(1, "a", 0, 1), w(1, "b", 2, 10), r(2, "b", 3, 4), r(3, "a", 5, 6)])


def test_lost_acknowledged_write_is_caught():
    with pytest.raises(NotLinearizable):
        check([w(1, "a", 0, 1), w(2, "b", 2, 3), r(3, "a", 4, 5)])


def test_unknown_write_may_take_effect_late_or_never():
    check([w(1, "a", 0, None), r(2, None, 1, 2), r(2, "a", 10, 11)])
    check([w(1, "a", 0, None), r(2, None, 1, 2), r(2, None, 10, 11)])


def test_unknown_write_cannot_take_effect_before_it_was_invoked():
    with pytest.raises(NotLinearizable):
        check([r(2, "a", 0, 1), w(1, "a", 5, None)])


def test_keys_are_independent():
    check([w(1, "a", 0, 1, "x"), w(1, "b", 2, 3, "y"), r(2, "a", 4, 5, "x"), r(2, "b", 4, 5, "y")])
    with pytest.raises(NotLinearizable):
        check([w(1, "a", 0, 1, "x"), r(2, "a", 2, 3, "y")])


def test_many_concurrent_clients_stay_tractable():
    ops = []
    t = 0.0
    for i in range(60):
        ops.append(w(i % 5, f"v{i}", t, t + 3))
        ops.append(r((i + 1) % 5, f"v{i}", t + 2.5, t + 4))
        t += 1
    check(ops)
