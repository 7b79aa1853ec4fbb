"""Raft keeps its time while a long Ready is applied (issue 15): the core takes ticks and
messages while a Ready is out, and hands over the heartbeats (and their answers) to send at
once, nothing else; the driver pauses between slices of a long Ready to do so."""

import asyncio
import sys
import threading

import pytest

from shoal import clock
from shoal.raft.node import RaftNode
from shoal.raft.storage import AsyncStorage, MemoryStorage
from shoal.raft.types import Message, MessageType, RaftConfig
from tests.unit.raft.harness import Cluster as CoreCluster
from tests.unit.raft.test_node import KV, Cluster

MT = MessageType


def test_a_leader_mid_ready_hands_over_its_heartbeats_and_keeps_its_appends() -> None:
    c = CoreCluster()
    c.campaign(1)
    leader = c.cores[1]
    leader.propose(b"x")  # an append to each follower, queued
    rd = leader.ready()  # out, not yet advanced: the driver is persisting or applying it
    leader.propose(b"y")  # arrives meanwhile: its appends wait for the next Ready
    for _ in range(c.cfg.heartbeat_tick):
        leader.tick()
    beats = leader.take_heartbeats(durable_term=leader.term)
    assert sorted(m.to for m in beats) == [2, 3]
    assert {m.type for m in beats} == {MT.HEARTBEAT}
    leader.advance(rd)
    left = leader.ready()
    assert {m.type for m in left.messages} == {MT.APP}  # the appends of "y", in order
    assert [e.data for e in left.entries] == [b"y"]


def test_a_follower_mid_ready_answers_heartbeats_but_not_appends() -> None:
    c = CoreCluster()
    c.campaign(1)
    follower = c.cores[2]
    c.cores[1].propose(b"x")
    appends = c.flush(1)
    for m in appends:
        if m.to == 2:
            follower.step(m)  # an append: its answer must wait for the entry's write
    c.cores[1].tick()
    for m in c.flush(1):
        if m.to == 2 and m.type is MT.HEARTBEAT:
            follower.step(m)
    answers = follower.take_heartbeats(durable_term=follower.term)
    assert [(m.type, m.to) for m in answers] == [(MT.HEARTBEAT_RESP, 1)]
    assert all(m.type is MT.APP_RESP for m in follower.msgs)
    assert follower.msgs  # the append's answer stays for the next Ready


def test_nothing_is_taken_while_the_term_is_not_on_disk() -> None:
    c = CoreCluster()
    c.campaign(1)
    leader = c.cores[1]
    leader.tick()
    assert leader.take_heartbeats(durable_term=leader.term - 1) == []
    assert any(m.type is MT.HEARTBEAT for m in leader.msgs)


class RecordingNet:
    """Wraps the test network: records each message sent with whether its sender sent it
    while keeping time in the middle of a Ready (rather than with a Ready's messages)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.inner = cluster.net
        self.log: list[tuple[Message, bool]] = []

    def send(self, messages: list[Message]) -> None:
        paused = sys._getframe(1).f_code.co_name == "_keep_time"
        for m in messages:
            self.log.append((m, paused))
        self.inner.send(messages)


@pytest.fixture
async def cluster():
    c = Cluster()
    yield c
    await c.stop_all()


async def test_a_follower_applying_a_long_ready_answers_heartbeats_meanwhile(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    await cluster.start_all()
    leader = await cluster.leader_ready()
    follower: RaftNode = next(n for n in cluster.net.nodes.values() if n is not leader)
    net = RecordingNet(cluster)
    follower.transport = net
    # Cut the follower off while 60 entries commit, then let it catch up in one Ready.
    cluster.net.cut.add(follower.id)
    for k in range(60):
        await cluster.propose(leader, f"k{k}=v{k}")
    # Every entry is a slice: the follower applies one, then lets the loop (and time) run.
    monkeypatch.setattr(clock, "LOOP_SLICE", 0.0)
    cluster.net.cut.clear()
    await cluster.until(lambda: len(cluster.sms[follower.id].data) == 60)
    answered_mid_ready = [
        m for m, mid in net.log if mid and m.type is MT.HEARTBEAT_RESP and m.to == leader.id
    ]
    assert follower.pauses >= 59
    assert answered_mid_ready  # heartbeats were answered before the Ready was done
    # Nothing else left mid-Ready: appends are answered after their write, as ever.
    assert all(m.type in (MT.HEARTBEAT, MT.HEARTBEAT_RESP) for m, mid in net.log if mid)
    assert cluster.sms[follower.id].data == cluster.sms[leader.id].data
    assert sorted(cluster.sms[follower.id].applied) == cluster.sms[follower.id].applied
    assert leader.leader_ready and cluster.leadership[leader.id] == [True]


async def test_a_leader_applying_a_long_ready_keeps_sending_heartbeats(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    await cluster.start_all()
    leader = await cluster.leader_ready()
    net = RecordingNet(cluster)
    leader.transport = net
    monkeypatch.setattr(clock, "LOOP_SLICE", 0.0)
    # Proposals made together commit together: one Ready applies them all, slice by slice.
    proposals = [asyncio.ensure_future(leader.propose(f"k{k}=v{k}".encode())) for k in range(80)]
    await cluster.until(lambda: all(p.done() for p in proposals))
    for p in proposals:
        await p
    beats_mid_ready = [m for m, mid in net.log if mid and m.type is MT.HEARTBEAT]
    assert leader.pauses >= 40
    assert beats_mid_ready
    assert cluster.sms[leader.id].applied == sorted(cluster.sms[leader.id].applied)
    await cluster.until(lambda: all(len(sm.data) == 80 for sm in cluster.sms.values()))
    assert all(cluster.leadership[i] == ([True] if i == leader.id else []) for i in cluster.ids)


class SlowSnapshotKV(KV):
    """A state machine whose snapshot (taken in a worker thread) waits until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started = threading.Event()

    def snapshot(self) -> bytes:
        self.started.set()
        assert self.release.wait(10), "the test never released the snapshot"
        return super().snapshot()


class ThreadedCluster(Cluster):
    """Storage in a worker thread, as a manager's is: snapshots are taken in one too."""

    def storage(self, i: int) -> AsyncStorage:
        return AsyncStorage(self.disks.setdefault(i, MemoryStorage()), threaded=True)

    def state_machine(self, i: int) -> KV:
        sm = self.sms[i] = SlowSnapshotKV()
        return sm


async def test_a_leader_taking_a_long_snapshot_keeps_its_followers() -> None:
    c = ThreadedCluster(cfg=RaftConfig(snapshot_interval=5, keep_entries=2))
    try:
        await c.start_all()
        leader = await c.leader_ready()
        sm = c.sms[leader.id]
        assert isinstance(sm, SlowSnapshotKV)
        for other in c.sms.values():
            if other is not sm:
                other.release.set()  # only the leader's snapshot is slow
        proposals = [asyncio.ensure_future(leader.propose(f"k{k}={k}".encode())) for k in range(5)]
        await c.until(sm.started.is_set)
        await c.run(5.0)  # 50 ticks, several election timeouts, while the snapshot runs
        assert leader.leader_ready
        assert all(c.leadership[i] == ([True] if i == leader.id else []) for i in c.ids)
        sm.release.set()
        await c.until(lambda: all(p.done() for p in proposals))
        await c.until(lambda: c.disks[leader.id].load().snapshot is not None)
        snapshot = c.disks[leader.id].load().snapshot
        assert snapshot is not None and snapshot.index >= 5
        await c.propose(leader, "after=1")
        await c.until(lambda: all(s.data.get("after") == "1" for s in c.sms.values()))
    finally:
        for s in c.sms.values():
            assert isinstance(s, SlowSnapshotKV)
            s.release.set()
        await c.stop_all()
