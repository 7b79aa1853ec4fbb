"""A manager's seat in raft: its durable raft state in the manager's state directory, the
raft node, the store's replicated log, and the transport to the other managers.

A manager starts its replica one of three ways:

- ``bootstrap``: the first manager of a new swarm (``swarm init``): a cluster of one voter,
  which elects itself at once;
- ``join``: a manager joining an existing swarm (``swarm join`` with the manager token, or a
  promoted worker): it asks the leader to add it as a learner, and starts with an empty log
  that the leader fills (a snapshot, then entries); the leader makes it a voter once it has
  caught up;
- ``restart``: a manager that was a member before (after a crash or a restart) reloads its
  snapshot and log from disk and replays what was committed.

Encryption at rest: the raft log and snapshots hold the cluster's secrets (the root CA key
among them), so every manager seals what it stores under its own data key (``RaftKeys``, in
``raft-keys.json`` beside the raft directory, made when the manager first starts its
replica), from its very first write; a joining manager seals the snapshot it receives. A
store from before encryption is sealed when first opened. ``rotate_data_key`` rotates that
key while raft runs; ``reseal_data_keys`` re-wraps the keys under a new unlock key (autolock)
and rotates, as swarmkit does when the unlock key changes.

Timing: raft ticks every ``tick`` seconds (0.1 s by default, where Swarm ticks once a
second), with the Cluster's Raft settings counted in ticks as Swarm counts them: an
election timeout of ElectionTick (10) ticks is 1 to 2 s here, 10 to 20 s in Swarm.
"""

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from shoal.clock import Clock
from shoal.errors import Unavailable
from shoal.manager.consensus.peers import RECONNECT_INTERVAL, RaftPeers
from shoal.manager.consensus.raft_key_rotation import DataKeyRotation
from shoal.manager.consensus.raft_keys import FILE_NAME as KEYS_FILE_NAME
from shoal.manager.consensus.raft_keys import RaftKeys
from shoal.manager.consensus.replicated_log import ReplicatedLog
from shoal.manager.consensus.stand_in_sender import StandInSender
from shoal.paths import write_private
from shoal.raft.core import bootstrap as bootstrap_state
from shoal.raft.core import force_new_cluster
from shoal.raft.members import RaftMember, encode_context
from shoal.raft.node import RaftNode
from shoal.raft.stand_in import StandInHeartbeats
from shoal.raft.storage import SQLiteStorage
from shoal.raft.transport import QueuedTransport
from shoal.raft.types import (
    NONE,
    ConfChange,
    ConfChangeType,
    NotLeader,
    PersistentState,
    RaftConfig,
)
from shoal.rpc import Transport, from_rpc_error, pb, pb_grpc
from shoal.store import MemoryStore

log = logging.getLogger(__name__)

DEFAULT_TICK = 0.1
JOIN_TIMEOUT = 20.0
VOTER_WAIT = 60.0  # how long ``join`` waits to become a voter before returning anyway
# Swarmkit's wording when no leader can be found.
NO_LEADER = (
    "The swarm does not have a leader. It's possible that too few managers are online. "
    "Make sure more than half of the managers are online."
)


class NoLeader(Unavailable):
    def __init__(self) -> None:
        super().__init__(NO_LEADER)


def new_raft_id(taken: set[int] | frozenset[int] = frozenset()) -> int:
    """A random raft ID (Swarm's are random 64-bit numbers too), never 0 nor one in ``taken``
    (the members, and those removed: their messages are turned away for good)."""
    while True:
        raft_id = random.SystemRandom().getrandbits(63)
        if raft_id and raft_id not in taken:
            return raft_id


class Replica:
    def __init__(
        self,
        store: MemoryStore,
        state_dir: Path,
        node_id: str,
        advertise_addr: str,
        transport: Transport,
        clock: Clock,
        config: RaftConfig | None = None,
        tick: float = DEFAULT_TICK,
        kek: bytes | None = None,
    ) -> None:
        """``kek``: the unlock key that opens this manager's raft keys when autolock sealed
        them (``RaftKeysLocked`` or ``InvalidUnlockKey`` from the start otherwise)."""
        self.store = store
        self.dir = state_dir
        self.node_id = node_id
        self.addr = advertise_addr
        self.transport = transport
        self.clock = clock
        self.config = config or RaftConfig()
        self.tick = tick
        self.log = ReplicatedLog(store, on_members=self._members_changed)
        store.proposer = self.log
        self.raft_id = 0
        self.node: RaftNode | None = None
        self.peers: RaftPeers | None = None
        self._queue: QueuedTransport | None = None
        self.stand_in: StandInSender | None = None
        self._membership = asyncio.Lock()
        self.kek = kek
        self.raft_keys: RaftKeys | None = None
        self.storage: SQLiteStorage | None = None
        self.key_rotation: DataKeyRotation | None = None
        self._rotations: set[asyncio.Task] = set()  # stopped with the replica
        self._reconnecting: asyncio.Task[None] | None = None
        # Set by the manager: leadership gained or lost, and this member removed from raft.
        self.on_leadership: Callable[[bool], None] = lambda leading: None
        self.on_removed: Callable[[], None] = lambda: None

    # --- where things are -------------------------------------------------------------------

    @property
    def _id_file(self) -> Path:
        return self.dir / "raft-member.json"

    @property
    def _raft_dir(self) -> Path:
        return self.dir / "raft"

    @property
    def keys_file(self) -> Path:
        return self.dir / KEYS_FILE_NAME

    def _open_storage(self) -> tuple[RaftKeys, SQLiteStorage]:
        """This manager's data keys (made on its first start) and its raft store sealed under
        them. Blocking: from a thread."""
        keys = RaftKeys.load_or_create(self.keys_file, self.kek)
        return keys, SQLiteStorage(self._raft_dir, cipher=keys.cipher)

    def has_state(self) -> bool:
        """Whether this manager was a raft member before (and may ``restart``)."""
        return self._id_file.exists()

    def _save_id(self, raft_id: int) -> None:
        write_private(
            self._id_file, json.dumps({"RaftID": raft_id, "NodeID": self.node_id}).encode()
        )

    def _load_id(self) -> int:
        return int(json.loads(self._id_file.read_text())["RaftID"])

    # --- starting ---------------------------------------------------------------------------

    async def bootstrap(self) -> None:
        """Start a new cluster with this manager as its only voter, and lead it."""
        self.raft_id = new_raft_id()
        self._save_id(self.raft_id)
        initial = bootstrap_state({self.raft_id: encode_context(self.node_id, self.addr)})
        await self._start(initial)
        assert self.node is not None
        await self.node.campaign()
        while not self.node.leader_ready:
            await self.node.wait_leader_change()

    async def join(self, remotes: list[str]) -> None:
        """Ask the cluster (any manager in ``remotes``) to add this manager, start, and wait
        until the leader has made it a voter (as ``swarm join`` returns in Swarm once the
        manager is a full raft member): until then, the cluster's fault tolerance is that of
        the managers it had before."""
        resp = await self._request_join(remotes)
        self.raft_id = resp.raft_id
        self._save_id(self.raft_id)
        await self._start(None)
        assert self.peers is not None and self.node is not None
        self.peers.seed([RaftMember(m.raft_id, m.node_id, m.addr) for m in resp.members])
        deadline = self.clock.monotonic() + VOTER_WAIT
        while self.raft_id not in self.node.conf.voters:
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                log.warning("still a learner after %.0f s; carrying on catching up", VOTER_WAIT)
                return
            with contextlib.suppress(TimeoutError):
                next_entry = self.node.wait_applied(self.node.status().applied + 1)
                await asyncio.wait_for(next_entry, min(remaining, 1.0))

    async def restart(self) -> None:
        """Start from what is on disk, and replay the committed log into the store."""
        self.raft_id = self._load_id()
        await self._start(None)
        assert self.node is not None
        await self.node.wait_applied()
        if self.node.conf.voters == {self.raft_id}:
            # The only voter: no one to wait for, lead at once (as swarmkit does).
            await self.node.campaign()
            while not self.node.leader_ready:
                await self.node.wait_leader_change()

    async def force_new_cluster(self) -> None:
        """``swarm init --force-new-cluster``: rewrite this manager's raft log so that it is
        the only member (everything it holds counts as committed; the others are removed by
        entries of a new term), then restart from it and lead. The store keeps all its state."""
        raft_id = self._load_id()

        def rewrite() -> None:
            _, storage = self._open_storage()
            try:
                state = storage.load()
                new = force_new_cluster(state, raft_id)
                appended = new.entries[len(state.entries) :]
                storage.save(new.hard_state, appended)
            finally:
                storage.close()

        await asyncio.to_thread(rewrite)
        await self.restart()  # the only voter now: it leads at once

    async def _request_join(self, remotes: list[str]) -> pb.JoinRaftResponse:
        last: Exception | None = None
        for addr in remotes:
            channel = self.transport.channel(addr)
            try:
                return await pb_grpc.RaftStub(channel).Join(
                    pb.JoinRaftRequest(node_id=self.node_id, addr=self.addr),
                    timeout=JOIN_TIMEOUT,
                    metadata=self.transport.metadata(),
                )
            except grpc.aio.AioRpcError as err:
                last = from_rpc_error(err)
                log.info("joining raft through %s failed: %s", addr, last)
            finally:
                await channel.close()
        raise last or Unavailable("no manager to join")

    async def _start(self, initial: PersistentState | None) -> None:
        keys, storage = await asyncio.to_thread(self._open_storage)
        self.raft_keys, self.storage = keys, storage
        self.key_rotation = DataKeyRotation(keys, storage)
        self.peers = RaftPeers(self.transport, self.raft_id)
        self.peers.update(self.log.members)
        self._reconnecting = asyncio.create_task(
            self._keep_peers_connected(self.peers), name="raft-peers-reconnect"
        )
        self._queue = QueuedTransport(
            self.peers.deliver,
            slow_deliveries=self.store.slow_writes,
            monotonic=self.clock.monotonic,
        )
        beats = self._stand_in_heartbeats()
        self.node = RaftNode(
            self.raft_id,
            storage,
            self._queue,
            self.log,
            self.clock,
            tick_interval=self.tick,
            config=self.config,
            on_leadership=lambda leading: self.on_leadership(leading),
            on_removed=lambda: self.on_removed(),
            stand_in=beats,
        )
        # Raft's entries are timed when the store's writes are (see shoal.store.slow_writes).
        self.node.slow_entries = self.store.slow_writes
        self._queue.attach(self.node)
        self.log.attach(self.node)
        await self.node.start(initial)
        if beats is not None:
            self.stand_in = StandInSender(beats, self.transport, self.peers.addrs.get)
            self.stand_in.start()
        if keys.pending is not None:  # a rotation this manager had not finished
            self._run_rotation(self.key_rotation.resume())

    def _stand_in_heartbeats(self) -> StandInHeartbeats | None:
        """Heartbeats sent by a thread while the event loop is held up (issue 15), from a
        few heartbeat intervals without a turn (well within the shortest election timeout)
        to ``stand_in_limit`` seconds; None when switched off."""
        if self.config.stand_in_limit <= 0:
            return None
        interval = self.tick * self.config.heartbeat_tick
        return StandInHeartbeats(
            interval=interval,
            late_after=min(3 * interval, self.tick * self.config.election_tick / 2),
            give_up_after=self.config.stand_in_limit,
        )

    async def rotate_data_key(self) -> None:
        """Rotate this manager's raft data key: new writes use a new key at once, what is
        stored is sealed again under it in the background of raft (batch by batch), then the
        old key is gone. Returns when done; a caller that should not wait runs it as a task."""
        if self.key_rotation is None:
            raise Unavailable("this manager's raft store is not open")
        # Shielded: a caller that stops waiting does not leave it half done (it would resume
        # on the next start anyway); stopping the replica stops it.
        await asyncio.shield(self._run_rotation(self.key_rotation.rotate()))

    def _run_rotation(self, rotation: Coroutine[Any, Any, None]) -> asyncio.Task:
        task = asyncio.create_task(rotation, name="raft-key-rotation")
        self._rotations.add(task)
        task.add_done_callback(self._rotations.discard)
        return task

    async def reseal_data_keys(self, kek: bytes | None) -> None:
        """Autolock's unlock key changed (None: autolock off): wrap the data keys under the
        new one, then rotate the data key (as swarmkit does), so the data key the old unlock
        key could open protects nothing any more."""
        if self.raft_keys is None:
            raise Unavailable("this manager's raft store is not open")
        self.kek = kek
        await asyncio.to_thread(self.raft_keys.reseal, kek)
        await self.rotate_data_key()

    async def _keep_peers_connected(self, peers: RaftPeers) -> None:
        while True:
            await self.clock.sleep(RECONNECT_INTERVAL)
            peers.connect_idle()

    async def stop(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        for task in list(self._rotations):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.stand_in is not None:
            await asyncio.to_thread(self.stand_in.stop)
            self.stand_in = None
        if self.node is not None:
            await self.node.stop()
        if self._queue is not None:
            await self._queue.close()
        if self.peers is not None:
            await self.peers.close()

    def _members_changed(self, members: dict[int, RaftMember]) -> None:
        if self.peers is not None:
            self.peers.update(members)
        if self._queue is not None:
            for raft_id in self._queue.peer_ids():
                if raft_id not in members:
                    self._queue.remove_peer(raft_id)

    def follow_settings(self, snapshot_interval: int, keep_entries: int) -> None:
        """The Cluster's Raft settings that apply while running (``swarm update
        --snapshot-interval``): the raft node reads them at its next snapshot. As in swarmkit,
        election and heartbeat ticks are this manager's own and do not follow the Cluster."""
        if snapshot_interval > 0:
            self.config.snapshot_interval = snapshot_interval
        if keep_entries >= 0:
            self.config.keep_entries = keep_entries

    # --- who leads --------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Leading, with the state of every earlier term applied: safe to write."""
        return self.node is not None and self.node.leader_ready

    @property
    def leader_id(self) -> int:
        return self.node.leader if self.node is not None else NONE

    def leader_member(self) -> RaftMember | None:
        leader = self.leader_id
        if leader == NONE:
            return None
        if leader == self.raft_id:
            return RaftMember(self.raft_id, self.node_id, self.addr)
        member = self.log.members.get(leader)
        if member is None and self.peers is not None and leader in self.peers.addrs:
            member = RaftMember(leader, "", self.peers.addrs[leader])
        return member

    async def wait_for_leader(self, wait: float) -> RaftMember:
        """The leader's member entry, waiting up to ``wait`` seconds for an election."""
        deadline = self.clock.monotonic() + wait
        while True:
            member = self.leader_member()
            if member is not None and (member.raft_id != self.raft_id or self.is_leader):
                return member
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0 or self.node is None:
                raise NoLeader()
            waiter = self.node.leader_change()
            try:
                await asyncio.wait_for(asyncio.shield(waiter), min(remaining, 0.25))
            except TimeoutError:
                pass
            finally:
                waiter.cancel()

    async def leader_channel(self, wait: float) -> grpc.aio.Channel | None:
        """A channel to the leader for forwarding a request; None when this manager leads."""
        leader = await self.wait_for_leader(wait)
        if leader.raft_id == self.raft_id:
            return None
        assert self.peers is not None
        self.peers.seed([leader])
        return self.peers.channel(leader.raft_id)

    # --- membership (leader only) -----------------------------------------------------------

    async def add_member(self, node_id: str, addr: str) -> tuple[int, list[RaftMember]]:
        """Add a manager as a learner (it becomes a voter once caught up); returns its raft
        ID and the membership. Asking again for a node that is a member already returns its
        existing ID, so a joining manager may retry."""
        async with self._membership:
            node = self._leader_node()
            existing = self.log.member_by_node(node_id)
            if existing is not None:
                return existing.raft_id, list(self.log.members.values())
            raft_id = new_raft_id(set(self.log.members) | self.log.removed)
            change = ConfChange(ConfChangeType.ADD_LEARNER, raft_id, encode_context(node_id, addr))
            await node.propose_conf_change(change)
            return raft_id, list(self.log.members.values())

    async def promote_learner(self, raft_id: int) -> None:
        async with self._membership:
            node = self._leader_node()
            if raft_id not in node.conf.learners:
                return
            await node.propose_conf_change(ConfChange(ConfChangeType.ADD_VOTER, raft_id))

    async def remove_member(self, raft_id: int) -> None:
        async with self._membership:
            node = self._leader_node()
            if raft_id not in node.conf.members:
                return
            await node.propose_conf_change(ConfChange(ConfChangeType.REMOVE, raft_id))

    def _leader_node(self) -> RaftNode:
        if self.node is None or not self.node.leader_ready:
            raise NotLeader(self.leader_id)
        return self.node

    def can_remove(self, raft_id: int) -> bool:
        """Whether the voters left after removing ``raft_id`` that this leader can reach
        still make a quorum among themselves (swarmkit's CanRemoveMember)."""
        if self.node is None:
            return False
        conf = self.node.conf
        if raft_id not in conf.voters:
            return True
        remaining = conf.voters - {raft_id}
        reachable = sum(1 for v in remaining if v == self.raft_id or self.node.reachable(v))
        return reachable >= len(remaining) // 2 + 1

    def caught_up(self, raft_id: int, slack: int = 10) -> bool:
        """A learner whose log is close enough to the leader's to be given a vote."""
        if self.node is None or not self.node.is_leader:
            return False
        status = self.node.status()
        pr = status.progress.get(raft_id)
        heard = pr is not None and pr.ticks_since_heard < self.config.election_tick
        return heard and pr is not None and pr.match + slack >= status.commit
