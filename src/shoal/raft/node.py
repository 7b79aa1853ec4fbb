"""The asyncio driver: one ``Core``, its storage, a transport and the application's state
machine, moved along by a tick loop on an injectable clock.

Every change to the core happens in one task (``_run``): requests from other tasks
(proposals, received messages, ticks) are queued and handled there. The order within a Ready
is the one Raft needs: durable write (one SQLite transaction, fsynced) -> messages out ->
snapshot restored and entries applied -> advance. A Ready may take long (a write, a
snapshot of a large store in a thread, a large batch of entries to decode and apply), longer
than an election timeout under load (issue 15: a leader kept silent so was replaced, and
every agent reconnected); meanwhile raft keeps its time: while the write or the snapshot
runs, and between slices of ``LOOP_SLICE`` of applying, the driver hands the core what was
queued (the core takes ticks and messages while a Ready is out, as etcd's does; their effects
go in the next Ready) and sends heartbeats and their answers at once, every other message
still after its Ready's write.

The store's proposer (issue 4 wiring) is a thin adapter over ``propose``: encode the
Proposal, ``await node.propose(data)``; ``apply`` of the state machine decodes each committed
entry (on the leader, an entry of its own: the objects it encoded) and calls ``store.apply``;
``snapshot``/``restore`` are the store's.
"""

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from shoal.clock import Clock, LoopTurns
from shoal.raft import codec
from shoal.raft.core import Core
from shoal.raft.entry_times import EntryTimes
from shoal.raft.snapshot_policy import SnapshotPolicy
from shoal.raft.stand_in import LeaderView, StandInHeartbeats
from shoal.raft.storage import AsyncStorage, Storage
from shoal.raft.ticks import TickPacer
from shoal.raft.types import (
    NONE,
    CommitUnknown,
    ConfChange,
    ConfState,
    EntryType,
    HardState,
    Message,
    NotLeader,
    PersistentState,
    ProposalDropped,
    RaftConfig,
    RaftError,
    Ready,
    Role,
    Status,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long (in election timeouts) the caller of an entry appended by a leader that then lost
# leadership waits to learn whether the next leader committed it or overwrote it.
ORPHAN_TICKS_PER_ELECTION = 3


class Transport(Protocol):
    def send(self, messages: list[Message]) -> None:
        """Queue messages for delivery, without blocking; delivery is best effort. Report a
        failed delivery with ``RaftNode.report_unreachable`` and the outcome of sending a
        snapshot (SNAP) with ``RaftNode.report_snapshot``."""
        ...


class StateMachine(Protocol):
    def apply(self, index: int, data: bytes) -> None:
        """A committed entry; called once per entry, in log order (the leader's no-ops are
        skipped)."""
        ...

    def apply_conf_change(self, index: int, change: ConfChange) -> None:
        """A committed membership change (the transport learns or forgets a peer here)."""
        ...

    def snapshot(self) -> bytes:
        """The state after everything applied so far. Called from a worker thread when the
        storage is threaded; nothing is applied until it returns."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the state by a snapshot's."""
        ...


class StorageFailed(RaftError):
    def __init__(self, message: str = "raft: storage failed; the node stopped") -> None:
        super().__init__(message)


class RaftNode:
    def __init__(
        self,
        node_id: int,
        storage: Storage | AsyncStorage,
        transport: Transport,
        state_machine: StateMachine,
        clock: Clock,
        tick_interval: float = 0.1,
        config: RaftConfig | None = None,
        rng: random.Random | None = None,
        on_leadership: Callable[[bool], None] | None = None,
        on_removed: Callable[[], None] | None = None,
        stand_in: StandInHeartbeats | None = None,
    ) -> None:
        """``stand_in``: where to publish, at each turn, what a thread needs to send this
        leader's heartbeats while the event loop is held up (see shoal.raft.stand_in)."""
        self.id = node_id
        self.storage = storage if isinstance(storage, AsyncStorage) else AsyncStorage(storage)
        self.transport = transport
        self.sm = state_machine
        self.clock = clock
        self.tick_interval = tick_interval
        self.config = config or RaftConfig()
        self._rng = rng or random.Random()
        self.on_leadership = on_leadership
        self.on_removed = on_removed
        self.stand_in = stand_in
        self.core: Core | None = None
        self._inbox: deque[Callable[[Core], None]] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        self._failure: BaseException | None = None
        self._proposals: dict[int, tuple[int, asyncio.Future[None]]] = {}
        self._conf_waiters: dict[int, tuple[int, asyncio.Future[None]]] = {}
        # The tick at which this node last lost leadership with entries of its own uncommitted
        # (0: none waiting). Those entries wait to be applied or overwritten, for a while.
        self._orphaned_at = 0
        self._read_seq = 0
        self._reads: dict[int, tuple[int, asyncio.Future[None]]] = {}  # ctx -> (tick, fut)
        self._read_ready: list[tuple[int, asyncio.Future[None]]] = []
        self._ticks = 0
        self._ready_term = 0  # the term in which this leader has applied its no-op
        self._noop_index = 0
        self._signalled_leader = False
        # Waiting for the next change of leader (see ``leader_change``).
        self._leader_waiters: list[asyncio.Future[None]] = []
        self._snapshots = SnapshotPolicy(self.config)
        self._applied = asyncio.Event()  # set whenever entries were applied
        # The last entry the state machine holds. The log's own count moves only at
        # ``advance``, and a Ready may wait (for the loop, for a commit index's write) between
        # applying an entry and that: a writer answered meanwhile must learn its entry's index.
        self._sm_applied = 0
        self._restart_commit = 0
        self._replay_started: float | None = None  # replaying the log since (see _log_restart)
        self._snapshot_requests: list[asyncio.Future[None]] = []
        self._noop_term = 0  # the term whose no-op ``_noop_index`` is
        self._elected_at = 0.0  # when this node last became leader (clock's monotonic)
        # The hard state last written to disk (None until the node starts).
        self._durable: HardState | None = None
        self.pauses = 0  # how many times applying a Ready let the loop run (see LOOP_SLICE)
        # Entries this leader proposed that take this many seconds or more from submitted to
        # applied are logged with each step's share (None: off; see ``entry_times``).
        self.slow_entries: float | None = None
        self._entry_times: dict[int, EntryTimes] = {}

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, initial: PersistentState | None = None) -> None:
        """Load the persisted state and start. ``initial`` is written first if storage is
        empty: ``core.bootstrap(...)`` for a founder, nothing for a joining node (the leader
        sends it the log)."""
        state = await self.storage.load()
        if initial is not None and _is_empty(state):
            await self.storage.save(initial.hard_state, initial.entries, initial.snapshot)
            state = await self.storage.load()
        self.core = Core(self.id, self.config, self._rng, state)
        self._durable = state.hard_state
        self._restart_commit = state.hard_state.commit
        started = self.clock.monotonic()
        if state.snapshot is not None:
            self.sm.restore(state.snapshot.data)
            self._sm_applied = state.snapshot.index
            self._snapshots.snapshotted(state.snapshot.index, len(state.snapshot.data))
        self._log_restart(state, self.clock.monotonic() - started)
        self._tasks = [
            asyncio.create_task(self._run(), name=f"raft-{self.id}"),
            asyncio.create_task(self._ticker(), name=f"raft-{self.id}-tick"),
        ]
        self._wake.set()  # apply what the disk says is committed without waiting for a tick

    def _log_restart(self, state: PersistentState, restoring: float) -> None:
        """What a restart has to do before it catches up (issue 15: a manager restarted
        after a burst of writes replayed a tail as large as its snapshot)."""
        snap = state.snapshot
        replay = [e for e in state.entries if self._sm_applied < e.index <= self._restart_commit]
        if snap is None and not replay:
            return
        if replay:
            self._replay_started = self.clock.monotonic()
        log.info(
            "raft: restored a snapshot of %.1f MB (to entry %d) in %.1f s; %d entries "
            "(%.1f MB) committed after it to replay",
            len(snap.data) / 1e6 if snap else 0.0,
            snap.index if snap else 0,
            restoring,
            len(replay),
            sum(len(e.data) for e in replay) / 1e6,
        )

    async def wait_applied(self, index: int | None = None) -> None:
        """Wait until entries up to ``index`` are applied here; by default, everything the
        disk said was committed when the node started (the state before a restart)."""
        target = self._restart_commit if index is None else index
        while self.core is not None and self.core.log.applied < target:
            if self._failure is not None or self._stopped:
                raise self._failure or NotLeader(NONE, "raft: node stopped")
            self._applied.clear()
            await self._applied.wait()

    async def stop(self) -> None:
        self._stopped = True
        if self.stand_in is not None:
            self.stand_in.stop()
        self._wake.set()
        self._applied.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        self._fail_all(NotLeader(NONE, "raft: node stopped"))
        await self.storage.close()

    # --- inputs from the transport ---------------------------------------------------------------

    def step(self, msg: Message) -> None:
        """A message from a peer (decoded with ``codec.decode_message``)."""
        self._submit(lambda core: core.step(msg))

    def report_unreachable(self, node_id: int) -> None:
        self._submit(lambda core: core.report_unreachable(node_id))

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        self._submit(lambda core: core.report_snapshot(node_id, ok))

    # --- queries --------------------------------------------------------------------------------

    @property
    def leader(self) -> int:
        return self.core.leader if self.core else NONE

    @property
    def is_leader(self) -> bool:
        return self.core is not None and self.core.is_leader

    @property
    def leader_ready(self) -> bool:
        """Leader, and everything committed before its term is applied here: the state
        machine is current, so writes built on it are safe to propose."""
        return self.core is not None and self.core.is_leader and self._ready_term == self.core.term

    @property
    def term(self) -> int:
        return self.core.term if self.core else 0

    @property
    def conf(self) -> ConfState:
        return self.core.conf if self.core else ConfState()

    @property
    def removed(self) -> bool:
        return self.core is not None and self.core.removed

    @property
    def applied(self) -> int:
        """The index of the last entry applied to the state machine here: what a reader of
        the state machine sees, even part way through applying a Ready."""
        log_applied = self.core.log.applied if self.core is not None else 0
        return max(self._sm_applied, log_applied)

    def status(self) -> Status:
        assert self.core is not None
        return self.core.status()

    def reachable(self, node_id: int) -> bool | None:
        return self.core.reachable(node_id) if self.core else None

    def leader_change(self) -> asyncio.Future[None]:
        """A future done at the next change of leader (or of this node's readiness to lead),
        counted from this call: a caller that looked at the leader and then waits misses no
        change in between. (An event each waiter cleared did: a waiter in a task of its own
        cleared it one turn of the loop late, after a change, and slept out its poll instead,
        then turns of a loaded loop: a write forwarded during an election waited for them.)"""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if len(self._leader_waiters) >= 64:  # callers that gave up (timed out) meanwhile
            self._leader_waiters = [f for f in self._leader_waiters if not f.done()]
        self._leader_waiters.append(fut)
        return fut

    async def wait_leader_change(self) -> None:
        """Return at the next change of leader (or of this node's readiness to lead)."""
        await self.leader_change()

    def _leader_changed(self) -> None:
        waiters, self._leader_waiters = self._leader_waiters, []
        for fut in waiters:
            _settle(fut)

    # --- requests -------------------------------------------------------------------------------

    async def propose(self, data: bytes) -> None:
        """Commit ``data`` through the log; returns once it is applied here. Raises NotLeader
        (nothing happened), ProposalDropped (nothing happened: refused, or appended and then
        overwritten by the next leader), CommitUnknown (leadership was lost after the entry
        was appended, and the next leader neither applied nor overwrote it here in time)."""
        chain = self.chain()
        if chain is None:
            raise NotLeader(self.leader)
        # A chain of one: given up on before it is appended (the caller cancelled), nothing
        # is proposed.
        await self.submit(data, chain)

    def chain(self) -> "ProposalChain | None":
        """A chain for proposals to follow one another without waiting (``submit``), in this
        leader's current term; None when it cannot take writes."""
        return ProposalChain(self._ready_term) if self.leader_ready else None

    def continues(self, chain: "ProposalChain") -> bool:
        """Whether a proposal may still be submitted after those of ``chain``: none of them
        failed, and this node still leads, ready, in the term they were made in."""
        return chain.broken is None and self.leader_ready and self._ready_term == chain.term

    def submit(self, data: bytes, chain: "ProposalChain | None") -> asyncio.Future[None]:
        """Put ``data`` in the log after the proposals submitted before it on ``chain``,
        without waiting for them: returns at once a future of its commit, which ends as
        ``propose`` does. It was built on the state they leave, so it is appended only if
        every one of them was: the first to fail breaks the chain, and those after it fail
        with it (ProposalDropped), nothing of them appended. Raises NotLeader at once if
        ``chain`` cannot be followed (see ``continues``)."""
        if chain is None or not self.continues(chain):
            raise NotLeader(self.leader, "raft: not the leader of the chain's term")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        submitted = self.clock.monotonic() if self.slow_entries is not None else 0.0

        def do(core: Core) -> None:
            if chain.broken is not None:
                _settle(fut, ProposalDropped("raft: a proposal this one builds on failed"))
                return
            if fut.done() or core.term != chain.term or not core.is_leader:
                # Given up on (nothing awaits it) or leadership changed: not appended, so
                # neither is anything built on it.
                chain.broken = NotLeader(core.leader)
                _settle(fut, chain.broken)
                return
            try:
                index = core.propose(data)
            except RaftError as err:
                chain.broken = err
                raise
            self._proposals[index] = (chain.term, fut)
            if self.slow_entries is not None:
                self._entry_times[index] = EntryTimes(submitted, self.clock.monotonic())

        self._submit(do, fut)
        if fut.done():  # the node stopped or failed: nothing of the chain goes in now
            chain.broken = chain.broken or NotLeader(NONE, "raft: node stopped")
        return fut

    async def propose_conf_change(self, change: ConfChange) -> None:
        """Propose a membership change; returns once it is applied here."""
        fut = asyncio.get_running_loop().create_future()

        def do(core: Core) -> None:
            if fut.done():
                return
            index = core.propose_conf_change(change)
            self._conf_waiters[index] = (core.term, fut)

        self._submit(do, fut)
        await fut

    async def read_barrier(self) -> None:
        """Wait until this node's state machine reflects every write committed before the
        call (ReadIndex): a read made after it is linearizable. Works on followers too."""
        fut = asyncio.get_running_loop().create_future()
        self._read_seq += 1
        ctx = self._read_seq

        def do(core: Core) -> None:
            core.read_index(ctx)
            self._reads[ctx] = (self._ticks, fut)

        self._submit(do, fut)
        await fut

    async def transfer_leadership(self, to: int = NONE) -> int:
        """Hand leadership to ``to`` (by default the best placed voter) and wait until someone
        else leads; returns the new leader. Raises if the transfer times out."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        target = [to]

        def do(core: Core) -> None:
            target[0] = to or core.best_transferee()
            if target[0] == NONE:
                raise ProposalDropped("raft: no voter to transfer leadership to")
            core.transfer_leadership(target[0])
            _settle(fut)

        self._submit(do, fut)
        await fut
        while True:
            core = self.core
            assert core is not None
            if core.leader not in (NONE, self.id):
                return core.leader
            if core.is_leader and core.lead_transferee == NONE:
                raise ProposalDropped(f"raft: leadership transfer to {target[0]} timed out")
            if self._stopped:
                raise NotLeader(NONE, "raft: node stopped")
            await self._wait_tick_or_change()

    async def snapshot_now(self) -> None:
        """Snapshot everything applied so far and compact the log, as raft does by itself
        every ``snapshot_interval`` entries (or ``snapshot_bytes``); returns once the snapshot
        is durable."""
        fut = asyncio.get_running_loop().create_future()
        self._submit(lambda core: self._snapshot_requests.append(fut), fut)
        await fut

    async def campaign(self) -> None:
        """Start an election now (e.g. the first manager, instead of waiting a timeout)."""
        fut = asyncio.get_running_loop().create_future()

        def do(core: Core) -> None:
            core.campaign()
            _settle(fut)

        self._submit(do, fut)
        await fut

    # --- the loop -------------------------------------------------------------------------------

    def _submit(self, fn: Callable[[Core], None], fut: asyncio.Future[None] | None = None) -> None:
        if self._failure is not None or self._stopped:
            if fut is not None:
                _settle(fut, self._failure or NotLeader(NONE, "raft: node stopped"))
            return

        def guarded(core: Core) -> None:
            try:
                fn(core)
            except RaftError as err:
                if fut is not None:
                    _settle(fut, err)

        self._inbox.append(guarded)
        self._wake.set()

    async def _ticker(self) -> None:
        pacer = TickPacer(self.tick_interval, self.clock.monotonic())
        while not self._stopped:
            await self.clock.sleep(self.tick_interval)
            for _ in range(pacer.due(self.clock.monotonic())):
                self._submit(self._tick)

    def _tick(self, core: Core) -> None:
        self._ticks += 1
        core.tick()
        self._snapshots.tick()
        deadline = self._ticks - 2 * self.config.election_tick
        for ctx, (t, fut) in list(self._reads.items()):
            if t <= deadline:
                del self._reads[ctx]
                _settle(fut, ProposalDropped("raft: read index timed out"))
        if self._orphaned_at and self._ticks - self._orphaned_at >= ORPHAN_TICKS_PER_ELECTION * (
            self.config.election_tick
        ):
            self._give_up_orphans()

    async def _wait_tick_or_change(self) -> None:
        changed = self.leader_change()
        ticked = asyncio.ensure_future(self.clock.sleep(self.tick_interval))
        _, pending = await asyncio.wait({changed, ticked}, return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()

    async def _run(self) -> None:
        core = self.core
        assert core is not None
        try:
            while not self._stopped:
                await self._wake.wait()
                self._wake.clear()
                while self._inbox:
                    self._inbox.popleft()(core)
                while core.has_ready():
                    await self._handle_ready(core, core.ready())
                self._publish(core)
                if self._snapshot_requests:
                    requests, self._snapshot_requests = self._snapshot_requests, []
                    await self._snapshot(core, "asked")
                    for fut in requests:
                        _settle(fut)
                elif why := self._snapshots.due(core.log.applied):
                    # Writes have settled (see SnapshotPolicy): no Ready asks for it then.
                    await self._snapshot(core, why)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.exception("raft node %d stopped", self.id)
            if self.stand_in is not None:
                self.stand_in.stop()
            self._failure = StorageFailed(f"raft: node stopped: {err}")
            self._fail_all(self._failure)
            self._applied.set()

    async def _handle_ready(self, core: Core, rd: Ready) -> None:
        # Two writes to disk need not hold up what follows them (issue 15: under load each
        # wait for a thread costs a turn of a busy loop, 0.1-0.5 s, and a commit took several):
        # - a leader whose term is on disk sends its appends before writing them (the Raft
        #   thesis, 10.2.1): it counts itself in a quorum for an entry at once, but the entry
        #   commits only when followers that wrote it make up the rest of that quorum, and
        #   nothing else in this Ready depends on its own copy;
        # - a new commit index alone (no entries, no snapshot, the term and vote as on disk)
        #   is written while the entries it commits are applied: it is a hint, learned again
        #   from the leader after a restart, and the entries themselves are on disk already.
        # Both writes are over before ``advance``, so the next Ready still waits for them.
        tracing = self.slow_entries is not None and bool(self._entry_times)
        ready_at = self.clock.monotonic() if tracing else 0.0
        send_first = bool(rd.messages) and core.is_leader and core.term == self._durable_term
        if send_first:
            self._send(rd.messages)
        commit_only = self._commit_only(rd)
        deferred: asyncio.Future[None] | None = None
        if commit_only:
            deferred = asyncio.ensure_future(self.storage.save(rd.hard_state, [], None))
        elif rd.must_persist:
            await self._keep_time_while(
                core, self.storage.save(rd.hard_state, rd.entries, rd.snapshot)
            )
        if rd.hard_state is not None and not commit_only:
            self._durable = rd.hard_state
        if rd.messages and not send_first:
            self._send(rd.messages)
        if tracing:
            self._note_times(rd, ready_at)
        if rd.snapshot is not None:
            self.sm.restore(rd.snapshot.data)
            self._sm_applied = rd.snapshot.index
            self._snapshots.snapshotted(rd.snapshot.index, len(rd.snapshot.data))
            # Entries the snapshot covers were never seen here: whether ours made it is unknown.
            self._give_up_orphans(up_to=rd.snapshot.index)
        # Applying a batch of entries decoded one by one takes seconds at 25,000 tasks under
        # load: a leader silent meanwhile for an election timeout (1 to 2 s) is replaced.
        turns = LoopTurns()
        for e in rd.committed_entries:
            if turns.due():
                await self._pause(core)
                turns.restart()
            if e.type is EntryType.CONF_CHANGE:
                self.sm.apply_conf_change(e.index, codec.decode_conf_change(e.data))
            elif e.data:
                self.sm.apply(e.index, e.data)
            self._sm_applied = e.index
            self._snapshots.applied(len(e.data))
            waiter = self._proposals.pop(e.index, None) or self._conf_waiters.pop(e.index, None)
            if waiter is not None:
                term, fut = waiter
                overwritten = ProposalDropped("raft: entry overwritten by a new leader")
                _settle(fut, None if term == e.term else overwritten)
                if tracing:
                    self._log_if_slow(e.index)
        if self._replay_started is not None and self._sm_applied >= self._restart_commit:
            log.info(
                "raft: replayed the entries committed before the restart in %.1f s",
                self.clock.monotonic() - self._replay_started,
            )
            self._replay_started = None
        if self._orphaned_at and not (self._proposals or self._conf_waiters):
            self._orphaned_at = 0
        for rs in rd.read_states:
            pending = self._reads.pop(rs.context, None)
            if pending is not None:
                self._read_ready.append((rs.index, pending[1]))
        if deferred is not None:
            await self._keep_time_while(core, deferred)
            assert rd.hard_state is not None
            self._durable = rd.hard_state
        was_removed = core.removed
        core.advance(rd)
        if rd.committed_entries or rd.snapshot is not None:
            self._applied.set()
        if rd.soft_state is not None:
            self._on_soft_state(core)
        if (
            core.is_leader
            and self._ready_term != core.term
            and self._noop_term == core.term
            and core.log.applied >= self._noop_index
        ):
            self._ready_term = core.term
            log.info(
                "raft: taking writes at term %d (its no-op applied %.0f ms after the election)",
                core.term,
                1000 * (self.clock.monotonic() - self._elected_at),
            )
            self._signal_leadership(True)
        self._serve_reads(core)
        if core.removed and not was_removed and self.on_removed is not None:
            self.on_removed()
        if why := self._snapshots.due(core.log.applied):
            await self._snapshot(core, why)

    def _note_times(self, rd: Ready, ready_at: float) -> None:
        sent = self.clock.monotonic()
        for e in rd.entries:
            times = self._entry_times.get(e.index)
            if times is not None and not times.sent:
                times.sent = sent
        for e in rd.committed_entries:
            times = self._entry_times.get(e.index)
            if times is not None:
                # A lone voter commits an entry in the Ready that writes it: once written.
                times.committed = max(ready_at, times.sent)

    def _log_if_slow(self, index: int) -> None:
        times = self._entry_times.pop(index, None)
        if times is None or self.slow_entries is None:
            return
        applied = self.clock.monotonic()
        if applied - times.submitted >= self.slow_entries:
            log.info("%s", times.describe(index, applied))

    @property
    def _durable_term(self) -> int:
        """The term in the hard state last written to disk."""
        return self._durable.term if self._durable is not None else 0

    def _send(self, messages: list[Message]) -> None:
        try:
            self.transport.send(messages)
        except Exception:
            # Delivery is best effort; raft resends what matters.
            log.exception("raft %d: transport failed to queue messages", self.id)

    def _commit_only(self, rd: Ready) -> bool:
        """Whether all ``rd`` has to write is a later commit index (see ``_handle_ready``)."""
        hs, durable = rd.hard_state, self._durable
        return (
            hs is not None
            and durable is not None
            and not rd.entries
            and rd.snapshot is None
            and hs.term == durable.term
            and hs.vote == durable.vote
        )

    async def _pause(self, core: Core) -> None:
        """Between two slices of a long Ready's entries: let the loop run other work, then
        keep raft's time. What arrived meanwhile (ticks, peers' messages, proposals) is handed
        to the core, which takes them while a Ready is out (its changes go in the next Ready);
        of what it says, heartbeats and their answers leave at once (``take_heartbeats``), the
        rest with the next Ready, after its write to disk, as always."""
        self.pauses += 1
        await asyncio.sleep(0)
        self._keep_time(core)

    async def _keep_time_while(self, core: Core, work: Awaitable[T]) -> T:
        """Await ``work`` (a write to disk, a snapshot in a thread), keeping raft's time
        meanwhile as ``_pause`` does: a snapshot of 100,000 tasks takes 3 s, longer than an
        election timeout."""
        task = asyncio.ensure_future(work)
        try:
            while not task.done():
                self._wake.clear()
                woken = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait((task, woken), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    woken.cancel()
                self._keep_time(core)
        except asyncio.CancelledError:
            task.cancel()
            raise
        return task.result()

    def _keep_time(self, core: Core) -> None:
        """Hand the core what arrived, send the heartbeats (or answers) it has to say."""
        while self._inbox:
            self._inbox.popleft()(core)
        beats = core.take_heartbeats(self._durable_term)
        if beats:
            try:
                self.transport.send(beats)
            except Exception:
                log.exception("raft %d: transport failed to queue messages", self.id)
        self._publish(core)

    def _publish(self, core: Core) -> None:
        """Tell the stand-in that the driver turned, and what a heartbeat needs if this node
        leads: only with its term on disk (a heartbeat speaks for the term; see
        ``Core.take_heartbeats``)."""
        if self.stand_in is None:
            return
        leading = core.is_leader and core.term == self._durable_term and not self._stopped
        view = LeaderView(self.id, core.term, core.heartbeat_commits()) if leading else None
        self.stand_in.publish(view)

    def _on_soft_state(self, core: Core) -> None:
        self._leader_changed()
        # As etcd's raft logs them for Swarm: an operator reading a failover sees when the
        # election started and when it ended, apart from when writes were taken again.
        if core.role is Role.FOLLOWER:
            if core.leader != NONE:
                log.info("raft: following leader %x at term %d", core.leader, core.term)
            else:
                log.info("raft: follower at term %d, no leader known", core.term)
        else:
            log.info("raft: became %s at term %d", core.role, core.term)
        if core.is_leader:
            # Ready for writes once the no-op of this term (the last entry now) is applied.
            self._noop_index = core.log.last_index()
            self._noop_term = core.term
            self._elected_at = self.clock.monotonic()
            return
        self._ready_term = 0
        if self._signalled_leader and core.stepped_down:
            log.warning("raft: stopped leading: %s", core.stepped_down)
            core.stepped_down = ""
        self._signal_leadership(False)
        # Entries this node appended as leader may yet commit under the next leader, or be
        # overwritten by it: their callers wait to learn which (applied with their term: done;
        # another entry at their index: dropped, safe to try again), for a few election
        # timeouts, after which they are told the outcome is unknown.
        if (self._proposals or self._conf_waiters) and not self._orphaned_at:
            self._orphaned_at = self._ticks
        for _, fut in self._reads.values():
            _settle(fut, NotLeader(core.leader, "raft: leader changed during a read"))
        self._reads.clear()

    def _signal_leadership(self, leading: bool) -> None:
        if leading == self._signalled_leader:
            return
        self._signalled_leader = leading
        self._leader_changed()
        if self.on_leadership is not None:
            self.on_leadership(leading)

    def _serve_reads(self, core: Core) -> None:
        still = []
        for index, fut in self._read_ready:
            if core.log.applied >= index:
                _settle(fut)
            else:
                still.append((index, fut))
        self._read_ready = still

    async def _snapshot(self, core: Core, why: str) -> None:
        applied = core.log.applied
        started = self.clock.monotonic()
        if self.storage.threaded:
            # Encoding a large state takes seconds (100,000 tasks: about 3 s): in a thread, so
            # the event loop goes on meanwhile, and raft keeps its time. The state cannot
            # change under it: entries are applied only by this task, which waits here.
            data = await self._keep_time_while(core, asyncio.to_thread(self.sm.snapshot))
        else:
            data = self.sm.snapshot()
        if core.log.applied != applied:
            # The leader's snapshot replaced the log meanwhile (raft took it while we waited):
            # ours describes an older state; theirs is restored with the next Ready.
            return
        snap = core.create_snapshot(data)
        offset = core.compact(self._kept_from(core, snap.index))
        await self._keep_time_while(core, self.storage.save_snapshot(snap, offset))
        self._snapshots.snapshotted(snap.index, len(data))
        log.info(
            "raft: took a snapshot of %.1f MB (to entry %d) in %.1f s (%s)",
            len(data) / 1e6,
            snap.index,
            self.clock.monotonic() - started,
            why,
        )

    def _kept_from(self, core: Core, snap_index: int) -> int:
        """The index to compact the log to: ``keep_entries`` entries behind the snapshot at
        ``snap_index`` are kept, but no more than ``keep_bytes`` of them."""
        log = core.log
        index = max(0, snap_index - self.config.keep_entries, log.offset)
        size = 0
        kept = snap_index
        while kept > index:
            size += len(log.entry(kept).data)
            if size > self.config.keep_bytes:
                break
            kept -= 1
        return kept

    def _give_up_orphans(self, up_to: int | None = None) -> None:
        """Tell the callers of entries appended while this node led, and not applied since,
        that their outcome is unknown (all of them, or those at ``up_to`` or below)."""
        lost = CommitUnknown()
        for waiters in (self._proposals, self._conf_waiters):
            for index in [i for i in waiters if up_to is None or i <= up_to]:
                _settle(waiters.pop(index)[1], lost)
        if not (self._proposals or self._conf_waiters):
            self._orphaned_at = 0
        self._forget_entry_times()

    def _fail_all(self, err: BaseException) -> None:
        futs = [f for _, f in self._proposals.values()]
        futs += [f for _, f in self._conf_waiters.values()]
        futs += [f for _, f in self._reads.values()]
        futs += [f for _, f in self._read_ready]
        futs += self._snapshot_requests
        for fut in futs:
            _settle(fut, err)
        self._proposals.clear()
        self._conf_waiters.clear()
        self._reads.clear()
        self._read_ready.clear()
        self._snapshot_requests.clear()
        self._forget_entry_times()

    def _forget_entry_times(self) -> None:
        """Keep the times of entries still awaited only (see ``slow_entries``)."""
        if self._entry_times:
            self._entry_times = {i: t for i, t in self._entry_times.items() if i in self._proposals}


@dataclass
class ProposalChain:
    """Proposals submitted one after another by a leader without waiting for each to commit,
    each built on the state the ones before it leave (``RaftNode.submit``): in one term, and
    appended only while none before it failed."""

    term: int
    broken: BaseException | None = None  # the failure that ended it


def _settle(fut: asyncio.Future[None], error: BaseException | None = None) -> None:
    """Resolve ``fut`` unless its waiter gave up (cancelled) already."""
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)


def _is_empty(state: PersistentState) -> bool:
    return (
        not state.entries
        and state.snapshot is None
        and state.hard_state.term == 0
        and state.offset == 0
        and state.hard_state.commit == 0
    )
