"""Single-server membership changes: learners, promotion, removal, one change at a time."""

import pytest

from shoal.raft import codec
from shoal.raft.core import conf_at_end, force_new_cluster
from shoal.raft.types import (
    ConfChange,
    ConfChangeType,
    EntryType,
    MessageType,
    ProposalDropped,
    Role,
)
from tests.unit.raft.harness import Cluster

ADD_LEARNER, ADD_VOTER, REMOVE = ConfChangeType


def test_a_learner_catches_up_without_voting_then_is_promoted():
    c = Cluster((1, 2, 3))
    c.elect(1)
    for k in range(5):
        c.propose(1, f"v{k}")
    c.add_node(4)
    c.change(1, ADD_LEARNER, 4)
    c.tick_all(2)
    assert c.applied[4] == c.applied[1]
    assert c.cores[1].conf.learners == {4}
    assert 4 not in c.cores[1].conf.voters
    # a learner never campaigns
    c.tick(4, 100)
    assert c.cores[4].role is Role.FOLLOWER
    # and does not count towards commit: with 2 and 3 down nothing commits
    c.crash(2)
    c.crash(3)
    index = c.propose(1, "x")
    assert c.cores[1].log.committed < index
    c.start(2)
    c.start(3)
    c.tick_all(2)
    assert c.cores[1].log.committed >= index
    c.change(1, ADD_VOTER, 4)
    c.tick_all(1)
    assert all(core.conf.voters == {1, 2, 3, 4} for core in c.cores.values())
    assert not c.cores[1].prs[4].learner


def test_only_one_change_in_flight():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.isolate(2)
    c.isolate(3)  # nothing commits, so the first change stays pending
    c.cores[1].propose_conf_change(ConfChange(ADD_LEARNER, 4))
    with pytest.raises(ProposalDropped):
        c.cores[1].propose_conf_change(ConfChange(ADD_LEARNER, 5))
    c.heal()
    c.tick_all(1)
    c.change(1, ADD_LEARNER, 5)
    assert c.cores[1].conf.learners == {4, 5}


def test_a_new_leader_waits_for_its_no_op_before_a_change():
    c = Cluster((1, 2, 3))
    c.filter = lambda m: m.type is not MessageType.APP  # votes pass, appends do not
    c.elect(1)
    assert not c.cores[1].committed_in_term()
    with pytest.raises(ProposalDropped):
        c.cores[1].propose_conf_change(ConfChange(ADD_LEARNER, 4))
    c.filter = None
    c.tick_all(1)
    assert c.cores[1].committed_in_term()
    c.change(1, ADD_LEARNER, 4)


def test_invalid_changes_are_refused():
    c = Cluster((1, 2, 3))
    c.elect(1)
    with pytest.raises(ProposalDropped):
        c.cores[1].propose_conf_change(ConfChange(ADD_VOTER, 2))
    with pytest.raises(ProposalDropped):
        c.cores[1].propose_conf_change(ConfChange(REMOVE, 9))
    single = Cluster((1,))
    single.tick(1, 20)
    with pytest.raises(ProposalDropped):
        single.cores[1].propose_conf_change(ConfChange(REMOVE, 1))


def test_removed_follower_stops_campaigning():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.change(1, REMOVE, 3)
    c.tick_all(1)
    assert c.cores[3].removed
    assert c.cores[3].conf.voters == {1, 2}
    term = c.cores[3].term
    c.isolate(3)
    c.tick(3, 100)
    assert c.cores[3].term == term and c.cores[3].role is Role.FOLLOWER


def test_removing_a_dead_member_restores_the_quorum_margin():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.crash(3)
    c.change(1, REMOVE, 3)
    c.tick_all(1)
    assert c.cores[1].conf.voters == {1, 2}
    c.crash(2)  # 1 of 2 voters: no quorum, so check-quorum steps it down
    c.tick(1, (c.cfg.check_quorum_misses + 2) * c.cfg.election_tick)
    assert c.cores[1].role is not Role.LEADER


def test_removing_the_leader_hands_over_at_once():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.propose(1, "a")
    c.change(1, REMOVE, 1)
    assert c.cores[1].removed
    assert c.cores[1].role is Role.FOLLOWER
    new = c.leaders()
    assert len(new) == 1 and new[0] in (2, 3)  # TIMEOUT_NOW, no election timeout needed
    c.propose(new[0], "b")
    c.tick_all(1)
    for i in (2, 3):
        assert c.applied[i] == ["a", "b"]
    term = c.cores[1].term
    c.tick(1, 100)
    assert c.cores[1].role is Role.FOLLOWER and c.cores[1].term == term


def test_a_cluster_grows_from_one_to_three_and_survives_the_founder():
    c = Cluster((1,))
    c.tick(1, 20)
    for n in (2, 3):
        c.add_node(n)
        c.change(1, ADD_LEARNER, n)
        c.tick_all(1)
        c.change(1, ADD_VOTER, n)
        c.tick_all(1)
    c.propose(1, "x")
    c.crash(1)
    c.tick_all(40)
    assert len(c.leaders()) == 1
    new = c.leaders()[0]
    c.propose(new, "y")
    c.tick_all(1)
    assert c.applied[2] == c.applied[3] == ["x", "y"]


def test_conf_at_end_and_force_new_cluster():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.propose(1, "a")
    c.crash(2)
    c.crash(3)
    idx = c.cores[1].propose(b"uncommitted")
    c.settle()
    c.crash(1)
    st = c.storage[1].load()
    assert conf_at_end(st).voters == {1, 2, 3}
    forced = force_new_cluster(st, 1)
    assert conf_at_end(forced).voters == {1}
    assert forced.hard_state.commit == forced.entries[-1].index
    assert forced.hard_state.term == st.hard_state.term + 1
    tail = forced.entries[len(st.entries) :]
    assert [codec.decode_conf_change(e.data).node_id for e in tail] == [2, 3]
    assert all(e.type is EntryType.CONF_CHANGE for e in tail)
    c.storage[1].save(forced.hard_state, tail)
    c.start(1)
    c.settle()
    c.tick(1, 25)
    assert c.cores[1].role is Role.LEADER
    assert c.applied[1] == ["a", "uncommitted"]
    assert idx < forced.hard_state.commit
