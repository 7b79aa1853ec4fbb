"""Snapshots, compaction, and catching up a follower from a snapshot."""

import pytest

from shoal.raft.types import ConfState, Message, MessageType, ProgressState, Snapshot
from tests.unit.raft.harness import Cluster


def test_compaction_keeps_entries_for_slow_followers():
    c = Cluster((1, 2, 3))
    c.elect(1)
    for k in range(20):
        c.propose(1, f"v{k}")
    c.snapshot(1, keep=5)
    log = c.cores[1].log
    assert log.snapshot is not None and log.snapshot.index == log.applied
    assert log.offset == log.applied - 5
    assert log.first_index() == log.offset + 1
    st = c.storage[1].load()
    assert st.snapshot == log.snapshot
    assert st.offset == log.offset and st.entries[0].index == log.offset + 1


def test_a_follower_behind_the_compacted_log_gets_the_snapshot():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.crash(3)
    for k in range(30):
        c.propose(1, f"v{k}")
    c.snapshot(1, keep=2)
    c.start(3)
    c.tick_all(2)
    snaps = [m for m in c.sent if m.type is MessageType.SNAP and m.to == 3]
    assert len(snaps) == 1
    c.cores[1].report_snapshot(3, ok=True)
    c.tick_all(2)
    assert c.applied[3] == [f"v{k}" for k in range(30)]
    assert c.cores[1].prs[3].state is ProgressState.REPLICATE
    c.propose(1, "after")
    c.tick_all(1)
    assert c.applied[3][-1] == "after"
    # and it restarts from the snapshot it persisted
    c.crash(3)
    c.start(3)
    c.settle()
    assert c.applied[3] == c.applied[1]


def test_a_follower_within_the_kept_entries_gets_entries_not_the_snapshot():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.crash(3)
    for k in range(10):
        c.propose(1, f"v{k}")
    c.snapshot(1, keep=20)
    c.start(3)
    c.tick_all(2)
    assert not [m for m in c.sent if m.type is MessageType.SNAP]
    assert c.applied[3] == c.applied[1]


def test_a_lost_snapshot_is_sent_again_after_failure_report():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.crash(3)
    for k in range(10):
        c.propose(1, f"v{k}")
    c.snapshot(1, keep=0)
    c.start(3)
    c.filter = lambda m: m.type is not MessageType.SNAP
    c.tick_all(1)
    assert c.cores[1].prs[3].state is ProgressState.SNAPSHOT
    c.filter = None
    c.cores[1].report_snapshot(3, ok=False)
    c.tick_all(2)
    c.cores[1].report_snapshot(3, ok=True)
    c.tick_all(2)
    assert c.applied[3] == c.applied[1]


def test_snapshot_state_times_out_without_a_report():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.crash(3)
    for k in range(10):
        c.propose(1, f"v{k}")
    c.snapshot(1, keep=0)
    c.start(3)
    c.filter = lambda m: m.type is not MessageType.SNAP
    c.tick_all(1)
    c.filter = None
    c.tick_all(c.cfg.snapshot_timeout_ticks + 3)
    assert c.applied[3] == c.applied[1]


def test_snapshot_only_of_applied_state():
    c = Cluster((1, 2, 3))
    c.elect(1)
    c.propose(1, "a")
    core = c.cores[1]
    with pytest.raises(ValueError):
        core.compact(core.log.applied + 1)


def test_stale_snapshot_is_ignored():
    c = Cluster((1, 2, 3))
    c.elect(1)
    for k in range(5):
        c.propose(1, f"v{k}")
    c.snapshot(1)
    snap = c.cores[1].log.snapshot
    c.propose(1, "later")
    c.tick_all(1)
    follower = c.cores[2]
    committed = follower.log.committed
    from shoal.raft.types import Message

    follower.step(Message(MessageType.SNAP, 2, 1, term=follower.term, snapshot=snap))
    assert follower.log.committed == committed
    assert follower.log.pending_snapshot is None


def test_an_ignored_snapshot_acknowledges_only_the_commit_index():
    # 3 holds entries of a deposed leader past its commit index; a late snapshot must not
    # make the leader count them as replicated.
    from shoal.raft.core import bootstrap
    from tests.unit.raft.harness import grow

    boot = bootstrap({1: b"", 2: b"", 3: b""})
    stale = grow(grow(boot, 2, 5), 3, 10, "stale")  # 4..8 committed (t2), 9..18 stale (t3)
    stale.hard_state = type(stale.hard_state)(3, 0, 8)
    c = Cluster((1, 2, 3), states={3: stale})
    follower = c.cores[3]
    snap = Snapshot(5, 2, ConfState(frozenset({1, 2, 3})), b"[]")
    for s_ in (snap, Snapshot(8, 2, ConfState(frozenset({1, 2, 3})), b"[]")):
        follower.msgs.clear()
        follower.step(Message(MessageType.SNAP, 3, 1, term=follower.term, snapshot=s_))
        (resp,) = follower.msgs
        assert resp.type is MessageType.APP_RESP and resp.index == 8
    assert follower.log.last_index() == 18  # nothing was thrown away
