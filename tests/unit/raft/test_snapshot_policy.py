"""When the driver snapshots: by size while writes go on, and once they have settled."""

from hypothesis import given
from hypothesis import strategies as st

from shoal.raft.snapshot_policy import SETTLED_SHARE, TAIL_SHARE, SnapshotPolicy
from shoal.raft.types import RaftConfig

MIB = 1 << 20


def policy(**kw: int) -> SnapshotPolicy:
    cfg = RaftConfig(snapshot_interval=10000, snapshot_bytes=64 * MIB, **kw)
    return SnapshotPolicy(cfg)


def apply(p: SnapshotPolicy, entries: int, each: int, applied: int) -> int:
    for _ in range(entries):
        p.applied(each)
        applied += 1
    return applied


def ticks(p: SnapshotPolicy, n: int) -> None:
    for _ in range(n):
        p.tick()


def test_by_size_every_interval_or_once_the_tail_holds_as_much_as_the_snapshot():
    p = policy()
    assert not p.due(0)
    assert p.due(10000)  # snapshot_interval entries
    p.snapshotted(100, 80 * MIB)
    n = apply(p, 79, MIB, 100)
    assert not p.due(n)  # over the 64 MiB floor, under the last snapshot's size
    n = apply(p, 1, MIB, n)
    assert p.due(n)


def test_a_tail_is_snapshotted_once_writes_have_settled():
    p = policy(settle_ticks=30, settled_snapshot_bytes=MIB)
    p.snapshotted(100, 40 * MIB)
    n = 100
    for _ in range(40):  # a burst: 20 MiB over 40 ticks, none of it settled
        n = apply(p, 2, 256 << 10, n)
        p.tick()
        assert not p.due(n)
    ticks(p, 29)
    assert not p.due(n)  # the last window still holds part of the burst
    p.tick()
    assert p.due(n)
    p.snapshotted(n, 60 * MIB)
    ticks(p, 100)
    assert not p.due(n)  # nothing applied since


def test_small_writes_do_not_keep_a_settled_tail_from_its_snapshot():
    # A write a second (a service update, a node's status) is not a burst.
    p = policy(settle_ticks=30, settled_snapshot_bytes=MIB)
    p.snapshotted(100, 16 * MIB)
    n = apply(p, 8, MIB, 100)  # a burst of 8 MiB: a quarter of... well over an eighth
    for _ in range(40):
        n = apply(p, 1, 1000, n)
        ticks(p, 10)
    assert p.due(n)


def test_a_tail_too_small_against_the_snapshot_waits():
    p = policy(settle_ticks=30, settled_snapshot_bytes=MIB)
    p.snapshotted(100, 80 * MIB)
    n = apply(p, 9, MIB, 100)  # over the floor, under an eighth of the snapshot
    ticks(p, 100)
    assert not p.due(n)
    n = apply(p, 1, MIB, n)
    ticks(p, 31)
    assert p.due(n)


def test_the_settled_rule_can_be_turned_off_and_needs_a_whole_window():
    off = policy(settle_ticks=0, settled_snapshot_bytes=MIB)
    n = apply(off, 10, MIB, 0)
    ticks(off, 1000)
    assert not off.due(n)
    fresh = policy(settle_ticks=30, settled_snapshot_bytes=MIB)
    n = apply(fresh, 10, MIB, 0)  # e.g. the tail replayed at start-up
    ticks(fresh, 30)
    assert not fresh.due(n)  # 30 ticks: not yet a whole window behind the last apply
    fresh.tick()
    assert fresh.due(n)


@given(
    st.lists(st.tuples(st.integers(0, 4 * MIB), st.integers(0, 40)), max_size=60),
    st.integers(0, 100 * MIB),
)
def test_settled_means_little_applied_over_the_window(steps, snap):
    # Whenever the settled rule says due, the bytes applied over the last window are under
    # a 64th of the tail, and the tail is at least the floor and an eighth of the snapshot.
    p = policy(settle_ticks=30, settled_snapshot_bytes=MIB)
    p.snapshotted(1, snap)
    history: list[int] = []  # bytes applied before each tick
    total = 0
    n = 1
    for nbytes, quiet in steps:
        p.applied(nbytes)
        total += nbytes
        n += 1
        for _ in range(quiet):
            p.tick()
            history.append(total)
        if p.due(n) and p.tail_bytes < 64 * MIB and p.tail_bytes < p.size:
            assert len(history) > 30
            assert (total - history[-31]) * SETTLED_SHARE <= p.tail_bytes
            assert p.tail_bytes >= max(MIB, snap // TAIL_SHARE)
