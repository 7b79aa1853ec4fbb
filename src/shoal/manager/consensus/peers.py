"""Raft messages between managers over gRPC: the delivery half that ``QueuedTransport`` needs.

Each batch of messages for one member is one ``Raft.Send`` client stream; every message is
cut into chunks of at most ``CHUNK_BYTES``, so a snapshot of a large store streams through in
pieces and no gRPC message size limit is ever reached. A member's address comes from the
raft membership (``ReplicatedLog.members``), seeded at join time from the leader's answer.

Channels reconnect quickly (a restarted manager is heard from within a fraction of a second,
not after gRPC's default backoff of up to two minutes), and a call to an unresponsive member
gives up after a timeout that grows with the batch, so a dead peer only ever delays itself.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc
import grpc.aio

from shoal.raft.members import RaftMember
from shoal.rpc import Transport, pb, pb_grpc

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
# Seconds for a batch: a floor for small messages, plus time per MiB for snapshots. A lane
# sends one batch at a time, so a floor below what a delivery takes delivers nothing at all:
# with 2 s, a follower's answers to a leader taking 1,000 nodes' sessions (1-2.5 s each) were
# cut off one after another, and the leader, hearing none, stepped down (issue 15,
# fleet-1000-s29-prof1). Kept under the leader's check-quorum window (RaftConfig).
SEND_TIMEOUT = 4.0
SEND_SECONDS_PER_MIB = 1.0
# Seconds between two looks for a member's channel gone idle (see ``connect_idle``).
RECONNECT_INTERVAL = 1.0
CHANNEL_OPTIONS: tuple[tuple[str, int | str], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Kept open while unused (see ``RaftPeers.update``): followers send each other nothing
    # until an election, and gRPC would otherwise close an idle channel after 30 minutes.
    ("grpc.client_idle_timeout_ms", 2**31 - 1),
)


class UnknownPeer(Exception):
    pass


def chunks(payloads: list[bytes], size: int = CHUNK_BYTES) -> list[pb.RaftChunk]:
    """The stream for ``payloads``: each message in one or more pieces, ``more`` set on
    every piece but a message's last."""
    out = []
    for payload in payloads:
        view = memoryview(payload)
        pos = 0
        while True:
            piece = view[pos : pos + size]
            pos += len(piece)
            out.append(pb.RaftChunk(data=bytes(piece), more=pos < len(view)))
            if pos >= len(view):
                break
    return out


async def join_chunks(stream: AsyncIterator[pb.RaftChunk]) -> AsyncIterator[bytes]:
    """The messages of a ``Raft.Send`` stream, whole again."""
    parts: list[bytes] = []
    async for chunk in stream:
        parts.append(chunk.data)
        if not chunk.more:
            yield b"".join(parts)
            parts = []
    if parts:
        raise ValueError("raft stream ended inside a message")


class RaftPeers:
    """Where each member is, and a channel to each; ``deliver`` sends a batch to one."""

    def __init__(self, transport: Transport, self_id: int) -> None:
        self.transport = transport
        self.self_id = self_id
        self.addrs: dict[int, str] = {}
        # raft id -> (address, transport generation, channel): a channel is rebuilt when the
        # member moves or this node's certificate changes.
        self._channels: dict[int, tuple[str, int, grpc.aio.Channel]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def update(self, members: dict[int, RaftMember]) -> None:
        """The membership changed: learn new addresses, forget removed members."""
        for raft_id, m in members.items():
            if m.addr and raft_id != self.self_id:
                self.addrs[raft_id] = m.addr
        for raft_id in list(self.addrs):
            if raft_id not in members:
                del self.addrs[raft_id]
        for raft_id, (addr, _, _) in list(self._channels.items()):
            if self.addrs.get(raft_id) != addr:
                self._drop_channel(raft_id)
        self.connect_idle()

    def connect_idle(self) -> None:
        """Connect every member's channel that is not connected or connecting. Connected
        before first use: two followers send each other nothing until the leader dies, and
        then the first vote request waited for a connection and a TLS handshake each way on
        loaded managers (issue 15: at 1,000 nodes the first round of an election came to
        nothing in two runs out of two, and the next came a timeout, about 1.1 s, later). A
        channel whose member restarted goes idle and stays so until used: the replica calls
        this again every ``RECONNECT_INTERVAL``."""
        for raft_id in self.addrs:
            with contextlib.suppress(Exception):
                self.channel(raft_id).get_state(try_to_connect=True)

    def seed(self, members: list[RaftMember]) -> None:
        """Addresses known before the log has been received (a manager that just joined)."""
        for m in members:
            if m.raft_id != self.self_id and m.addr:
                self.addrs.setdefault(m.raft_id, m.addr)

    def channel(self, raft_id: int) -> grpc.aio.Channel:
        """The (shared, long-lived) channel to a member; raises UnknownPeer."""
        addr = self.addrs.get(raft_id)
        if addr is None:
            raise UnknownPeer(f"no address for raft member {raft_id:x}")
        generation = self.transport.generation
        current = self._channels.get(raft_id)
        if current is not None and current[:2] == (addr, generation):
            return current[2]
        self._drop_channel(raft_id)
        channel = self.transport.channel(addr, CHANNEL_OPTIONS)
        self._channels[raft_id] = (addr, generation, channel)
        return channel

    def _drop_channel(self, raft_id: int) -> None:
        old = self._channels.pop(raft_id, None)
        if old is not None:
            # A grace period: calls under way on the old channel finish.
            task = asyncio.ensure_future(old[2].close(grace=5.0))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def deliver(self, raft_id: int, payloads: list[bytes]) -> None:
        stub = pb_grpc.RaftStub(self.channel(raft_id))
        size = sum(len(p) for p in payloads)
        timeout = SEND_TIMEOUT + SEND_SECONDS_PER_MIB * size / (1 << 20)
        await stub.Send(iter(chunks(payloads)), timeout=timeout, metadata=self.transport.metadata())

    async def close(self) -> None:
        for raft_id in list(self._channels):
            self._drop_channel(raft_id)
        if self._closing:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._closing, return_exceptions=True)
