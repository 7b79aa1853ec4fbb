"""The sending half of a raft transport, independent of how bytes travel.

``QueuedTransport.send`` (called by ``RaftNode`` with a Ready's messages) never blocks: it
encodes each message and puts it on its peer's queue. One task per peer drains that queue in
batches through ``deliver(peer, payloads)`` - the gRPC call the wiring supplies - so a slow
or dead peer delays nobody else and messages to one peer keep their order; heartbeats and
their answers go in a second lane per peer of their own (see ``BEATS``), never behind
appends. Failures go back to the node: ``report_unreachable`` when a batch could not be
delivered (the leader then probes that follower again rather than streaming blindly),
``report_snapshot`` when a batch carrying a snapshot was (or was not) delivered. A full
queue drops its oldest messages: raft resends whatever matters, and memory stays bounded.

The receiving half is one line in the gRPC handler:
``node.step(codec.decode_message(payload))`` for each payload, after checking that the
caller's certificate belongs to the member the message claims to come from.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from shoal.raft import codec
from shoal.raft.types import Message, MessageType

log = logging.getLogger(__name__)

Deliver = Callable[[int, list[bytes]], Awaitable[None]]


class Reporter(Protocol):
    def report_unreachable(self, node_id: int) -> None: ...

    def report_snapshot(self, node_id: int, ok: bool) -> None: ...


# Sent in a lane of their own, beside the rest: the heartbeats that keep a leader's
# followers from calling an election and their answers that keep the leader leading (check
# quorum). In one queue they waited behind large appends, one batch in flight at a time
# (issue 15: while a leader sent 10,000 task changes, both followers heard nothing from it
# for an election timeout and elected another). Raft needs no order between the two: a
# heartbeat carries no entries, and the commit index it carries is one the follower holds.
BEATS = frozenset({MessageType.HEARTBEAT, MessageType.HEARTBEAT_RESP})


class _Lane:
    def __init__(self, beats: bool = False) -> None:
        self.beats = beats  # the heartbeats' lane (see ``BEATS``)
        self.queue: deque[tuple[bytes, bool]] = deque()  # (payload, is_snapshot)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class _Peer:
    def __init__(self) -> None:
        self.bulk = _Lane()
        self.beats = _Lane(beats=True)

    def tasks(self) -> list[asyncio.Task[None]]:
        return [lane.task for lane in (self.bulk, self.beats) if lane.task is not None]


class QueuedTransport:
    def __init__(
        self,
        deliver: Deliver,
        max_queue: int = 4096,
        max_batch_bytes: int = 4 << 20,
        slow_deliveries: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``slow_deliveries``: a batch whose delivery takes this many seconds or more is
        logged, with its lane, size and outcome (a debug aid, off by default; see
        shoal.store.slow_writes)."""
        self._deliver = deliver
        self._slow = slow_deliveries
        self._monotonic = monotonic
        self._max_queue = max_queue
        self._max_batch_bytes = max_batch_bytes
        self._peers: dict[int, _Peer] = {}
        self._reporter: Reporter | None = None
        self._closed = False
        self.dropped = 0

    def attach(self, reporter: Reporter) -> None:
        """Where to report failures: the RaftNode using this transport."""
        self._reporter = reporter

    def send(self, messages: list[Message]) -> None:
        if self._closed:
            return
        for m in messages:
            peer = self._peers.get(m.to)
            if peer is None:
                peer = self._peers[m.to] = _Peer()
                loop = asyncio.get_running_loop()
                for name, lane in (("send", peer.bulk), ("beats", peer.beats)):
                    lane.task = loop.create_task(
                        self._drain(m.to, lane), name=f"raft-{name}-{m.to}"
                    )
                    lane.task.add_done_callback(_log_sender_end)
            lane = peer.beats if m.type in BEATS else peer.bulk
            if len(lane.queue) >= self._max_queue:
                _, was_snapshot = lane.queue.popleft()
                self.dropped += 1
                if was_snapshot and self._reporter is not None:
                    self._reporter.report_snapshot(m.to, False)
            lane.queue.append((codec.encode_message(m), m.type is MessageType.SNAP))
            lane.wake.set()

    def peer_ids(self) -> list[int]:
        """The peers this transport has a queue for."""
        return list(self._peers)

    def remove_peer(self, node_id: int) -> None:
        """Forget a peer removed from the cluster (its queue and sender)."""
        peer = self._peers.pop(node_id, None)
        if peer is not None:
            for task in peer.tasks():
                task.cancel()

    async def close(self) -> None:
        self._closed = True
        tasks = [t for p in self._peers.values() for t in p.tasks()]
        self._peers.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def _drain(self, node_id: int, lane: _Lane) -> None:
        while True:
            await lane.wake.wait()
            lane.wake.clear()
            while lane.queue:
                batch: list[bytes] = []
                size = snapshots = 0
                while lane.queue and (
                    not batch or size + len(lane.queue[0][0]) <= self._max_batch_bytes
                ):
                    payload, is_snap = lane.queue.popleft()
                    batch.append(payload)
                    size += len(payload)
                    snapshots += is_snap
                started = self._monotonic()
                outcome = "delivered"
                try:
                    await self._deliver(node_id, batch)
                    ok = True
                except asyncio.CancelledError:
                    if _being_cancelled():
                        raise  # this sender is stopped (``remove_peer``, ``close``)
                    # The call was cancelled under us, not this task: grpc.aio raises
                    # CancelledError from a call whose channel was closed or whose deadline
                    # passed while its request stream was sent. A failed delivery like any
                    # other; ending here would leave the peer's queue with no sender, and a
                    # follower unheard from for good.
                    ok = False
                    outcome = "cancelled"
                    log.debug("raft: delivery to %d cancelled under the sender", node_id)
                    if self._reporter is not None:
                        self._reporter.report_unreachable(node_id)
                except Exception as err:
                    ok = False
                    outcome = f"failed: {type(err).__name__}"
                    log.debug("raft: delivery to %d failed: %s", node_id, err)
                    if self._reporter is not None:
                        self._reporter.report_unreachable(node_id)
                if snapshots and self._reporter is not None:
                    self._reporter.report_snapshot(node_id, ok)
                took = self._monotonic() - started
                if self._slow is not None and took >= self._slow:
                    log.info(
                        "raft: %d messages (%d bytes) to %x took %.3f s to deliver (%s lane): %s",
                        len(batch),
                        size,
                        node_id,
                        took,
                        "heartbeat" if lane.beats else "append",
                        outcome,
                    )


def _being_cancelled() -> bool:
    """Whether the running task itself was asked to stop (rather than an awaited call)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _log_sender_end(task: "asyncio.Task[None]") -> None:
    """A peer's sender ends only when stopped; any other end is a bug that would silence the
    peer for good: say so (the task is held, so asyncio would never report its exception)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("raft: %s ended", task.get_name(), exc_info=task.exception())
