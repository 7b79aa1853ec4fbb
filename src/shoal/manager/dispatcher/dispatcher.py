"""The Dispatcher gRPC service and the loops behind it."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
import grpc.aio

from shoal import metrics
from shoal.api.ids import new_id
from shoal.api.objects import Node, NodeDescription, Task, TaskStatus
from shoal.api.specs import SECOND
from shoal.api.types import NodeRole, NodeState, TaskState
from shoal.clock import Clock
from shoal.manager.dispatcher.assignments import NodeAssignments
from shoal.manager.dispatcher.fanout import SharedFlags
from shoal.manager.dispatcher.heartbeats import (
    DEFAULT_RECONNECT_GRACE,
    DOWN_WHY,
    HEARTBEAT,
    HeartbeatDeadlines,
)
from shoal.manager.dispatcher.router import Inbox, Router
from shoal.manager.manager_peers import manager_peers
from shoal.raft.types import RaftError
from shoal.rpc import LEADER_METADATA, RESTARTING_METADATA, pb, pb_grpc, peer_identity
from shoal.store import MemoryStore, Tx

log = logging.getLogger(__name__)

STATUS_FLUSH_INTERVAL = 0.1
ASSIGNMENT_BATCH_WINDOW = 0.05
CHECK_INTERVAL = 0.25
NOT_LEADER = "dispatcher is stopped: this manager is not the leader"
# The status-report counters, looked up once: every report a node sends counts on them.
_REPORT_CALLS = metrics.DISPATCHER_STATUS_REPORTS.labels("calls")
_REPORTED_STATUSES = metrics.DISPATCHER_STATUS_REPORTS.labels("updates")
# Complete assignment sets built at once. Each is a few milliseconds of encoding (every task
# of the node), with no pause: when a new leader takes over 1,000 agents, their sets became
# ready together and one turn of the event loop built hundreds of them, holding raft's
# heartbeats for seconds (issue 15: leadership then moved again, and every agent reconnected
# once more). A few at a time, the loop runs between them.
FIRST_SETS_AT_ONCE = 4

# None when this manager may serve agents (it leads); otherwise the leader's address to send
# them to ("" when no leader is known).
Redirect = Callable[[], str | None]


@dataclass
class AgentSession:
    id: str
    node_id: str
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)  # SessionMessages, None ends
    inboxes: list[Inbox] = field(default_factory=list)  # its Assignments streams' events
    closed: bool = False
    # Answered: the node has its session ID and heartbeats. Until then it is waiting on this
    # stream for the answer (its node marked ready first), so it cannot heartbeat; its stream
    # tells whether it is there (closed or reset from its side: ``session_broke``).
    answered: bool = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.outbox.put_nowait(None)
        for inbox in self.inboxes:
            inbox.close()


def _mark_down(node_id: str, message: str) -> Callable[[Tx], None]:
    def fn(tx: Tx) -> None:
        node = tx.get(Node, node_id)
        if node is None or node.Status.State == NodeState.DOWN:
            return
        changed = node.clone()
        changed.Status.State = NodeState.DOWN
        changed.Status.Message = message
        tx.update(changed)

    return fn


def _host(addr: str) -> str:
    return addr.rsplit(":", 1)[0].strip("[]") if ":" in addr else addr


class Dispatcher(pb_grpc.DispatcherServicer):
    def __init__(
        self,
        store: MemoryStore,
        clock: Clock,
        redirect: Redirect | None = None,
        *,
        reconnect_grace: float = DEFAULT_RECONNECT_GRACE,
    ) -> None:
        self.store = store
        self.clock = clock
        self.redirect: Redirect = redirect or (lambda: None)
        # How long a node whose session broke has to open a new one before it is down.
        self.reconnect_grace = reconnect_grace
        self.sessions: dict[str, AgentSession] = {}
        self.deadlines = HeartbeatDeadlines()
        self._statuses: dict[str, tuple[str, TaskStatus]] = {}
        self._statuses_waiting = asyncio.Event()
        self._flags = SharedFlags()  # what each store event may move, for every session
        self._router = Router(store, self._flags)  # store changes to the sessions they concern
        self._first_sets = asyncio.Semaphore(FIRST_SETS_AT_ONCE)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_DispatcherServicer_to_server(self, server)

    # --- helpers ----------------------------------------------------------------------------

    def heartbeat_period(self) -> float:
        cluster = self.store.view().cluster()
        ns = cluster.Spec.Dispatcher.HeartbeatPeriod if cluster else 5 * SECOND
        return max(ns, SECOND // 10) / SECOND

    async def _caller(self, context: grpc.aio.ServicerContext) -> str:
        leader = self.redirect()
        if leader is not None:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                NOT_LEADER,
                trailing_metadata=((LEADER_METADATA, leader),),
            )
        peer = peer_identity(context)
        if peer is None or self.store.view().get(Node, peer.node_id) is None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "node not registered")
        assert peer is not None
        return peer.node_id

    async def _session_of(self, context: grpc.aio.ServicerContext, session_id: str) -> AgentSession:
        node_id = await self._caller(context)
        session = self.sessions.get(node_id)
        if session is None or session.id != session_id or session.closed:
            await context.abort(grpc.StatusCode.NOT_FOUND, "session invalid")
        assert session is not None
        return session

    # --- Session ----------------------------------------------------------------------------

    async def Session(
        self, request: pb.SessionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SessionMessage]:
        node_id = await self._caller(context)
        description = (
            NodeDescription.model_validate_json(request.description)
            if request.description
            else None
        )
        addr = _host(request.advertise_addr) if request.advertise_addr else ""
        old = self.sessions.pop(node_id, None)
        if old is not None:
            old.close()
        session = AgentSession(id=new_id(), node_id=node_id)
        self.sessions[node_id] = session
        # Heard from before the write below: a deadline left by the broken session this one
        # replaces must not expire while the node is being marked ready.
        period = self.heartbeat_period()
        self.deadlines.beat(node_id, self.clock.monotonic(), period)
        try:
            try:
                node = await self._mark_ready(node_id, description, addr)
            except RaftError:
                # Leadership lost while marking the node ready: the agent is told so, as any
                # call to a dispatcher that stopped, and goes to the next leader.
                await context.abort(grpc.StatusCode.UNAVAILABLE, NOT_LEADER)
                return
            # Its heartbeats start with this answer: its deadline runs from here, not from the
            # session's start (the write above can take seconds on a leader under load).
            period = self.heartbeat_period()
            self.deadlines.beat(node_id, self.clock.monotonic(), period)
            session.answered = True
            yield pb.SessionMessage(
                session_id=session.id,
                node=node.model_dump_json().encode() if node else b"",
                managers=manager_peers(self.store.view()),
                heartbeat_period_ms=int(period * 1000),
                root_ca=self._trust_bundle(),
            )
            while True:
                msg = await session.outbox.get()
                if msg is None:
                    return
                yield msg
        finally:
            session.close()
            if self.sessions.get(node_id) is session:
                # Still the node's session, so not ended by this dispatcher (a newer session,
                # an expiry, the node's removal or the dispatcher's stop take it out first):
                # the stream was cancelled, its connection closed or reset from the node's
                # side. Down unless it opens a new session within the grace.
                del self.sessions[node_id]
                self.deadlines.session_broke(node_id, self.clock.monotonic(), self.reconnect_grace)

    async def _mark_ready(
        self, node_id: str, description: NodeDescription | None, addr: str
    ) -> Node | None:
        def fn(tx: Tx) -> Node | None:
            node = tx.get(Node, node_id)
            if node is None:
                return None
            changed = node.clone()
            changed.Status.State = NodeState.READY
            changed.Status.Message = None
            if addr:
                changed.Status.Addr = addr
            if description is not None:
                changed.Description = description
            if changed.Status != node.Status or changed.Description != node.Description:
                return tx.update(changed)
            return node

        return await self.store.update(fn)

    # --- Heartbeat --------------------------------------------------------------------------

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> pb.HeartbeatResponse:
        session = await self._session_of(context, request.session_id)
        period = self.heartbeat_period()
        metadata = context.invocation_metadata() or ()
        if any(key == RESTARTING_METADATA for key, _ in metadata):
            self.deadlines.restarting(session.node_id, self.clock.monotonic(), period)
        else:
            self.deadlines.beat(session.node_id, self.clock.monotonic(), period)
        return pb.HeartbeatResponse(period_ms=int(period * 1000))

    # --- Assignments ------------------------------------------------------------------------

    async def Assignments(
        self, request: pb.AssignmentsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.AssignmentsMessage]:
        session = await self._session_of(context, request.session_id)
        known = {k.id: k.desired_state for k in request.known}
        node, inbox, complete = await self._first_set(session, known)
        try:
            yield complete
            while True:
                try:
                    first = await inbox.get()
                except StopAsyncIteration:
                    return
                events = [first]
                # Gather what else changes in a short window: one message for many tasks.
                await self.clock.sleep(ASSIGNMENT_BATCH_WINDOW)
                while (ev := inbox.get_nowait()) is not None:
                    events.append(ev)
                message = node.incremental(events, self.store.view())
                self._router.follow_networks(inbox, node.network_ids)
                if message is not None:
                    yield message
        finally:
            inbox.close()

    async def _first_set(
        self, session: AgentSession, known: dict[str, str] | None = None
    ) -> tuple[NodeAssignments, Inbox, pb.AssignmentsMessage]:
        """The node's COMPLETE set, and the inbox of every change after the snapshot it was
        made of (see router.py), taken together; a few sessions at a time."""
        async with self._first_sets:
            view, inbox = self._router.view_and_attach(session.node_id)
            session.inboxes.append(inbox)
            try:
                node = NodeAssignments(session.node_id, self._flags, self._router.routes)
                complete = node.complete(view, known)
                self._router.follow_networks(inbox, node.network_ids)
                # Held until the loop's next turn: building is not a pause, so without this
                # every waiting session would build its set in this same turn.
                await asyncio.sleep(0)
            except BaseException:
                inbox.close()
                raise
        return node, inbox, complete

    # --- UpdateTaskStatus -------------------------------------------------------------------

    async def UpdateTaskStatus(
        self, request: pb.UpdateTaskStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateTaskStatusResponse:
        session = await self._session_of(context, request.session_id)
        _REPORT_CALLS.inc()
        _REPORTED_STATUSES.inc(len(request.updates))
        for u in request.updates:
            self._statuses[u.task_id] = (session.node_id, TaskStatus.model_validate_json(u.status))
        self._statuses_waiting.set()
        return pb.UpdateTaskStatusResponse()

    async def _flush_statuses(self) -> None:
        pending, self._statuses = self._statuses, {}
        now_running: list[Task] = []  # for Swarm's scheduling delay (NEW to RUNNING)

        def apply(task_id: str, node_id: str, status: TaskStatus) -> Callable[[Tx], None]:
            def fn(tx: Tx) -> None:
                task = tx.get(Task, task_id)
                # Only the node a task is assigned to may report on it, and only forward.
                if task is None or task.NodeID != node_id:
                    return
                if status.State < task.Status.State or status == task.Status:
                    return
                # A copy sharing the stored task's parts, which nothing changes in place (see
                # store/intern.py): clone() was a deep copy of about 75 us, for each report.
                changed = task.model_copy(update={"Status": status})
                tx.update(changed)
                if status.State == TaskState.RUNNING and task.Status.State != TaskState.RUNNING:
                    now_running.append(task)

            return fn

        # Made as the batch takes them: a list of 100,000 made at once held the loop 0.1 s.
        await self.store.batch(apply(tid, nid, st) for tid, (nid, st) in pending.items())
        now = self.clock.now()
        for task in now_running:
            metrics.DISPATCHER_SCHEDULING_DELAY.observe((now - task.CreatedAt).total_seconds())

    # --- the leader's loops -----------------------------------------------------------------

    async def run(self) -> None:
        """Expire silent nodes, write status batches, tell agents about manager changes."""
        now = self.clock.monotonic()
        period = self.heartbeat_period()
        # After a manager restart, give every node that was up a heartbeat period's grace to
        # come back before calling it down.
        for node in self.store.view().nodes():
            if node.Status.State != NodeState.DOWN and node.ID not in self.sessions:
                self.deadlines.beat(node.ID, now, period)
        tasks = [
            asyncio.create_task(self._expiry_loop()),
            asyncio.create_task(self._status_loop()),
            asyncio.create_task(self._node_watch()),
            asyncio.create_task(self._root_watch()),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _expiry_loop(self) -> None:
        while True:
            asked = self.clock.monotonic()
            await self.clock.sleep(CHECK_INTERVAL)
            now = self.clock.monotonic()
            # Woken late, the loop was held by other work: heartbeats and new sessions that
            # came meanwhile wait behind this wake-up, unread. Without this, a leader busy
            # for a few seconds (a node lost with 100 tasks to move, on a loaded machine)
            # found healthy nodes down whose sessions it had not yet read, and moved their
            # tasks too (issue 15: 236 of 900 nodes in the fleet's node-loss phase).
            self.deadlines.postpone(now - asked - CHECK_INTERVAL)
            lapsed = self._waiting_on_us_excepted(self.deadlines.expired_with_reasons(now), now)
            expired = [node_id for node_id, _ in lapsed]
            period = self.heartbeat_period() if lapsed else 0.0
            for node_id, reason in lapsed:
                metrics.DISPATCHER_NODES_DOWN.labels(reason).inc()
                # Said here because its tasks are replaced next with no error of their own:
                # this line is what tells a node lost from a task that failed.
                log.info(
                    "node %s is down: %s (heartbeat period %g s)", node_id, DOWN_WHY[reason], period
                )
                session = self.sessions.pop(node_id, None)
                if session is not None:
                    session.close()
            if expired:
                # One write for the lot: many nodes lost at once (a rack, a partition) are
                # all down, and their tasks on their way elsewhere, after one commit.
                await self.store.batch([_mark_down(n, "heartbeat failure") for n in expired])

    def _waiting_on_us_excepted(
        self, lapsed: list[tuple[str, str]], now: float
    ) -> list[tuple[str, str]]:
        """``lapsed`` but for the nodes whose session is open and not yet answered: they wait
        for this manager (the write marking them ready), so they cannot heartbeat, and their
        open stream says they are there; their deadline starts again. Expired instead, each
        came back with a new session only to wait again: in the 1,000-node run, once writes
        took seconds under a node loss, 903 healthy nodes were marked down 11,804 times
        (every one of them moving its 100 tasks) and the leader never caught up."""
        kept = []
        for node_id, reason in lapsed:
            session = self.sessions.get(node_id)
            waiting = session is not None and not session.answered and not session.closed
            if reason == HEARTBEAT and waiting:
                self.deadlines.beat(node_id, now, self.heartbeat_period())
                continue
            kept.append((node_id, reason))
        return kept

    async def _status_loop(self) -> None:
        while True:
            await self._statuses_waiting.wait()
            self._statuses_waiting.clear()
            await self._flush_statuses()
            await self.clock.sleep(STATUS_FLUSH_INTERVAL)

    async def _node_watch(self) -> None:
        """A deleted node's session ends; a change in the manager set reaches every agent."""
        with self.store.watch(kinds={"node"}) as sub:
            async for ev in sub:
                node = ev.obj
                if ev.is_commit or not isinstance(node, Node):
                    continue
                if ev.action == "create" and node.ID not in self.deadlines:
                    # A node that joined must open a session within the grace period.
                    self.deadlines.beat(node.ID, self.clock.monotonic(), self.heartbeat_period())
                if ev.action == "remove":
                    self.deadlines.forget(node.ID)
                    session = self.sessions.pop(node.ID, None)
                    if session is not None:
                        session.close()
                old = ev.old if isinstance(ev.old, Node) else None
                if old is not None and old.Role != node.Role and node.ID in self.sessions:
                    # Promoted or demoted: the node's daemon starts or stops its manager.
                    own = self.sessions[node.ID]
                    own.outbox.put_nowait(pb.SessionMessage(node=node.model_dump_json().encode()))
                if node.Role == NodeRole.MANAGER or (
                    old is not None and old.Role == NodeRole.MANAGER
                ):
                    if (
                        old is None
                        or old.ManagerStatus != node.ManagerStatus
                        or old.Role != node.Role
                        or ev.action == "remove"
                    ):
                        msg = pb.SessionMessage(managers=manager_peers(self.store.view()))
                        for session in list(self.sessions.values()):
                            with contextlib.suppress(Exception):
                                session.outbox.put_nowait(msg)

    def _trust_bundle(self) -> bytes:
        cluster = self.store.view().cluster()
        return cluster.RootCA.trust_bundle() if cluster is not None else b""

    async def _root_watch(self) -> None:
        """A root rotation begins or ends: every node learns the roots to trust now."""
        with self.store.watch(kinds={"cluster"}) as sub:
            bundle = self._trust_bundle()  # after the watch starts: no change is missed
            async for ev in sub:
                if ev.is_commit:
                    continue
                new = self._trust_bundle()
                if new == bundle:
                    continue
                bundle = new
                msg = pb.SessionMessage(root_ca=bundle)
                for session in list(self.sessions.values()):
                    with contextlib.suppress(Exception):
                        session.outbox.put_nowait(msg)

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            session.close()
        self.sessions.clear()
        self._router.close()
