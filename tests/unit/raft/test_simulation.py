"""A fixed set of seeds of the raft simulation (see simulate.py), every run checked for
safety, linearizability and liveness. More seeds: SHOAL_RAFT_SEEDS=5000 (and
SHOAL_RAFT_SEED_START), or `python -m tests.unit.raft.simulate --seeds 5000 --jobs 2`."""

import os

import pytest

from tests.unit.raft.simulate import Params, Simulation, run_seed

START = int(os.environ.get("SHOAL_RAFT_SEED_START", "0"))
COUNT = int(os.environ.get("SHOAL_RAFT_SEEDS", "300"))


@pytest.mark.parametrize("seed", range(START, START + COUNT))
def test_seed(seed):
    run_seed(seed)


def test_removed_members_cannot_keep_a_cluster_from_electing():
    """Seed 1585 (beyond the range above) once failed liveness: without pre-vote, a member
    removed during the chaos answered a leader's heartbeat, replayed long after, at its
    higher term, deposed the leader, and with two other removed members kept every election
    from finishing. Their messages are turned away now, as shoal's RaftService does."""
    stats = run_seed(1585)
    assert stats["refused_removed"] > 0


def test_a_seed_reproduces_exactly():
    a, b = Simulation(42, trace_all=True), Simulation(42, trace_all=True)
    a.run()
    b.run()
    assert a.trace_lines == b.trace_lines
    assert a.history == b.history


def test_seeds_cover_the_fault_space():
    """The draw of parameters reaches every kind of run (a guard against a refactoring that
    quietly narrows what the suite explores)."""
    import random

    drawn = [Params.draw(random.Random(s)) for s in range(START, START + COUNT)]
    assert {p.n for p in drawn} == {3, 5}
    for attr in ("partitions", "crashes", "membership", "transfers", "pre_vote", "check_quorum"):
        assert {getattr(p, attr) for p in drawn} == {True, False}, attr
    assert any(p.drop > 0.1 for p in drawn) and any(p.dup > 0 for p in drawn)
    assert any(p.snapshot_interval < 10 for p in drawn)
    assert any(p.max_size == 1 for p in drawn)
