"""Log replication: proposals, the commit rule, backtracking, lost appends."""

import pytest

from shoal.raft.core import bootstrap
from shoal.raft.types import MessageType, NotLeader, ProgressState, Role
from tests.unit.raft.harness import Cluster, config, grow

BOOT5 = bootstrap({i: b"" for i in (1, 2, 3, 4, 5)})


def test_proposals_commit_and_apply_everywhere_in_order():
    c = Cluster((1, 2, 3))
    c.elect(1)
    for k in range(10):
        c.propose(1, f"v{k}")
    c.tick_all(1)  # the last commit index reaches followers with the next heartbeat
    for i in (1, 2, 3):
        assert c.applied[i] == [f"v{k}" for k in range(10)]


def test_propose_on_a_follower_names_the_leader():
    c = Cluster((1, 2, 3))
    c.elect(1)
    with pytest.raises(NotLeader) as err:
        c.cores[2].propose(b"x")
    assert err.value.leader == 1


def test_a_minority_cannot_commit():
    c = Cluster((1, 2, 3, 4, 5))
    c.elect(1)
    c.partition((1, 2), (3, 4, 5))
    index = c.propose(1, "lost")
    assert c.cores[1].log.committed < index
    assert "lost" not in c.applied[1]


def test_only_current_term_entries_commit_by_counting():
    # Figure 8 of the Raft paper. Entry 7 of term 2 is on 1 and 2; 5 holds a term-3 entry
    # at 7. When 1 leads again in term 4 and puts its entry 7 on a majority (1, 2, 3), it
    # must not count it committed: 5 could still win an election and overwrite it. Only
    # once its term-4 entry 8 is on a majority are 7 and 8 committed.
    s1 = grow(grow(BOOT5, 2, 1, "noop"), 2, 1, "a")  # 6: t2, 7: t2
    s1.hard_state = type(s1.hard_state)(3, 0, 5)
    s3 = grow(BOOT5, 2, 1, "noop")
    s3.hard_state = type(s3.hard_state)(3, 0, 5)
    s5 = grow(grow(BOOT5, 2, 1, "noop"), 3, 1, "b")  # 7: t3
    s5.hard_state = type(s5.hard_state)(3, 5, 5)
    c = Cluster(
        (1, 2, 3, 4, 5),
        cfg=config(max_size_per_msg=1),  # one entry per append, so 7 and 8 travel apart
        states={1: s1, 2: s1, 3: s3, 4: s3, 5: s5},
    )
    c.isolate(5)

    def hold_back_entry_8(m):
        if m.type is MessageType.APP and m.to != 2:
            m.entries = [e for e in m.entries if e.index < 8]
        return True

    c.filter = hold_back_entry_8
    c.elect(1)
    leader = c.cores[1]
    assert leader.term == 4
    assert c.cores[3].log.term(7) == 2  # entry 7 is on a majority: 1, 2, 3 ...
    assert leader.log.committed < 7  # ... but not committed
    c.filter = None
    c.tick_all(1)
    assert leader.log.committed == 8
    assert c.cores[3].log.term(8) == 4


def test_fast_backtracking_skips_a_divergent_tail_in_few_round_trips():
    s_good = grow(BOOT5, 3, 50)  # entries 6..55 of term 3
    s_bad = grow(BOOT5, 2, 100)  # entries 6..105 of an old term-2 leader
    c = Cluster((1, 2, 3, 4, 5), states={1: s_good, 2: s_good, 3: s_bad, 4: s_good, 5: s_good})
    c.elect(1)
    c.tick_all(1)
    rejects = [m for m in c.sent if m.type is MessageType.APP_RESP and m.from_ == 3 and m.reject]
    assert len(rejects) <= 2
    assert c.cores[3].log.last_index() == c.cores[1].log.last_index()
    assert c.cores[3].log.term(55) == 3


def test_follower_missing_entries_is_probed_back():
    s_short = grow(BOOT5, 2, 1)
    s_long = grow(BOOT5, 2, 40)
    c = Cluster((1, 2, 3, 4, 5), states={1: s_long, 2: s_long, 3: s_short, 4: s_long, 5: s_long})
    c.elect(1)
    c.tick_all(1)
    assert c.cores[3].log.last_index() == c.cores[1].log.last_index()
    assert c.applied[3] == c.applied[1]


def test_lost_appends_are_resent():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.propose(1, "a")
    assert c.cores[1].prs[3].state is ProgressState.REPLICATE
    c.filter = lambda m: not (m.type is MessageType.APP and m.to == 3)
    c.propose(1, "b")
    assert c.cores[3].log.last_index() < c.cores[1].log.last_index()
    c.filter = None
    c.tick_all(c.cfg.stall_ticks + 1)
    assert c.applied[3] == ["a", "b"]


def test_follower_restart_keeps_what_it_persisted():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.propose(1, "a")
    c.tick_all(1)
    c.crash(3)
    c.propose(1, "b")
    c.start(3)
    c.settle()
    assert c.cores[3].log.committed >= 5  # from its hard state
    c.tick_all(2)
    assert c.applied[3] == ["a", "b"]


def test_leader_restart_loses_leadership_not_entries():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.propose(1, "a")
    c.crash(1)
    c.tick_all(30)
    new = c.leader()
    assert new != 1
    c.start(1)
    c.tick_all(3)
    assert c.cores[1].role is Role.FOLLOWER
    assert c.applied[1] == ["a"]
