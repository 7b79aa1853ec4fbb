"""A leader whose event loop is held up for longer than an election timeout keeps its
leadership (a thread sends its heartbeats, issue 15); one held up for longer than the
stand-in's limit loses it, as a wedged leader must. Three real replicas, each on an event
loop of its own, over mutual TLS; raft's default timing (election timeout 1 to 2 s)."""

import time

import pytest

from shoal.raft.types import RaftConfig
from tests.integration.threaded_managers import (
    leaders,
    start_managers,
    stop_managers,
    wait_agreed_leader,
)

STALL = 3.0  # seconds: longer than the longest election timeout (2 s)


@pytest.fixture
def managers(tmp_path):
    ms = start_managers(tmp_path, RaftConfig(stand_in_limit=10.0))
    try:
        yield ms
    finally:
        stop_managers(ms)


def test_a_held_up_leader_keeps_leading_and_a_wedged_one_is_replaced(managers) -> None:
    leader_id = wait_agreed_leader(managers)
    leader = next(m for m in managers if m.replica.raft_id == leader_id)
    term = leader.term

    leader.stall(STALL)
    time.sleep(STALL + 0.5)
    assert leaders(managers) == {leader_id}
    assert {m.term for m in managers} == {term}
    stand_in = leader.replica.stand_in
    assert stand_in is not None and stand_in.beats.sent > 0

    # Held up for longer than the stand-in's limit: it stops, the others elect a leader.
    stand_in.beats.give_up_after = 0.5
    leader.stall(STALL)
    time.sleep(STALL + 0.5)
    new_leader = wait_agreed_leader(managers)
    assert new_leader != leader_id
    assert {m.term for m in managers} != {term}
