"""The store's commit step when managers replicate: proposals go through the Raft log.

``ReplicatedLog`` is both halves of the store's bond with a ``RaftNode``:

- the ``Proposer``: ``propose`` encodes a transaction's changes as one log entry and returns
  once raft has committed it and applied it here (only the leader accepts proposals);
- the raft state machine: every manager, leader or follower, applies each committed entry to
  its store through ``MemoryStore.apply``, in log order, and learns the raft membership (who
  each member is and where it listens) from the configuration changes in the same log.

Snapshots (taken by the raft node every ``snapshot_interval`` entries, or sooner for large
entries: ``RaftConfig.snapshot_bytes``) hold the whole store and the membership, so a manager
far behind, or restarting, installs one and replays only the entries after it.

The leader applies its own proposals' objects as the transaction made them, not decoded back
from the entry: decoding is most of the cost of applying (15-20% of a leader's event loop
under a fleet), and the leader has the objects already. It may, because decoding an encoded
object gives it back field for field (``shoal.store.roundtrip``, and its property test), so
the leader's store is the one a follower decodes. Only the very bytes object this manager
encoded is applied so (the log hands back that same object while it holds our entry): an
entry of another leader in its place, or our entry read back from disk after a restart, is
decoded as any follower's; so is our entry once its writer was told it failed (it may reuse
its objects then). Once stored, the writer's objects are the store's, shared with every
reader: as any stored object, never changed in place (tests check it: ``StoredTexts``).
"""

import io
import json
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from typing import Any

from shoal import metrics
from shoal.api.base import share_field_sets
from shoal.errors import Unavailable
from shoal.raft.members import RaftMember, decode_context
from shoal.raft.node import ProposalChain, RaftNode
from shoal.raft.types import ConfChange, ConfChangeType, ConfState, NotLeader
from shoal.store.gc_tuning import building_long_lived
from shoal.store.memory import MemoryStore
from shoal.store.proposal import Action, Proposal, decode_proposal, encode_proposal
from shoal.store.roundtrip import CHECK_PROPOSALS, check_proposal

# Bytes from which a snapshot is restored as a large state (``building_long_lived``): about
# 1,500 tasks.
LARGE_SNAPSHOT = 1 << 20

MembersChanged = Callable[[dict[int, RaftMember]], None]


class ReplicatedLog:
    def __init__(self, store: MemoryStore, on_members: MembersChanged | None = None) -> None:
        self.store = store
        self.node: RaftNode | None = None
        self.members: dict[int, RaftMember] = {}
        # Raft IDs removed from the membership, for good (a manager that joins again gets a
        # new one): their messages are turned away (``RaftService``), as swarmkit's transport
        # does. A removed member that never learnt of its removal would otherwise depose a
        # leader with its higher term, and keep doing so (the Raft thesis, 4.2.3).
        self.removed: set[int] = set()
        self.conf = ConfState()
        self.on_members = on_members
        # The proposals this manager is committing, by the id of the bytes it proposed (the
        # bytes are kept, so no other object can have that id meanwhile): see ``apply``.
        self._own: dict[int, tuple[bytes, Proposal]] = {}
        self.applied_own = 0  # entries applied from their proposal's objects
        self.applied_decoded = 0  # entries applied decoded

    def attach(self, node: RaftNode) -> None:
        self.node = node

    def member_by_node(self, node_id: str) -> RaftMember | None:
        for m in self.members.values():
            if m.node_id == node_id:
                return m
        return None

    # --- Proposer -----------------------------------------------------------------------------

    async def propose(self, proposal: Proposal) -> None:
        if self.node is None:
            raise Unavailable("raft is not running on this manager")
        started = metrics.stopwatch()
        data = self._encode_own(proposal)
        await self._committed(data, self.node.propose(data), started)

    def chain(self) -> ProposalChain | None:
        """See ``PipelinedProposer``: the raft leader's chain of its current term."""
        return self.node.chain() if self.node is not None else None

    def continues(self, chain: object) -> bool:
        return (
            self.node is not None
            and isinstance(chain, ProposalChain)
            and self.node.continues(chain)
        )

    def submit(self, proposal: Proposal, chain: object) -> Awaitable[None]:
        """See ``PipelinedProposer``: the entry is in the log's order when this returns."""
        if self.node is None:
            raise Unavailable("raft is not running on this manager")
        if not isinstance(chain, ProposalChain):
            raise NotLeader(self.node.leader, "raft: not the leader of the chain's term")
        started = metrics.stopwatch()
        data = self._encode_own(proposal)
        try:
            fut = self.node.submit(data, chain)
        except BaseException:
            self._own.pop(id(data), None)
            metrics.RAFT_PROPOSALS.labels("failed").inc()
            raise
        return self._committed(data, fut, started)

    def _encode_own(self, proposal: Proposal) -> bytes:
        data = encode_proposal(proposal)
        if CHECK_PROPOSALS:
            check_proposal(proposal, data)
        self._own[id(data)] = (data, proposal)
        return data

    async def _committed(self, data: bytes, commit: Awaitable[None], started: float) -> None:
        try:
            await commit
        except BaseException:
            metrics.RAFT_PROPOSALS.labels("failed").inc()
            raise
        finally:
            # Applied by now if it committed; if not (the caller hears an error), it may yet
            # be applied, by a later leader's commit: then it is decoded, as a follower would,
            # and the writer may do what it likes with its objects from now on.
            self._own.pop(id(data), None)
        metrics.RAFT_TRANSACTION_LATENCY.observe(metrics.since(started))
        metrics.RAFT_PROPOSALS.labels("committed").inc()

    # --- raft state machine -------------------------------------------------------------------

    def apply(self, index: int, data: bytes) -> None:
        own = self._own.get(id(data))
        if own is not None and own[0] is data:
            del self._own[id(data)]
            proposal = own[1]
            if CHECK_PROPOSALS:  # changed since it was encoded? (a writer must not)
                check_proposal(proposal, data)
            for change in proposal.changes:
                # As decoding does (see share_field_sets); a removal's object is not stored.
                if change.action is not Action.REMOVE:
                    share_field_sets(change.obj)
            self.applied_own += 1
        else:
            proposal = decode_proposal(data, self.store.decode_task)
            self.applied_decoded += 1
        self.store.apply(proposal)

    def apply_conf_change(self, index: int, change: ConfChange) -> None:
        # The raft core refuses some changes (every node alike); mirror it exactly, so the
        # membership here always matches the configuration raft is using.
        if self.conf.problem_with(change):
            return
        self.conf = self.conf.after(change)
        if change.type is ConfChangeType.REMOVE:
            self.members.pop(change.node_id, None)
            self.removed.add(change.node_id)
        else:
            named = decode_context(change.node_id, change.context)
            if named.node_id or change.node_id not in self.members:
                self.members[change.node_id] = named
        self._members_changed()

    def snapshot(self) -> bytes:
        started = metrics.stopwatch()
        # The store's part, by far the largest, is serialized by pydantic object by object
        # (MemoryStore.write_snapshot_json, into one buffer); the rest as before. The document is
        # the same.
        rest: dict[str, Any] = {
            "Members": [m.to_json() for m in self.members.values()],
            "Voters": sorted(self.conf.voters),
            "Learners": sorted(self.conf.learners),
            "Removed": sorted(self.removed),
        }
        tail = json.dumps(rest, separators=(",", ":"))[1:]  # without its opening brace
        out = io.BytesIO()
        out.write(b'{"Store":')
        self.store.write_snapshot_json(out)
        out.write(b"," + tail.encode())
        encoded = out.getvalue()  # the buffer itself, not a copy (nothing else refers to it)
        metrics.RAFT_SNAPSHOT_LATENCY.observe(metrics.since(started))
        metrics.RAFT_SNAPSHOT_TIME.set_to_current_time()
        return encoded

    def restore(self, data: bytes) -> None:
        # A large store is built with the collector held off, then frozen: see there. A small
        # one gains nothing from it (and tests restore thousands).
        with building_long_lived() if len(data) >= LARGE_SNAPSHOT else nullcontext():
            snap = json.loads(data)
            self.store.restore(snap["Store"], consume=True)
        self.members = {m.raft_id: m for m in map(RaftMember.from_json, snap["Members"])}
        self.conf = ConfState(frozenset(snap["Voters"]), frozenset(snap["Learners"]))
        # Absent from the snapshots of earlier versions: nobody known removed then.
        self.removed = set(snap.get("Removed", ()))
        self._members_changed()

    def _members_changed(self) -> None:
        if self.on_members is not None:
            self.on_members(dict(self.members))
