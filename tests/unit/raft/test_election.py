"""Leader election: timeouts, votes, pre-vote, check-quorum and leases."""

import random

from shoal.raft.core import Core, bootstrap
from shoal.raft.types import Message, MessageType, Role
from tests.unit.raft.harness import Cluster, config


def test_bootstrap_applies_the_founding_configuration():
    c = Cluster((1, 2, 3))
    for core in c.cores.values():
        assert core.conf.voters == {1, 2, 3}
        assert core.term == 1
        assert core.role is Role.FOLLOWER


def test_campaign_wins_and_others_follow():
    c = Cluster((1, 2, 3))
    c.elect(1)
    assert c.cores[1].term == 2
    for i in (2, 3):
        assert c.cores[i].leader == 1
        assert c.cores[i].term == 2
    # the leader's no-op of its term is committed everywhere
    for core in c.cores.values():
        assert core.log.committed == 4
        assert core.log.entry(4).term == 2
        assert core.log.entry(4).data == b""


def test_ticking_elects_exactly_one_leader():
    for seed in range(20):
        c = Cluster((1, 2, 3, 4, 5), seed=seed)
        c.tick_all(25)
        assert len(c.leaders()) == 1, seed
        lead = c.leader()
        assert all(core.leader == lead for core in c.cores.values())


def test_randomized_timeout_within_one_to_two_election_timeouts():
    core = Core(1, config(), random.Random(7), bootstrap({1: b"", 2: b"", 3: b""}))
    seen = set()
    for _ in range(200):
        core._reset(core.term)
        seen.add(core.randomized_timeout)
    assert seen == set(range(10, 20))


def test_single_voter_elects_itself():
    c = Cluster((1,))
    c.tick(1, 20)
    assert c.cores[1].role is Role.LEADER
    c.propose(1, "x")
    assert c.applied[1] == ["x"]


def test_vote_refused_to_a_candidate_with_a_stale_log():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.isolate(3)
    c.propose(1, "a")
    c.heal()
    c.cores[1].step(Message(MessageType.HEARTBEAT, 1, 2, term=99))  # depose 1 quietly
    c.cores[3].campaign()
    c.settle()
    assert c.cores[3].role is not Role.LEADER


def test_candidate_rejected_by_a_quorum_steps_back():
    c = Cluster((1, 2, 3), cfg=config(pre_vote=False, check_quorum=False))
    c.elect(1)
    c.isolate(3)
    c.propose(1, "a")
    c.heal()
    c.cores[3].campaign()  # term 3, stale log: both refuse
    c.settle()
    assert c.cores[3].role is Role.FOLLOWER
    assert c.cores[3].term == 3


def test_pre_vote_keeps_an_isolated_node_from_inflating_its_term():
    c = Cluster((1, 2, 3))
    c.elect(1)
    term = c.cores[1].term
    c.isolate(3)
    for _ in range(100):
        c.tick_all()
    assert c.cores[3].term == term
    assert c.cores[3].role is Role.PRE_CANDIDATE
    c.heal()
    c.tick_all(3)
    assert c.cores[1].role is Role.LEADER
    assert c.cores[1].term == term
    assert c.cores[3].leader == 1


def test_without_pre_vote_a_rejoining_node_disrupts_the_leader():
    # The counterpart of the test above: shows what pre-vote protects against.
    c = Cluster((1, 2, 3), cfg=config(pre_vote=False, check_quorum=False))
    c.elect(1)
    c.isolate(3)
    c.tick(3, 100)
    assert c.cores[3].term > c.cores[1].term
    c.heal()
    c.tick_all(25)
    assert c.cores[1].term > 2  # the leader was deposed by 3's next election


def test_check_quorum_makes_an_isolated_leader_step_down():
    c = Cluster((1, 2, 3))
    misses = c.cfg.check_quorum_misses
    assert misses > 1
    c.elect(1)
    c.isolate(1)
    c.tick(1, c.cfg.election_tick)  # heard in the first period: still leader
    assert c.cores[1].role is Role.LEADER
    # Periods unheard, one fewer than it takes: a held-up leader's answers may come late.
    c.tick(1, (misses - 1) * c.cfg.election_tick)
    assert c.cores[1].role is Role.LEADER
    c.tick(1, c.cfg.election_tick)  # ``misses`` in a row
    assert c.cores[1].role is Role.FOLLOWER
    assert c.cores[1].leader == 0
    assert "check quorum" in c.cores[1].stepped_down
    assert f"in {misses} election timeouts" in c.cores[1].stepped_down


def test_a_leader_heard_from_again_after_silent_periods_keeps_leading():
    c = Cluster((1, 2, 3))
    misses = c.cfg.check_quorum_misses
    c.elect(1)
    c.isolate(1)
    for _ in range(misses * c.cfg.election_tick):  # until all but one period passed unheard
        c.tick(1)
        if c.cores[1]._quorum_misses == misses - 1:
            break
    assert c.cores[1]._quorum_misses == misses - 1
    assert c.cores[1].role is Role.LEADER
    c.heal()
    c.tick_all(2 * c.cfg.election_tick)  # heard again: the count starts over
    assert c.cores[1]._quorum_misses == 0
    c.isolate(1)
    c.tick(1, c.cfg.election_tick)
    assert c.cores[1].role is Role.LEADER
    c.tick(1, misses * c.cfg.election_tick)
    assert c.cores[1].role is Role.FOLLOWER


def test_without_check_quorum_an_isolated_leader_stays():
    c = Cluster((1, 2, 3), cfg=config(check_quorum=False))
    c.elect(1)
    c.isolate(1)
    c.tick(1, 100)
    assert c.cores[1].role is Role.LEADER


def test_majority_side_elects_a_new_leader_and_old_one_rejoins_as_follower():
    c = Cluster((1, 2, 3, 4, 5))
    c.elect(1)
    c.partition((1, 2), (3, 4, 5))
    c.tick_all((c.cfg.check_quorum_misses + 2) * c.cfg.election_tick)
    new = [i for i in (3, 4, 5) if c.cores[i].role is Role.LEADER]
    assert len(new) == 1
    assert c.cores[1].role is not Role.LEADER  # check-quorum
    c.heal()
    c.tick_all(5)
    assert c.leaders() == new
    assert all(core.leader == new[0] for core in c.cores.values())


def test_follower_in_lease_ignores_a_higher_term_vote_request():
    c = Cluster((1, 2, 3))
    c.elect(1)
    term = c.cores[2].term
    c.cores[2].step(Message(MessageType.VOTE, 2, 3, term=term + 5, index=100, log_term=term + 4))
    assert c.cores[2].term == term
    assert not [m for m in c.cores[2].msgs if m.type is MessageType.VOTE_RESP]


def test_stale_leader_learns_the_new_term_from_a_follower():
    # Without check-quorum 1 keeps leading in isolation, and 3 grants votes at once.
    c = Cluster((1, 2, 3), cfg=config(check_quorum=False))
    c.elect(1)
    c.isolate(1)
    c.elect(2)
    assert c.cores[1].role is Role.LEADER  # it does not know yet
    c.heal()
    c.tick(1, 1)  # its heartbeat is answered at the higher term
    assert c.cores[1].role is Role.FOLLOWER
    assert c.cores[1].term == c.cores[2].term
    assert c.leaders() == [2]


def test_one_vote_per_term():
    c = Cluster((1, 2, 3), cfg=config(pre_vote=False))
    core = c.cores[3]
    t = core.term + 1
    core.step(Message(MessageType.VOTE, 3, 1, term=t, index=10, log_term=5))
    core.step(Message(MessageType.VOTE, 3, 2, term=t, index=10, log_term=5))
    resps = [m for m in core.msgs if m.type is MessageType.VOTE_RESP]
    assert [(m.to, m.reject) for m in resps] == [(1, False), (2, True)]
    assert core.vote == 1
    # a repeated request from the same candidate is granted again (lost response)
    core.step(Message(MessageType.VOTE, 3, 1, term=t, index=10, log_term=5))
    assert core.msgs[-1].reject is False


def test_pre_vote_grant_changes_neither_term_nor_vote():
    c = Cluster((1, 2, 3))
    core = c.cores[3]
    t = core.term
    core.step(Message(MessageType.PRE_VOTE, 3, 1, term=t + 1, index=10, log_term=5))
    assert core.term == t and core.vote == 0
    resp = core.msgs[-1]
    assert resp.type is MessageType.PRE_VOTE_RESP and not resp.reject and resp.term == t + 1


def test_a_vote_survives_a_restart():
    c = Cluster((1, 2, 3), cfg=config(pre_vote=False))
    t = c.cores[3].term + 1
    c.cores[3].step(Message(MessageType.VOTE, 3, 1, term=t, index=10, log_term=5))
    c.flush(3)  # persisted, and the grant sent
    c.crash(3)
    c.start(3)
    c.settle()
    core = c.cores[3]
    assert (core.term, core.vote) == (t, 1)
    core.step(Message(MessageType.VOTE, 3, 2, term=t, index=10, log_term=5))
    assert core.msgs[-1].type is MessageType.VOTE_RESP and core.msgs[-1].reject


def test_a_refused_stale_candidate_does_not_restart_the_election_timer():
    # Without pre-vote a candidate too stale to win still bumps terms; if that restarted
    # everyone's timer, the nodes that could win might never time out first.
    c = Cluster((1, 2, 3), cfg=config(pre_vote=False, check_quorum=False))
    c.elect(1)
    c.isolate(3)
    c.propose(1, "a")
    c.crash(1)
    c.heal()
    c.tick(2, 5)
    before = c.cores[2].election_elapsed
    c.campaign(3)
    assert c.cores[2].term == c.cores[3].term  # it took the new term ...
    assert c.cores[2].vote == 0  # ... refused the vote ...
    assert c.cores[2].election_elapsed == before  # ... and kept counting
    c.tick(2, 25)
    assert c.cores[2].role is Role.LEADER


def test_a_leader_says_why_it_stopped_leading_only_when_it_did():
    c = Cluster((1, 2, 3))
    c.elect(1)
    term = c.cores[1].term
    # A pre-vote of a later term, ignored within the lease: still leading, nothing to say.
    c.cores[1].step(Message(MessageType.PRE_VOTE, 1, 3, term=term + 1, index=100, log_term=term))
    assert c.cores[1].role is Role.LEADER
    assert c.cores[1].stepped_down == ""
    c.cores[1].step(Message(MessageType.HEARTBEAT, 1, 2, term=term + 1))
    assert c.cores[1].role is Role.FOLLOWER
    assert "later term" in c.cores[1].stepped_down


def test_a_pre_vote_ignored_within_the_lease_is_answered_when_the_lease_ends():
    # The leader dies. 2 times out first and asks 3, which still holds the dead leader's
    # lease and ignores it. When 3's lease ends it answers, and 2 wins then, not at its next
    # election timeout (issue 15).
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.crash(1)
    for i in (2, 3):
        c.cores[i].randomized_timeout = 19  # neither times out (again) during the test
    c.campaign(2)
    assert c.cores[2].role is Role.PRE_CANDIDATE
    c.tick(3, 9)
    assert c.cores[2].role is Role.PRE_CANDIDATE  # 3 is still within its lease
    c.tick(3, 1)
    assert c.leaders() == [2]
    assert c.cores[3].leader == 2 and c.cores[3].role is Role.FOLLOWER


def test_a_pre_vote_ignored_within_the_lease_is_answered_once_and_not_if_moot():
    c = Cluster((1, 2, 3))
    c.elect(1)
    term = c.cores[3].term
    # Asked within the lease by a node with a stale log: refused when the lease ends.
    c.cores[3].step(Message(MessageType.PRE_VOTE, 3, 2, term=term + 1, index=1, log_term=1))
    c.isolate(1)
    c.cores[3].randomized_timeout = 19
    before = len(c.sent)
    c.tick(3, 12)
    answers = [m for m in c.sent[before:] if m.type is MessageType.PRE_VOTE_RESP]
    assert [(m.to, m.reject) for m in answers] == [(2, True)]
    # Asked within the lease, and then the leader is heard from again: nothing to answer.
    c.heal()
    c2 = Cluster((1, 2, 3))
    c2.elect(1)
    t2 = c2.cores[3].term
    c2.cores[3].step(Message(MessageType.PRE_VOTE, 3, 2, term=t2 + 5, index=100, log_term=t2))
    c2.cores[3].step(Message(MessageType.HEARTBEAT, 3, 1, term=t2 + 1))  # a new term's leader
    before = len(c2.sent)
    c2.tick(3, 12)
    assert not [m for m in c2.sent[before:] if m.type is MessageType.PRE_VOTE_RESP]


def _both_pre_candidates() -> tuple[Cluster, int]:
    """The leader is dead, both survivors' leases are over, and each has asked the other for
    a pre-vote before hearing the other's request: their requests cross."""
    c = Cluster((1, 2, 3))
    c.elect(1)
    term = c.cores[2].term
    c.crash(1)
    for i in (2, 3):
        c.cores[i].randomized_timeout = 19  # neither times out (again) by itself
        c.tick(i, 10)
    for i in (2, 3):
        c.cores[i].campaign()
    assert [c.cores[i].role for i in (2, 3)] == [Role.PRE_CANDIDATE] * 2
    return c, term


def test_two_pre_candidates_whose_requests_cross_elect_one_leader_in_one_round():
    # Each granting the other's pre-vote made both candidates of one term and split the vote
    # (1-2 s lost when messages are slow). The higher ID wins the tie.
    c, term = _both_pre_candidates()
    crossing = c.flush(2) + c.flush(3)
    c.deliver(crossing)
    c.settle()
    assert c.leaders() == [3]
    assert c.cores[3].term == term + 1 and c.cores[2].term == term + 1
    assert c.cores[2].leader == 3 and c.cores[2].vote == 3


def test_a_pre_candidate_refuses_a_lower_rival_only_for_one_election_timeout():
    c, term = _both_pre_candidates()
    c.flush(2)
    c.flush(3)  # neither request arrives
    pre_vote = Message(
        MessageType.PRE_VOTE,
        3,
        2,
        term=term + 1,
        index=c.cores[2].log.last_index(),
        log_term=c.cores[2].log.last_term(),
    )
    c.cores[3].step(pre_vote)
    assert c.cores[3].msgs[-1].reject
    # A rival whose log is longer is granted at once.
    longer = Message(
        MessageType.PRE_VOTE,
        3,
        2,
        term=term + 1,
        index=pre_vote.index + 1,
        log_term=pre_vote.log_term,
    )
    c.cores[3].step(longer)
    assert not c.cores[3].msgs[-1].reject
    # After an election timeout of its own round, 3 has not won: it grants the tie.
    for _ in range(10):
        c.cores[3].tick()
    c.flush(3)
    c.cores[3].step(pre_vote)
    assert not c.cores[3].msgs[-1].reject
    # The lower one never refuses the higher.
    c.cores[2].step(
        Message(
            MessageType.PRE_VOTE,
            2,
            3,
            term=term + 1,
            index=pre_vote.index,
            log_term=pre_vote.log_term,
        )
    )
    assert not c.cores[2].msgs[-1].reject
