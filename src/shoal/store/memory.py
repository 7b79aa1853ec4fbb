"""In-memory tables with secondary indexes, transactions over them, and the write path."""

from __future__ import annotations

import asyncio
import builtins
import io
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar, cast

from shoal import metrics
from shoal.api.base import Version
from shoal.api.objects import OBJECT_TYPES, Cluster, Network, Node, Service, StoredObject, Task
from shoal.api.specs import ContainerSpec
from shoal.clock import Clock, SystemClock
from shoal.errors import Conflict, NotFound, OutOfSequence
from shoal.store.intern import Interner
from shoal.store.proposal import (
    Action,
    Change,
    PipelinedProposer,
    Proposal,
    Proposer,
    decode_object,
    encode_proposal,
)
from shoal.store.roundtrip import CHECK_PROPOSALS, StoredTexts, check_proposal
from shoal.store.shielded import shielded
from shoal.store.slow_writes import WriteTimes
from shoal.store.watch import Event, EventFilter, EventListener, Listening, Subscription, WatchHub
from shoal.store.write_lock import WriteLock

log = logging.getLogger(__name__)

T = TypeVar("T", bound=StoredObject)
R = TypeVar("R")

# Index name -> function giving the keys an object is found under (none, one or several).
IndexFn = Callable[[Any], Iterable[Any]]


def _one(value: Any) -> tuple[Any, ...]:
    return () if value is None or value == "" else (value,)


def _container(service: Service) -> ContainerSpec:
    return service.Spec.TaskTemplate.ContainerSpec or ContainerSpec()


INDEXES: dict[str, dict[str, IndexFn]] = {
    "node": {
        "name": lambda n: _one(n.name.lower()),
        "role": lambda n: _one(n.Role),
        # The role a node is asked to take, while it has another (promotion, demotion): the
        # role manager's work, found without a walk over every node four times a second.
        "role_change": lambda n: (n.Spec.Role,) if n.Spec.Role != n.Role else (),
    },
    "service": {
        "name": lambda s: _one(s.Spec.Name.lower()),
        # The networks its tasks join (is a network in use; which VIPs are taken).
        "network": lambda s: {n.Target for n in s.Spec.TaskTemplate.Networks or ()},
        # The secrets and configs its tasks are given (is one in use).
        "secret": lambda s: {r.SecretID for r in _container(s).Secrets or ()},
        "config": lambda s: {r.ConfigID for r in _container(s).Configs or ()},
    },
    # Written out rather than through ``_one`` (the same keys): every task written runs
    # each of these twice (its old and new version), 100,000 times for a large placement.
    "task": {
        "service": lambda t: (t.ServiceID,) if t.ServiceID else (),
        # The networks it has addresses on.
        "network": lambda t: (
            {a.Network.ID for a in t.NetworksAttachments} if t.NetworksAttachments else ()
        ),
        "node": lambda t: (t.NodeID,) if t.NodeID else (),
        # (a replicated job's slots start at 0; a global task has none)
        "slot": lambda t: ((t.ServiceID, t.Slot),) if t.Slot is not None else (),
        "service_node": lambda t: ((t.ServiceID, t.NodeID),) if t.NodeID else (),
        "desired_state": lambda t: _one(t.DesiredState),
    },
    "network": {
        "name": lambda n: _one(n.Spec.Name.lower()),
    },
    "secret": {
        "name": lambda s: _one(s.Spec.Name.lower()),
    },
    "config": {
        "name": lambda c: _one(c.Spec.Name.lower()),
    },
    "cluster": {
        "name": lambda c: _one(c.Spec.Name.lower()),
    },
}

# Names that must be unique within a table (Docker refuses a second service called "web").
UNIQUE_INDEXES = {
    "service": "name",
    "network": "name",
    "secret": "name",
    "config": "name",
    "cluster": "name",
}

MAX_CHANGES_PER_PROPOSAL = 200
# How long ``batch`` runs its functions into one proposal before committing it: building a
# proposal holds the event loop (everything else waits, raft's heartbeats too), and under
# load 200 new tasks took 0.7 s (issue 15). A proposal ends at this time or at
# MAX_CHANGES_PER_PROPOSAL changes, whichever comes first.
MAX_SECONDS_PER_PROPOSAL = 0.05
# How many proposals a store with a ``PipelinedProposer`` (a raft leader) has in the log at
# once, submitted and not yet applied: the next write is built on the state they leave
# instead of waiting for each round trip (issue 15). Bounded, so that a large batch does not
# fill the log (and every follower's queue) faster than they commit. 30,000 tasks on 300
# simulated nodes: 1 (no pipeline) 275 tasks/s, 4: 381, 8: 513, 16: 541 with a raft round
# trip of 1.07 s (0.61 s at 8) and the followers further behind. One until the 1,000-node
# node-loss collapse at 8 is understood (issue 15): there, in two runs out of two, healthy
# simulated nodes stopped heartbeating in time once 100 were lost, were marked down 14,000
# times over, and the phase never finished; at 1 it finished in 118 s with none.
MAX_PROPOSALS_IN_FLIGHT = 1


class Table(Generic[T]):
    """The objects of one kind (``T``), by ID and by each of the kind's indexes."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.objects: dict[str, T] = {}
        self.index_fns = INDEXES.get(kind, {})
        self.indexes: dict[str, dict[Any, dict[str, T]]] = {name: {} for name in self.index_fns}
        # The same, as (index, function) pairs: ``put`` runs for every object written.
        self._index_pairs = [(self.indexes[name], fn) for name, fn in self.index_fns.items()]

    def put(self, obj: T) -> T | None:
        obj_id = obj.ID
        objects = self.objects
        old = objects.get(obj_id)
        objects[obj_id] = obj
        for idx, fn in self._index_pairs:
            keys = fn(obj)
            if old is not None:
                before = fn(old)
                if before == keys:
                    # Found under the same keys (most updates): move it to the end of each
                    # bucket, as taking it out and putting it back would.
                    for key in keys:
                        bucket = idx.get(key)
                        if bucket is None:
                            idx[key] = {obj_id: obj}
                        else:
                            bucket.pop(obj_id, None)
                            bucket[obj_id] = obj
                    continue
                self._unindex_keys(idx, obj_id, before)
            for key in keys:
                bucket = idx.get(key)
                if bucket is None:
                    idx[key] = {obj_id: obj}
                else:
                    bucket[obj_id] = obj
        return old

    def remove(self, obj_id: str) -> T | None:
        old = self.objects.pop(obj_id, None)
        if old is not None:
            self._unindex(old)
        return old

    def _unindex(self, obj: T) -> None:
        for name, fn in self.index_fns.items():
            self._unindex_keys(self.indexes[name], obj.ID, fn(obj))

    @staticmethod
    def _unindex_keys(idx: dict[Any, dict[str, T]], obj_id: str, keys: Iterable[Any]) -> None:
        for key in keys:
            bucket = idx.get(key)
            if bucket is not None:
                bucket.pop(obj_id, None)
                if not bucket:
                    del idx[key]

    def find(self, index: str, key: Any) -> dict[str, T]:
        return self.indexes[index].get(key, {})


class ReadTx:
    """A consistent read of the committed state. In one event loop, reads made without an
    ``await`` in between all see the same state.

    From another thread (the API's read lane), each read returns objects as some moment left
    them, whole: objects are never changed in place, and what a read returns is a copy taken
    in one step (``list`` over a dict's values runs in C, the interpreter lock held)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def _table(self, cls: type[T]) -> Table[T]:
        # The table of a kind holds objects of that kind's class only. (``cast`` with a
        # string: ``Table[T]`` would build a generic alias on every call.)
        return cast("Table[T]", self._store._tables[cls.KIND])

    def get(self, cls: type[T], obj_id: str) -> T | None:
        return cast("T | None", self._store._tables[cls.KIND].objects.get(obj_id))

    # ``list`` names a method here: annotations say ``builtins.list``.
    def list(self, cls: type[T]) -> builtins.list[T]:
        return builtins.list(self._table(cls).objects.values())

    def find(self, cls: type[T], index: str, key: Any) -> builtins.list[T]:
        return builtins.list(self._table(cls).find(index, key).values())

    def find_by_prefix(self, cls: type[T], prefix: str) -> builtins.list[T]:
        # Over a copy of the table (taken in one step): the API's read lane reads from its
        # own thread while the store's applies changes.
        items = builtins.list(self._table(cls).objects.items())
        return [o for i, o in items if i.startswith(prefix)]

    def count(self, cls: type[StoredObject]) -> int:
        return len(self._table(cls).objects)

    # Conveniences for the common lookups.
    def cluster(self) -> Cluster | None:
        clusters = self.list(Cluster)
        return clusters[0] if clusters else None

    def nodes(self) -> builtins.list[Node]:
        return self.list(Node)

    def services(self) -> builtins.list[Service]:
        return self.list(Service)

    def tasks_of_service(self, service_id: str) -> builtins.list[Task]:
        return self.find(Task, "service", service_id)

    def tasks_on_node(self, node_id: str) -> builtins.list[Task]:
        return self.find(Task, "node", node_id)

    def service_by_name(self, name: str) -> Service | None:
        found = self.find(Service, "name", name.lower())
        return found[0] if found else None

    def networks(self) -> builtins.list[Network]:
        return self.list(Network)


class Tx(ReadTx):
    """A read-write transaction. Reads see the transaction's own writes, over those of the
    store's proposals in flight (submitted, not yet applied), over what is applied. Objects
    read are shared with the store: ``clone()`` one before changing it, then pass it to
    ``update``."""

    def __init__(self, store: MemoryStore, version: int) -> None:
        super().__init__(store)
        self.version = version
        self._now = store.clock.now()
        self._changes: dict[tuple[str, str], Change] = {}
        # Since the savepoint (``None``: none is set): each key written and the change it
        # had before (``None``: it had none), or, once a change was dropped, a copy of the
        # changes as they were at the savepoint.
        self._journal: builtins.list[tuple[tuple[str, str], Change | None]] | None = None
        self._saved: dict[tuple[str, str], Change] | None = None
        self._version_model: Version | None = None

    def _new_version(self) -> Version:
        """The Version every object this transaction writes gets. One model for all of them:
        stored objects are never changed in place, so they can share it (as the shallow
        copies writers make share the parts they did not change)."""
        version = self._version_model
        if version is None:
            version = self._version_model = Version(Index=self.version)
        return version

    @property
    def changes(self) -> builtins.list[Change]:
        return builtins.list(self._changes.values())

    def __len__(self) -> int:
        return len(self._changes)

    def _pending(self, kind: str, obj_id: str) -> Change | None:
        return self._changes.get((kind, obj_id))

    def _put_change(self, key: tuple[str, str], change: Change) -> None:
        if self._journal is not None and self._saved is None:
            self._journal.append((key, self._changes.get(key)))
        self._changes[key] = change

    def _drop_change(self, key: tuple[str, str]) -> None:
        if self._journal is not None and self._saved is None:
            # Undoing a drop would put the change back at the end, out of its order: keep
            # the changes as they were at the savepoint instead (drops are rare).
            self._saved = self._at_savepoint()
        del self._changes[key]

    def _at_savepoint(self) -> dict[tuple[str, str], Change]:
        changes = dict(self._changes)
        for key, before in reversed(self._journal or ()):
            if before is None:
                changes.pop(key, None)
            else:
                changes[key] = before  # the key is still there: its place is unchanged
        return changes

    def _savepoint(self) -> None:
        """Remember the changes as they are now, for ``_rollback``."""
        if self._journal is None:
            self._journal = []
        else:
            self._journal.clear()  # ``batch`` sets one per function: no new list each time
        self._saved = None

    def _rollback(self) -> None:
        """Undo every change since ``_savepoint``, leaving the others in their order."""
        self._changes = self._saved if self._saved is not None else self._at_savepoint()
        self._savepoint()

    def get(self, cls: type[T], obj_id: str) -> T | None:
        kind = cls.KIND
        ch = self._changes.get((kind, obj_id))
        if ch is not None:
            return None if ch.action is Action.REMOVE else cast("T", ch.obj)
        return cast("T | None", self._store._latest(kind, obj_id))

    def _overlay(
        self, kind: str, base: dict[str, T], match: Callable[[StoredObject], bool]
    ) -> builtins.list[T]:
        """``base`` (what is applied) with the changes of the proposals in flight and then
        this transaction's over it, each object kept if ``match`` says so."""
        unapplied = self._store._unapplied.get(kind)
        if not self._changes and not unapplied:
            return builtins.list(base.values())
        result = dict(base)
        if unapplied:
            for obj_id, (_, ch) in unapplied.items():
                result.pop(obj_id, None)
                if ch.action is not Action.REMOVE and match(ch.obj):
                    result[obj_id] = cast(T, ch.obj)
        for (k, obj_id), ch in self._changes.items():
            if k != kind:
                continue
            result.pop(obj_id, None)
            if ch.action is not Action.REMOVE and match(ch.obj):
                result[obj_id] = cast(T, ch.obj)  # changes of ``kind`` are ``T`` objects
        return builtins.list(result.values())

    def list(self, cls: type[T]) -> builtins.list[T]:
        return self._overlay(cls.KIND, self._table(cls).objects, lambda _: True)

    def find(self, cls: type[T], index: str, key: Any) -> builtins.list[T]:
        fn = INDEXES[cls.KIND][index]
        return self._overlay(cls.KIND, self._table(cls).find(index, key), lambda o: key in fn(o))

    def find_by_prefix(self, cls: type[T], prefix: str) -> builtins.list[T]:
        return [o for o in self.list(cls) if o.ID.startswith(prefix)]

    def count(self, cls: type[StoredObject]) -> int:
        return len(self.list(cls))

    def _check_unique(self, obj: StoredObject) -> None:
        index = UNIQUE_INDEXES.get(obj.KIND)
        if index is None:
            return
        for key in INDEXES[obj.KIND][index](obj):
            for other in self.find(type(obj), index, key):
                if other.ID != obj.ID:
                    raise Conflict("name conflicts with an existing object")

    def create(self, obj: T) -> T:
        if not obj.ID:
            raise ValueError("object has no ID")
        if self.get(type(obj), obj.ID) is not None:
            raise Conflict(f"{obj.KIND} {obj.ID} already exists")
        self._check_unique(obj)
        # A new Version rather than setting the one it has, which it may share with an object
        # it was copied from (model_copy is shallow), in the store perhaps. Set in the
        # object's values directly: pydantic's ``__setattr__`` costs a few calls each, and
        # validates nothing here (``validate_assignment`` is off).
        values = obj.__dict__
        values["Version"] = self._new_version()
        values["CreatedAt"] = values["UpdatedAt"] = self._now
        prev = self._pending(obj.KIND, obj.ID)
        # Created after being removed in the same transaction: it is an update to watchers.
        action = Action.UPDATE if prev is not None else Action.CREATE
        self._put_change((obj.KIND, obj.ID), Change(action, obj))
        return obj

    def update(self, obj: T) -> T:
        kind, obj_id = obj.KIND, obj.ID
        prev = self._changes.get((kind, obj_id))
        if prev is None:
            current = self._store._latest(kind, obj_id)
        else:
            current = None if prev.action is Action.REMOVE else prev.obj
        if current is None:
            raise NotFound(f"{obj.KIND} {obj.ID} not found")
        if current is obj:
            raise RuntimeError("update() needs a clone; objects read from the store are shared")
        if obj.Version.Index != current.Version.Index:
            raise OutOfSequence()
        self._check_unique(obj)
        values = obj.__dict__  # as in ``create``
        values["Version"] = self._new_version()
        values["UpdatedAt"] = self._now
        action = prev.action if prev is not None else Action.UPDATE
        self._put_change((kind, obj_id), Change(action, obj))
        return obj

    def delete(self, cls: type[StoredObject], obj_id: str) -> None:
        current = self.get(cls, obj_id)
        if current is None:
            raise NotFound(f"{cls.KIND} {obj_id} not found")
        prev = self._pending(cls.KIND, obj_id)
        if prev is not None and prev.action is Action.CREATE:
            self._drop_change((cls.KIND, obj_id))
            return
        base = self._store._latest(cls.KIND, obj_id) or current
        self._put_change((cls.KIND, obj_id), Change(Action.REMOVE, base))


class ApplyingProposer:
    """The proposer of a store that keeps nothing on disk (tests, the simulated runtime):
    applies at once, the writer's objects as they are (as a raft leader does; with
    ``CHECK_PROPOSALS`` on, after checking they are what the log would give back)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def propose(self, proposal: Proposal) -> None:
        if CHECK_PROPOSALS:
            check_proposal(proposal, encode_proposal(proposal))
        self._store.apply(proposal)


@dataclass(eq=False)
class _InFlight:
    """A proposal submitted to a ``PipelinedProposer`` and not yet settled."""

    version: int
    commit: asyncio.Future[None]  # its commit and apply here (or the error it ended with)


@dataclass(eq=False)
class _QueuedUpdate:
    """An update waiting for the write lock, and what its caller gets: the value its function
    returned or the error it (or its proposal) ended with."""

    fn: Callable[[Tx], Any]
    outcome: asyncio.Future[Any]
    # Taken into a proposal: its outcome comes with that proposal's commit (which, with a
    # pipelined proposer, may come after the write lock has passed on).
    taken: bool = False
    times: WriteTimes | None = None  # with slow writes logged (see ``slow_writes``)
    urgent: bool = False  # let in before the other writers waiting (see ``write_lock``)


def _settle_updates(
    group: list[tuple[_QueuedUpdate, Any, BaseException | None]], failed: BaseException | None
) -> None:
    for queued_update, value, err in group:
        outcome = queued_update.outcome
        if outcome.done():
            continue  # its caller was cancelled once its proposal was made: nobody asks
        error = failed if failed is not None else err
        if isinstance(error, asyncio.CancelledError):
            outcome.cancel()
        elif error is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(value)


async def _until_settled(mine: _QueuedUpdate, commit: Awaitable[None], proposal: Proposal) -> None:
    """Await the commit of the group ``mine`` leads, which settles every outcome in it (its
    error, if any, is raised from ``mine``'s outcome by the caller: raised from here too, it
    would leave that outcome's unretrieved). The commit goes on if the caller is cancelled;
    its outcome is then cancelled: nobody will ask for it."""
    try:
        await shielded(commit, f"the commit of version {proposal.version}")
    except asyncio.CancelledError:
        mine.outcome.cancel()
        raise
    except Exception as err:
        if not mine.outcome.done():  # settled with the group's, always: never left waiting
            mine.outcome.set_exception(err)


def _failed(commit: asyncio.Future[None]) -> bool:
    """Whether a settled commit failed (retrieving its error)."""
    return commit.cancelled() or commit.exception() is not None


def _give_up(acquiring: asyncio.Future[Any], lock: WriteLock) -> None:
    """No longer wait for ``lock``: release it if the wait got it, else stop waiting (a wait
    cancelled once woken passes the lock on to the next)."""
    if acquiring.done():
        if not acquiring.cancelled() and acquiring.exception() is None:
            lock.release()
    else:
        acquiring.cancel()


class MemoryStore:
    def __init__(self, clock: Clock | None = None, proposer: Proposer | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._tables: dict[str, Table] = {kind: Table(kind) for kind in OBJECT_TYPES}
        self._hub = WatchHub()
        self._write_lock = WriteLock()
        self._queued_updates: deque[_QueuedUpdate] = deque()
        self._pipeline: PipelinedProposer | None = None
        self.proposer = proposer or ApplyingProposer(self)
        # The proposals in flight (with a pipelined proposer), oldest first; the chain they
        # were submitted on; whether one of them failed (those after it fail too, and the
        # next write waits for all of them to settle, then starts from what is applied).
        self._in_flight: deque[_InFlight] = deque()
        self.max_in_flight = MAX_PROPOSALS_IN_FLIGHT
        # Writes that take this many seconds or more are logged with where their time went
        # (None: off; see ``slow_writes``).
        self.slow_writes: float | None = None
        self._chain: object | None = None
        self._chain_failed = False
        # The changes of the proposals in flight, by kind and ID, with their version (the
        # newest change of each object): what a transaction reads over the applied tables.
        self._unapplied: dict[str, dict[str, tuple[int, Change]]] = {}
        # Version of the last applied proposal: the Version.Index of the newest object.
        self.version = 0
        # How many times the whole state was replaced (``restore``, which tells no watcher):
        # a watcher that keeps figures from events reads the tables again when it changes.
        self.restores = 0
        # With CHECK_PROPOSALS on (tests): catches an object changed after it was stored.
        self._texts = StoredTexts() if CHECK_PROPOSALS else None
        # One instance of each distinct task spec, shared by the tasks stored with it.
        self._interner = Interner()

    @property
    def proposer(self) -> Proposer:
        return self._proposer

    @proposer.setter
    def proposer(self, proposer: Proposer) -> None:
        self._proposer = proposer
        self._pipeline = proposer if isinstance(proposer, PipelinedProposer) else None

    # --- reads ------------------------------------------------------------------------------

    def _latest(self, kind: str, obj_id: str) -> StoredObject | None:
        """An object as the next transaction starts from: as the newest proposal in flight
        leaves it, else as applied."""
        unapplied = self._unapplied.get(kind)
        if unapplied:
            entry = unapplied.get(obj_id)
            if entry is not None:
                change = entry[1]
                return None if change.action is Action.REMOVE else change.obj
        return self._tables[kind].objects.get(obj_id)

    def decode_task(self, raw: dict[str, Any]) -> Task:
        """A task from its JSON values (a raft entry's), decoded as the store keeps it: see
        ``Interner.decode_task`` (``raw`` is the caller's no longer)."""
        return self._interner.decode_task(raw)

    def view(self) -> ReadTx:
        return ReadTx(self)

    def watch(
        self, kinds: Iterable[str] | None = None, filt: EventFilter | None = None
    ) -> Subscription:
        return self._hub.subscribe(frozenset(kinds) if kinds is not None else None, filt)

    def view_and_watch(
        self, kinds: Iterable[str] | None = None, filt: EventFilter | None = None
    ) -> tuple[ReadTx, Subscription]:
        """A read of the current state and a subscription to every change after it."""
        return self.view(), self.watch(kinds, filt)

    def view_and_listen(self, fn: EventListener) -> tuple[ReadTx, Listening]:
        """A read of the current state, and ``fn`` called with every proposal's events
        after it (see ``WatchHub.listen``)."""
        return self.view(), self._hub.listen(fn)

    # --- writes -----------------------------------------------------------------------------

    async def update(self, fn: Callable[[Tx], R], urgent: bool = False) -> R:
        """Run ``fn`` in a transaction and commit what it changed; return what ``fn`` returned.

        ``fn`` is synchronous, so no other write interleaves with it; writes are committed one
        at a time, in order. If ``fn`` raises, nothing of it is committed. Once a proposal is
        handed to the proposer it runs to the end even if the caller is cancelled: a write
        made durable must also be applied, or the log and the tables would disagree.

        Updates that wait for the store's write lock are committed together (a group
        commit): the caller that gets the lock runs, in the order they came, its own update
        and every one queued behind it, each as if alone (one that raises is undone alone),
        and commits them in one proposal. Committed one by one, a rolling update's 100
        workers, or 100 tasks' delayed starts, each waited for the 99 proposals before its
        own (issue 15).

        ``urgent``: a user's write (the control API's), let in at the write lock before the
        writers already waiting (``write_lock``); the updates queued before it still come
        in its proposal."""
        mine = _QueuedUpdate(fn, asyncio.get_running_loop().create_future(), urgent=urgent)
        if self.slow_writes is None:
            return cast("R", await self._update(mine))
        mine.times = times = WriteTimes(self.clock.monotonic())
        try:
            return cast("R", await self._update(mine))
        finally:
            self._log_if_slow(mine, times)

    async def _update(self, mine: _QueuedUpdate) -> Any:
        started = metrics.stopwatch()
        self._queued_updates.append(mine)
        try:
            locked = await self._lock_unless_written(mine)
        except BaseException:
            mine.outcome.cancel()  # not yet taken into a proposal: none will take it now
            raise
        if locked:
            waiting = self.clock.monotonic() if mine.times is not None else 0.0
            try:
                await self._room_for_a_proposal()
            except BaseException:
                self._write_lock.release()
                if not mine.outcome.done():
                    mine.outcome.cancel()  # not taken into a proposal: none will take it now
                raise
            if mine.times is not None:
                mine.times.builder = True
                mine.times.room_wait = self.clock.monotonic() - waiting
            try:
                proposal, group = self._group_of_updates(mine)
            except BaseException:
                self._write_lock.release()
                raise
            if proposal is None:
                self._write_lock.release()
                _settle_updates(group, None)
            elif self._pipeline is not None:
                commit: asyncio.Future[None] | None = None
                try:
                    commit = self._submit(self._pipeline, proposal)
                except BaseException as err:
                    _settle_updates(group, err)  # raised below, from ``mine``'s outcome
                finally:
                    self._write_lock.release()
                if commit is not None:
                    await _until_settled(mine, self._settle_when_committed(commit, group), proposal)
            else:
                await _until_settled(mine, self._commit_updates(proposal, group), proposal)
        result = await mine.outcome
        metrics.STORE_WRITE_TX_LATENCY.observe(metrics.since(started))
        return result

    def _log_if_slow(self, update: _QueuedUpdate, times: WriteTimes) -> None:
        ended = self.clock.monotonic()
        if self.slow_writes is None or ended - times.started < self.slow_writes:
            return
        if not update.outcome.done() or update.outcome.cancelled():
            outcome = "given up on"
        elif update.outcome.exception() is not None:
            outcome = f"failed: {type(update.outcome.exception()).__name__}"
        else:
            outcome = "done"
        name = getattr(update.fn, "__qualname__", type(update.fn).__name__)
        log.info("%s", times.describe(name, ended, outcome))

    async def _lock_unless_written(self, mine: _QueuedUpdate) -> bool:
        """Take the write lock (True), or return as soon as another caller's proposal has
        written ``mine``, or once the lock comes while ``mine`` is in a proposal in flight
        (False): waiting for the lock then would only cost a turn of the loop per update
        grouped, one after the other."""
        lock = self._write_lock
        if not lock.locked():
            await lock.acquire(mine.urgent)  # free: taken at once
            return True
        acquiring = asyncio.ensure_future(lock.acquire(mine.urgent))
        try:
            await asyncio.wait({acquiring, mine.outcome}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            _give_up(acquiring, lock)
            raise
        if not acquiring.done():
            _give_up(acquiring, lock)
            return False
        if mine.taken:
            # Both at once, or taken into a proposal still in flight: the lock is for the next.
            lock.release()
            return False
        return True

    def _group_of_updates(
        self, mine: _QueuedUpdate
    ) -> tuple[Proposal | None, list[tuple[_QueuedUpdate, Any, BaseException | None]]]:
        """The queued updates up to and including ``mine`` (then more while the proposal has
        room and time), each run in one transaction; the proposal (None: nothing changed)."""
        tx = Tx(self, self._last_version() + 1)
        group: list[tuple[_QueuedUpdate, Any, BaseException | None]] = []
        queued = self._queued_updates
        building = metrics.stopwatch()
        mine_in = False
        while queued:
            if mine_in and (
                len(tx) >= MAX_CHANGES_PER_PROPOSAL
                or metrics.since(building) >= MAX_SECONDS_PER_PROPOSAL
            ):
                break
            queued_update = queued.popleft()
            if queued_update.outcome.done():
                continue  # its caller was cancelled while it waited
            queued_update.taken = True
            if queued_update.times is not None:
                queued_update.times.taken = self.clock.monotonic()
            mine_in = mine_in or queued_update is mine
            tx._savepoint()
            try:
                value = queued_update.fn(tx)
            except BaseException as err:
                tx._rollback()
                group.append((queued_update, None, err))
            else:
                group.append((queued_update, value, None))
        proposal = Proposal(tx.version, tx.changes) if tx.changes else None
        if self.slow_writes is not None:
            built = self.clock.monotonic()
            for queued_update, _, _ in group:
                if queued_update.times is not None:
                    queued_update.times.built = built
                    queued_update.times.group = len(group)
                    queued_update.times.changes = len(tx.changes)
        return proposal, group

    # --- proposals in flight (with a pipelined proposer) --------------------------------------

    def _last_version(self) -> int:
        """The version of the newest proposal in flight, else of the last one applied."""
        return self._in_flight[-1].version if self._in_flight else self.version

    async def _room_for_a_proposal(self) -> None:
        """With the write lock held: wait until the next proposal may be built and submitted:
        fewer than ``max_in_flight`` in flight, on a chain that goes on. Once one
        failed, or the proposer can no longer follow the chain (a new leader), every one in
        flight settles first and the next write starts from what is applied."""
        in_flight = self._in_flight
        while in_flight:  # only ever with a pipeline
            assert self._pipeline is not None
            if (
                not self._chain_failed
                and len(in_flight) < self.max_in_flight
                and self._pipeline.continues(self._chain)
            ):
                return
            # Its done callback (``_settled``, added first) has run when this wakes.
            await asyncio.wait({in_flight[0].commit})
        # Nothing in flight: a chain taken for a submission that then failed is not followed.
        self._start_afresh()

    def _submit(self, pipeline: PipelinedProposer, proposal: Proposal) -> asyncio.Future[None]:
        """With the write lock held: hand ``proposal`` to the pipeline (raises if it cannot
        take it) and put it in flight; the future of its commit."""
        if self._chain is None:
            self._chain = pipeline.chain()
        commit = asyncio.ensure_future(pipeline.submit(proposal, self._chain))
        record = _InFlight(proposal.version, commit)
        self._in_flight.append(record)
        unapplied = self._unapplied
        version = proposal.version
        for change in proposal.changes:
            bucket = unapplied.get(change.obj.KIND)
            if bucket is None:
                bucket = unapplied[change.obj.KIND] = {}
            bucket[change.obj.ID] = (version, change)
        commit.add_done_callback(partial(self._settled, record))
        return commit

    def _settled(self, record: _InFlight, commit: asyncio.Future[None]) -> None:
        self._in_flight.remove(record)
        # Retrieved here, so that one nobody awaits (its writer cancelled) is not reported
        # as never retrieved; its writers, if any, hear it from ``_settle_when_committed``.
        if _failed(commit):
            self._chain_failed = True
        if not self._in_flight:
            # The last one: what it and those before it changed is applied, or failed and
            # is dropped now rather than held until the next write.
            self._start_afresh()

    def _start_afresh(self) -> None:
        """Nothing in flight: the tables are all there is, and the next proposal starts a
        new chain."""
        self._unapplied.clear()
        self._chain = None
        self._chain_failed = False

    async def _settle_when_committed(
        self,
        commit: asyncio.Future[None],
        group: list[tuple[_QueuedUpdate, Any, BaseException | None]],
    ) -> None:
        try:
            await commit
        except BaseException as err:
            _settle_updates(group, err)
            raise
        _settle_updates(group, None)

    async def _commit_updates(
        self, proposal: Proposal, group: list[tuple[_QueuedUpdate, Any, BaseException | None]]
    ) -> None:
        """Propose, let the next writer in, and give each update of the group its outcome;
        all of it even if the caller that proposes is cancelled meanwhile (its companions
        wait for their outcomes)."""
        try:
            await self.proposer.propose(proposal)
        except BaseException as err:
            _settle_updates(group, err)
            raise
        else:
            _settle_updates(group, None)
        finally:
            self._write_lock.release()

    async def _commit_shielded(self, proposal: Proposal) -> None:
        """Commit ``proposal`` to the end even if the caller is cancelled meanwhile (its
        error then logged, not lost)."""
        await shielded(self._commit(proposal), f"the commit of version {proposal.version}")

    async def _commit(self, proposal: Proposal) -> None:
        """Propose, then let the next writer in (the lock is held since the transaction)."""
        try:
            await self.proposer.propose(proposal)
        finally:
            self._write_lock.release()

    async def batch(self, fns: Iterable[Callable[[Tx], Any]]) -> None:
        """Run many small updates, committing them in proposals of up to
        ``MAX_CHANGES_PER_PROPOSAL`` changes, or of what ``MAX_SECONDS_PER_PROPOSAL`` of
        running them made. A function that raises is skipped alone. ``fns`` is read as the
        functions run, across proposals (other writers may commit between two): it must not
        change meanwhile."""
        started = metrics.stopwatch()
        # Taken one at a time, as each runs: a generator of many functions (the scheduler's,
        # one per task placed) never has them all alive at once, which would cost memory and
        # garbage collections over the whole store.
        pending = iter(fns)
        fn: Callable[[Tx], Any] | None = next(pending, None)
        commits: list[asyncio.Future[None]] = []  # this batch's proposals in flight
        while fn is not None:
            await self._write_lock.acquire()
            try:
                await self._room_for_a_proposal()
                failed = next((c for c in commits if c.done() and _failed(c)), None)
                if failed is not None:
                    await failed  # raises: as one proposal failing ends a batch unpipelined
                tx = Tx(self, self._last_version() + 1)
                # Work time on the performance counter (as latencies are), not the clock.
                building = metrics.stopwatch()
                ran = False
                while fn is not None and len(tx) < MAX_CHANGES_PER_PROPOSAL:
                    if ran and metrics.since(building) >= MAX_SECONDS_PER_PROPOSAL:
                        break
                    ran = True
                    tx._savepoint()
                    try:
                        fn(tx)
                    except Exception:
                        tx._rollback()
                    fn = next(pending, None)
            except BaseException:
                self._write_lock.release()
                raise
            if not tx.changes:
                self._write_lock.release()
                if fn is not None:
                    # Its time is up with nothing to commit: the loop still gets its turn. A new
                    # leader's status flush, where 1,000 reconnecting agents report again their
                    # 100,000 tasks as the store already has them, held the loop for the whole
                    # of them in one go (issue 15).
                    await asyncio.sleep(0)
                continue
            proposal = Proposal(tx.version, tx.changes)
            if self._pipeline is None:
                await self._commit_shielded(proposal)
                continue
            try:
                commits.append(self._submit(self._pipeline, proposal))
            finally:
                self._write_lock.release()
        if commits:
            await shielded(asyncio.gather(*commits), "a batch's commits")
        metrics.STORE_BATCH_LATENCY.observe(metrics.since(started))

    def apply(self, proposal: Proposal) -> None:
        """Apply a committed proposal to the tables and tell the watchers. Called by the
        proposer, once per proposal, in log order, on every manager."""
        events: list[Event] = []
        texts = self._texts
        intern_task = self._interner.task
        # One Version for the proposal's objects, as the leader's transaction gave them: a
        # follower decodes one per object (about 330 bytes each). Stored, never changed.
        # Likewise the time it wrote them (a datetime each, 48 bytes, immutable).
        version: Version | None = None
        stamp: Any = None
        if self._unapplied:
            self._applied_in_flight(proposal)
        for ch in proposal.changes:
            obj = ch.obj
            table = self._tables[obj.KIND]
            if ch.action is not Action.REMOVE:
                values = obj.__dict__
                own = values["Version"]
                if own.Index == proposal.version:
                    if version is None:
                        version = own
                    elif own is not version:
                        values["Version"] = version
                    updated = values["UpdatedAt"]
                    if stamp is None:
                        stamp = updated
                    elif updated is not stamp and updated == stamp:
                        values["UpdatedAt"] = stamp
                        if values["CreatedAt"] == stamp:
                            values["CreatedAt"] = stamp
                if obj.KIND == "task":
                    intern_task(cast(Task, obj))
            if ch.action is Action.REMOVE:
                old = table.remove(ch.obj.ID)
                if old is not None:
                    events.append(Event(Action.REMOVE, old, old, proposal.version))
            else:
                old = table.put(ch.obj)
                action = Action.CREATE if old is None else Action.UPDATE
                events.append(Event(action, ch.obj, old, proposal.version))
            if texts is not None:
                if old is not None:
                    texts.left(old)
                if ch.action is not Action.REMOVE:
                    texts.stored(ch.obj)
        self.version = max(self.version, proposal.version)
        events.append(Event(None, None, None, proposal.version))
        self._hub.publish(events)

    def _applied_in_flight(self, proposal: Proposal) -> None:
        """Forget the unapplied changes ``proposal`` made (not those a later one made since)."""
        unapplied = self._unapplied
        for ch in proposal.changes:
            bucket = unapplied.get(ch.obj.KIND)
            if bucket is None:
                continue
            entry = bucket.get(ch.obj.ID)
            if entry is not None and entry[0] == proposal.version:
                del bucket[ch.obj.ID]
                if not bucket:
                    del unapplied[ch.obj.KIND]

    # --- snapshots --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "Version": self.version,
            "Objects": {
                kind: [o.to_json() for o in table.objects.values()]
                for kind, table in self._tables.items()
            },
        }

    def snapshot_json(self) -> str:
        """``snapshot()`` as compact JSON text, each object serialized by pydantic directly
        (see ``Model.to_json_text``): what a raft snapshot holds of the store."""
        out = io.BytesIO()
        self.write_snapshot_json(out)
        return out.getvalue().decode()

    def write_snapshot_json(self, out: io.BytesIO) -> None:
        """Write ``snapshot_json`` to ``out`` in UTF-8, each object serialized by pydantic
        straight to bytes (``to_json_text``'s, encoded), so that the document is the only
        copy of the store being made. (Text joined, then encoded, held three copies at once:
        about 70 MB each at 100,000 tasks.)"""
        out.write(b'{"Version":%d,"Objects":{' % int(self.version))
        for n, (kind, table) in enumerate(self._tables.items()):
            out.write(b'%s"%s":[' % (b"," if n else b"", kind.encode()))
            for i, o in enumerate(table.objects.values()):
                if i:
                    out.write(b",")
                out.write(o.__pydantic_serializer__.to_json(o, exclude_none=True))
            out.write(b"]")
        out.write(b"}}")

    def restore(self, data: dict[str, Any], consume: bool = False) -> None:
        """Replace the whole state (at start-up, or from a leader's snapshot). Watchers see
        no events: they must re-read, as after any snapshot install. ``consume``: ``data``
        is the caller's no longer, and each object's raw values are dropped as soon as it is
        decoded, so the decoded store reuses their memory (a lower peak for a large one)."""
        self._tables = {kind: Table(kind) for kind in OBJECT_TYPES}
        self._interner.clear()
        if self._in_flight:
            # Built on a state replaced now (a leader does not install snapshots: this is
            # one no longer): the next write waits for them to settle and starts afresh.
            self._chain_failed = True
        for kind, objs in data.get("Objects", {}).items():
            table = self._tables[kind]
            for i, raw in enumerate(objs):
                if consume:
                    objs[i] = None
                obj: StoredObject
                if kind == "task":
                    # Its shared parts found by their JSON, not decoded again: see Interner.
                    obj = self._interner.decode_task(raw if consume else dict(raw))
                else:
                    obj = decode_object(kind, raw)
                table.put(obj)
        self.version = int(data.get("Version", 0))
        self.restores += 1
        if self._texts is not None:
            self._texts.clear()

    def close(self) -> None:
        self._hub.close_all()
        if self._texts is not None:
            self._texts.check_all()
