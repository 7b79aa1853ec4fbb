"""QueuedTransport: order per peer, isolation between peers, failure reports, bounded queues."""

import asyncio
import logging

from shoal.clock import FakeClock
from shoal.raft import codec
from shoal.raft.transport import QueuedTransport
from shoal.raft.types import ConfState, Message, MessageType, Snapshot


class Reports:
    def __init__(self) -> None:
        self.unreachable: list[int] = []
        self.snapshots: list[tuple[int, bool]] = []

    def report_unreachable(self, node_id: int) -> None:
        self.unreachable.append(node_id)

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        self.snapshots.append((node_id, ok))


def hb(to: int, n: int) -> Message:
    return Message(MessageType.HEARTBEAT, to, 1, term=1, commit=n)


async def spin(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_messages_arrive_in_order_per_peer_and_a_stuck_peer_blocks_nobody():
    got: dict[int, list[int]] = {2: [], 3: []}
    stuck = asyncio.Event()

    async def deliver(peer, payloads):
        if peer == 3:
            await stuck.wait()
        got[peer].extend(codec.decode_message(p).commit for p in payloads)

    t = QueuedTransport(deliver)
    t.send([hb(2, 1), hb(3, 1), hb(2, 2)])
    t.send([hb(2, 3)])
    await spin()
    assert got == {2: [1, 2, 3], 3: []}
    stuck.set()
    await spin()
    assert got[3] == [1]
    await t.close()


async def test_failures_are_reported_and_snapshots_acknowledged():
    fail = {2}

    async def deliver(peer, payloads):
        if peer in fail:
            raise ConnectionError("refused")

    r = Reports()
    t = QueuedTransport(deliver)
    t.attach(r)
    snap = Snapshot(5, 1, ConfState(frozenset({1, 2, 3})), b"s")
    t.send([Message(MessageType.SNAP, 2, 1, term=1, snapshot=snap), hb(3, 1)])
    await spin()
    assert r.unreachable == [2]
    assert r.snapshots == [(2, False)]
    fail.clear()
    t.send([Message(MessageType.SNAP, 2, 1, term=1, snapshot=snap)])
    await spin()
    assert r.snapshots == [(2, False), (2, True)]
    await t.close()


async def test_a_full_queue_drops_the_oldest():
    release = asyncio.Event()
    got: list[int] = []

    async def deliver(peer, payloads):
        await release.wait()
        got.extend(codec.decode_message(p).commit for p in payloads)

    t = QueuedTransport(deliver, max_queue=3, max_batch_bytes=1)  # one message per batch
    t.send([hb(2, 0)])
    await spin()  # 0 is being delivered
    t.send([hb(2, n) for n in range(1, 6)])
    assert t.dropped == 2
    release.set()
    await spin(50)
    assert got == [0, 3, 4, 5]
    await t.close()


async def test_a_call_cancelled_under_it_is_a_failed_delivery_and_the_sender_goes_on():
    """grpc.aio raises CancelledError from a call cancelled under it (its channel closed, its
    deadline hit while the request stream was being sent): the peer's sender task must not end
    with it, or every later message to that peer queues up and is never sent: a follower so
    cut off falls silent for good (seen at 1,000 nodes: the leader found it unreachable, and
    it never applied another entry)."""
    got: list[int] = []
    calls = 0

    async def deliver(peer, payloads):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncio.CancelledError()
        got.extend(codec.decode_message(p).commit for p in payloads)

    r = Reports()
    t = QueuedTransport(deliver)
    t.attach(r)
    t.send([hb(2, 1)])
    await spin()
    assert r.unreachable == [2]
    t.send([hb(2, 2)])
    await spin()
    assert got == [2]
    await t.close()


async def test_closing_the_transport_still_ends_its_senders():
    started = asyncio.Event()

    async def deliver(peer, payloads):
        started.set()
        await asyncio.Event().wait()  # never answers

    t = QueuedTransport(deliver)
    t.send([hb(2, 1)])
    await started.wait()
    await asyncio.wait_for(t.close(), 1)


async def test_heartbeats_pass_appends_stuck_on_their_way_to_the_same_peer():
    """A large append in flight (a follower slow to take it) holds the appends behind it,
    not the heartbeats: the follower keeps hearing from its leader, and the leader from it."""
    got: list[str] = []
    release = asyncio.Event()

    async def deliver(peer, payloads):
        kinds = [codec.decode_message(p).type for p in payloads]
        if MessageType.APP in kinds:
            await release.wait()
        got.extend(k.name for k in kinds)

    t = QueuedTransport(deliver)
    app = Message(MessageType.APP, 2, 1, term=1)
    t.send([app, hb(2, 1), app])
    await spin()
    t.send([Message(MessageType.HEARTBEAT_RESP, 2, 1, term=1), hb(2, 2)])
    await spin()
    assert got == ["HEARTBEAT", "HEARTBEAT_RESP", "HEARTBEAT"]
    release.set()
    await spin()
    assert got[3:] == ["APP", "APP"]  # the appends still in their order
    await t.close()


async def test_with_slow_deliveries_logged_a_slow_batch_says_its_lane_size_and_outcome(caplog):
    caplog.set_level(logging.INFO, logger="shoal.raft.transport")
    clock = FakeClock()
    release = asyncio.Event()

    async def deliver(peer, payloads):
        await release.wait()
        if peer == 3:
            raise ConnectionError("refused")

    t = QueuedTransport(deliver, slow_deliveries=1.0, monotonic=clock.monotonic)
    t.send([hb(2, 1), Message(MessageType.APP, 3, 1, term=1)])
    await spin()
    clock.hold(1.5)  # both calls take a second and a half
    release.set()
    await spin()
    t.send([hb(2, 2)])  # a quick one says nothing
    await spin()
    lines = sorted(r.getMessage() for r in caplog.records)
    assert len(lines) == 2
    assert lines[0].startswith("raft: 1 messages (") and "to 2 took 1.500 s to deliver" in lines[0]
    assert lines[0].endswith("(heartbeat lane): delivered")
    assert "to 3 took 1.500 s" in lines[1] and lines[1].endswith(
        "(append lane): failed: ConnectionError"
    )
    await t.close()
