from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from shoal.network.balancer import Balancer
from shoal.network.routing import Backend

A, B, C = (Backend(f"10.0.0.{i}", 80) for i in (1, 2, 3))


def test_round_robin_spreads_successive_connections() -> None:
    bal = Balancer([C, A, B])
    picks = [bal.pick(now=0.0) for _ in range(30)]
    assert Counter(picks) == {A: 10, B: 10, C: 10}
    assert picks[:3] == [A, B, C]


def test_candidates_list_every_backend_once_starting_with_the_pick() -> None:
    bal = Balancer([A, B, C])
    assert bal.candidates(0.0) == [A, B, C]
    assert bal.candidates(0.0) == [B, C, A]


def test_no_backends() -> None:
    bal = Balancer()
    assert bal.pick(0.0) is None
    assert bal.candidates(0.0) == []


def test_a_refusing_backend_goes_last_for_the_penalty_then_returns() -> None:
    bal = Balancer([A, B, C], penalty=2.0)
    bal.mark_refused(A, now=10.0)
    assert bal.candidates(10.5) == [B, C, A]
    assert bal.candidates(11.0) == [B, C, A]  # the rotation moved on to B anyway
    assert bal.candidates(12.0) == [C, A, B]  # penalty over: A back in its place


def test_most_recent_refusal_is_tried_last() -> None:
    bal = Balancer([A, B, C], penalty=5.0)
    bal.mark_refused(B, now=1.0)
    bal.mark_refused(A, now=2.0)
    assert bal.candidates(2.0) == [C, B, A]


def test_success_clears_a_refusal() -> None:
    bal = Balancer([A, B], penalty=5.0)
    bal.mark_refused(A, 0.0)
    bal.mark_ok(A)
    assert bal.candidates(0.0) == [A, B]


def test_changing_backends_keeps_rotation_and_forgets_removed_refusals() -> None:
    bal = Balancer([A, B, C])
    bal.pick(0.0)
    bal.mark_refused(C, 0.0)
    bal.set_backends([A, B])
    assert bal.candidates(0.0) == [B, A]
    bal.set_backends([A, B, C])
    assert bal.candidates(0.0) == [A, B, C]
    assert bal.candidates(0.0) == [B, C, A]
    assert bal.candidates(0.0) == [C, A, B]  # its old refusal was forgotten


@given(
    st.lists(st.sampled_from([A, B, C]), min_size=1, unique=True),
    st.lists(st.tuples(st.sampled_from([A, B, C]), st.floats(0, 10)), max_size=5),
    st.floats(0, 20),
)
def test_candidates_are_always_a_permutation(backends, refusals, now) -> None:
    bal = Balancer(backends, penalty=3.0)
    for b, t in refusals:
        bal.mark_refused(b, t)
    for _ in range(4):
        cands = bal.candidates(now)
        assert sorted(cands) == sorted(backends)
