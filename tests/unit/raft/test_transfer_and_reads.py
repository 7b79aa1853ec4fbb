"""Leadership transfer (TIMEOUT_NOW) and linearizable reads (ReadIndex)."""

import pytest

from shoal.raft.types import MessageType, NotLeader, ProposalDropped, ReadState, Role
from tests.unit.raft.harness import Cluster


def test_transfer_to_an_up_to_date_follower_is_immediate():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.propose(1, "a")
    c.cores[1].transfer_leadership(3)
    c.settle()
    assert c.leaders() == [3]
    assert c.cores[1].leader == 3
    c.propose(3, "b")
    c.tick_all(1)
    assert c.applied[1] == ["a", "b"]


def test_transfer_to_a_lagging_follower_catches_it_up_first():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.isolate(3)
    for k in range(5):
        c.propose(1, f"v{k}")
    c.heal()
    c.cores[1].transfer_leadership(3)
    with pytest.raises(ProposalDropped):
        c.cores[1].propose(b"during")
    c.settle()
    assert c.leaders() == [3]
    assert c.cores[3].log.term(c.cores[3].log.last_index()) == c.cores[3].term


def test_transfer_to_an_unreachable_follower_times_out():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.isolate(3)
    c.cores[1].transfer_leadership(3)
    c.settle()
    c.tick(1, c.cfg.election_tick)
    assert c.cores[1].lead_transferee == 0
    c.propose(1, "after")  # accepted again


def test_transfer_needs_a_leader_and_a_voter():
    c = Cluster((1, 2, 3))
    c.elect(1)
    with pytest.raises(NotLeader):
        c.cores[2].transfer_leadership(3)
    with pytest.raises(ProposalDropped):
        c.cores[1].transfer_leadership(9)


def test_transfer_campaign_overrides_follower_leases():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.tick_all(1)  # every follower just heard from the leader: in lease
    c.cores[1].transfer_leadership(2)
    c.settle()
    assert c.leaders() == [2]


def test_best_transferee_is_a_live_up_to_date_voter():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.crash(3)
    c.propose(1, "a")
    c.tick_all(c.cfg.election_tick)
    assert c.cores[1].best_transferee() == 2
    assert c.cores[1].reachable(2) is True
    assert c.cores[1].reachable(3) is False
    assert c.cores[2].reachable(1) is None


def test_leader_read_index_confirms_leadership_first():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.propose(1, "a")
    c.filter = lambda m: m.type is not MessageType.HEARTBEAT_RESP
    c.cores[1].read_index(42)
    c.settle()
    assert c.read_states[1] == []  # no quorum has confirmed yet
    c.filter = None
    c.tick_all(1)
    assert c.read_states[1] == [ReadState(42, c.cores[1].log.committed)]


def test_follower_read_index_goes_through_the_leader():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.propose(1, "a")
    c.cores[3].read_index(7)
    c.settle()
    assert c.read_states[3] == [ReadState(7, c.cores[1].log.committed)]


def test_an_isolated_leader_cannot_serve_reads():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.propose(1, "a")
    c.isolate(1)
    c.cores[1].read_index(1)
    c.settle()
    # Check quorum's election timeouts unheard: it steps down, having served no read.
    c.tick(1, (c.cfg.check_quorum_misses + 1) * c.cfg.election_tick)
    assert c.cores[1].role is not Role.LEADER
    assert c.read_states[1] == []


def test_a_new_leader_defers_reads_until_its_no_op_commits():
    c = Cluster((1, 2, 3))
    c.filter = lambda m: m.type is not MessageType.APP
    c.elect(1)
    c.cores[1].read_index(5)
    c.settle()
    assert c.read_states[1] == []
    c.filter = None
    c.tick_all(2)
    assert c.read_states[1] == [ReadState(5, c.cores[1].log.committed)]


def test_read_index_without_a_leader_fails_fast():
    c = Cluster((1, 2, 3))
    with pytest.raises(NotLeader):
        c.cores[1].read_index(1)


def test_single_voter_reads_at_once():
    c = Cluster((1,))
    c.tick(1, 20)
    c.cores[1].read_index(3)
    c.settle()
    assert c.read_states[1] == [ReadState(3, c.cores[1].log.committed)]
