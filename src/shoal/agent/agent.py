"""The agent: keeps a session with a manager's dispatcher, runs what is assigned to this
node, and reports task status back. Tasks keep running while no manager is reachable."""

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import grpc.aio

from shoal import metrics
from shoal.agent.exec.base import Executor, Reconciler
from shoal.agent.exec.dependencies import DependencyStore, uses_dependencies
from shoal.agent.logs import LogPublisher
from shoal.agent.manager_channels import ManagerChannels
from shoal.agent.reconnect import ReconnectBackoff
from shoal.agent.storage import AgentStorage
from shoal.agent.task_manager import TaskManager, more_advanced
from shoal.api.objects import Config, Node, NodeDescription, Secret, Task, TaskStatus
from shoal.api.types import TaskState
from shoal.clock import Clock, sleep_unless
from shoal.rpc import LEADER_METADATA, RESTARTING_METADATA, Transport, pb, pb_grpc

log = logging.getLogger(__name__)

REPORT_BATCH = 200
DESCRIBE_PERIOD = 20.0  # how often to look for changes in what the node reports


HEARTBEAT_TIMEOUT_PERIODS = 3  # heartbeat periods a heartbeat may take to be answered


class SessionEnded(Exception):
    def __init__(self, message: str, cause: str = "closed") -> None:
        super().__init__(message)
        self.cause = cause  # the label of shoal_agent_sessions_ended


def _end_cause(err: BaseException) -> str:
    if isinstance(err, SessionEnded):
        return err.cause
    if isinstance(err, grpc.aio.AioRpcError):
        return err.code().name.lower()
    return "error"


@dataclass
class AgentConfig:
    node_id: str
    advertise_addr: str  # host:port this node advertises
    managers: list[str]  # host:port of managers to try, in order
    state_dir: Path | None  # None: the agent keeps nothing on disk (a simulated node)
    transport: Transport
    description: Callable[[], NodeDescription]
    on_managers: Callable[[list[str]], None] = field(default=lambda addrs: None)
    # The managers' view of this node (its role may change: promote, demote).
    on_node: Callable[[Node], None] = field(default=lambda node: None)
    # The routing mesh's table (RoutingTable JSON) whenever the managers say it changed.
    on_routes: Callable[[list], None] = field(default=lambda routes: None)
    # The node's overlay network map (NetworkMap JSON) whenever it changed.
    on_networks: Callable[[dict], None] = field(default=lambda networks: None)
    # The root CAs the managers trust now (they change during a root rotation).
    on_root_ca: Callable[[bytes], None] = field(default=lambda roots: None)


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        executor: Executor,
        clock: Clock,
        dependencies: DependencyStore | None = None,
    ) -> None:
        self.config = config
        self.executor = executor
        self.clock = clock
        # The secrets and configs of this node's tasks, which the executors read: in memory
        # only, never saved with the tasks.
        self.dependencies = dependencies if dependencies is not None else DependencyStore()
        self.managers = list(config.managers)
        self.tasks: dict[str, TaskManager] = {}
        self.session_id = ""
        # The dispatcher and call metadata of the session while it is up.
        self._live: tuple[pb_grpc.DispatcherStub, tuple] | None = None
        self._next_manager = ""  # a manager to try before the rotation (the leader's hint)
        self._storage = AgentStorage(config.state_dir)
        self._unreported: dict[str, TaskStatus] = {}
        self._report_wakeup = asyncio.Event()
        self._dirty = asyncio.Event()
        self._save_lock = asyncio.Lock()
        self.connected = asyncio.Event()
        self._described = asyncio.Event()  # set: look at the description now
        self.logs = LogPublisher(config.node_id, lambda: list(self.tasks.values()))
        self._leaving = False
        # Cleared: the node's link is cut without closing its connection (a simulated
        # partition): no heartbeat, status report or assignment passes until it is set again.
        self.link = asyncio.Event()
        self.link.set()

    def description_changed(self) -> None:
        """What the node reports changed (a new certificate): tell the managers now rather
        than at the next periodic look."""
        self._described.set()

    # --- tasks ------------------------------------------------------------------------------

    def _report(self, task: Task) -> None:
        self._unreported[task.ID] = task.Status
        self._report_wakeup.set()
        self._dirty.set()

    def _upsert(self, task: Task) -> None:
        tm = self.tasks.get(task.ID)
        if tm is not None:
            tm.update(task)
            return
        # The task is the agent's own copy (just read from an assignment or from disk), so the
        # task manager takes it without another copy: at a hundred tasks a node, the copies
        # cost a simulated fleet a tenth of its CPU.
        tm = TaskManager(task, self.executor.controller(task), self._report, self.clock)
        self.tasks[task.ID] = tm
        tm.start()
        self.logs.task_added(tm)
        self._dirty.set()

    async def _remove(self, task_id: str) -> None:
        tm = self.tasks.pop(task_id, None)
        self._unreported.pop(task_id, None)
        self.logs.task_removed(task_id)
        if tm is not None:
            await tm.remove()
            self._dirty.set()

    def _restore(self) -> None:
        """Pick up the tasks a previous run of this agent had (their processes may still run).
        One not yet started that uses secrets or configs waits for the managers to send it
        again with them (they are never saved): started now, it would find none."""
        for task in self._storage.load().values():
            if task.Status.State < TaskState.STARTING and uses_dependencies(task):
                continue
            self._upsert(task)

    async def _apply(self, msg: pb.AssignmentsMessage) -> None:
        if self._leaving:
            return
        if msg.routes:
            self.config.on_routes(json.loads(msg.routes))
        if msg.networks:
            self.config.on_networks(json.loads(msg.networks))
        # Before the tasks: a task that arrives with its secrets finds them when it starts.
        self.dependencies.apply(
            complete=msg.type == pb.AssignmentsMessage.COMPLETE,
            secrets=[Secret.model_validate_json(raw) for raw in msg.update_secrets],
            remove_secrets=list(msg.remove_secrets),
            configs=[Config.model_validate_json(raw) for raw in msg.update_configs],
            remove_configs=list(msg.remove_configs),
        )
        assigned = [Task.model_validate_json(raw) for raw in msg.update_tasks]
        if msg.type == pb.AssignmentsMessage.COMPLETE:
            # The tasks named unchanged are held as they are (see _known).
            wanted = {t.ID for t in assigned}.union(msg.unchanged_tasks)
            gone = [tid for tid in self.tasks if tid not in wanted]
        else:
            gone = list(msg.remove_tasks)
        for task in assigned:
            stored = self.tasks.get(task.ID)
            if stored is None:
                self._upsert(task)
            else:
                stored.update(task)
        await asyncio.gather(*(self._remove(tid) for tid in gone))
        if msg.type == pb.AssignmentsMessage.COMPLETE:
            # The whole set is known: anything an executor still holds for other tasks
            # (containers left by an agent that stopped before removing them) goes.
            if isinstance(self.executor, Reconciler):
                await self.executor.reconcile(set(self.tasks))

    # --- the session ------------------------------------------------------------------------

    async def run(self) -> None:
        self._restore()
        persister = asyncio.create_task(self._persist_loop(), name="agent persist")
        channels = ManagerChannels(self.config.transport)
        try:
            backoff = ReconnectBackoff()
            attempt = 0
            while True:
                addr = self._next_manager or self.managers[attempt % len(self.managers)]
                self._next_manager = ""
                no_leader = False  # refused by a manager that knows no leader
                await channels.keep_only([*self.managers, addr])
                try:
                    await self._session(addr, await channels.get(addr))
                except Exception as err:  # the session broke; tasks run on, we try again
                    cause = err.exceptions[0] if isinstance(err, ExceptionGroup) else err
                    metrics.AGENT_SESSIONS_ENDED.labels(_end_cause(cause)).inc()
                    if isinstance(cause, grpc.aio.AioRpcError | SessionEnded | OSError):
                        log.info("session with %s ended: %s", addr, cause)
                    else:
                        log.exception("session with %s failed", addr)
                    if not _manager_answered(cause):
                        await channels.drop(addr)
                    leader = _leader_hint(cause)
                    no_leader = leader == ""
                    if leader and leader != addr:
                        self._next_manager = leader
                finally:
                    was_up = self.connected.is_set()
                    self.connected.clear()
                    self.session_id = ""
                attempt += 1
                delay = backoff.next_delay(
                    session_was_up=was_up,
                    redirected=bool(self._next_manager),
                    no_leader=no_leader,
                )
                # Jittered: when a leader goes, every node's session breaks at once, and
                # hundreds of nodes retrying in step meet the next leader all together. With
                # no leader known, from one election timeout to two, as raft spreads its own
                # timeouts: never sooner than the election could be over.
                spread = (1.0, 2.0) if no_leader else (0.5, 1.0)
                await self.clock.sleep(delay * random.uniform(*spread))
        finally:
            # Closed, so the manager sees this node's connection go (a node stopped, or a
            # simulated one killed, is down once the reconnect grace has passed).
            await channels.close()
            persister.cancel()
            await asyncio.gather(persister, return_exceptions=True)
            await self._save()

    async def _session(self, addr: str, channel: grpc.aio.Channel) -> None:
        transport = self.config.transport
        try:
            stub = pb_grpc.DispatcherStub(channel)
            md = transport.metadata()
            description = self.config.description()
            stream = stub.Session(
                pb.SessionRequest(
                    description=description.model_dump_json().encode(),
                    advertise_addr=self.config.advertise_addr,
                ),
                metadata=md,
            )
            first = await stream.read()
            if first is grpc.aio.EOF:
                raise SessionEnded("dispatcher closed the session")
            self.session_id = first.session_id
            self._learn_managers(first)
            self._learn_node(first)
            self._learn_roots(first)
            # Whatever the manager heard before, tell it where each task is now.
            for tm in self.tasks.values():
                self._unreported[tm.task.ID] = tm.task.Status
            self._report_wakeup.set()
            self._live = (stub, md)
            self.connected.set()
            log.info("session %s with %s", self.session_id, addr)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._heartbeats(stub, md, first.heartbeat_period_ms / 1000))
                group.create_task(self._session_messages(stream))
                group.create_task(self._assignments(stub, md))
                group.create_task(self._reporter(stub, md))
                group.create_task(self._watch_description(description))
                group.create_task(self.logs.serve(pb_grpc.LogBrokerStub(channel), md))
        finally:
            self._live = None

    async def announce_restart(self) -> None:
        """Tell the managers this node's daemon is stopping on purpose and will be back (a
        restart, an upgrade): they give it its heartbeat timeout to return, not the short
        grace of a node whose connection broke, so its tasks are not moved meanwhile.
        Best effort: without a session, or if the call fails, there is no one to tell."""
        live = self._live
        if live is None:
            return
        stub, md = live
        try:
            await stub.Heartbeat(
                pb.HeartbeatRequest(session_id=self.session_id),
                metadata=(*md, (RESTARTING_METADATA, "1")),
                timeout=1.0,  # a daemon stopping does not wait long for a manager
            )
        except grpc.aio.AioRpcError as err:
            log.info("could not tell the managers this node restarts: %s", err.details())

    def _learn_managers(self, msg: pb.SessionMessage) -> None:
        addrs = [m.addr for m in msg.managers if m.addr]
        if addrs and addrs != self.managers:
            self.managers = addrs
            self.config.on_managers(addrs)

    async def _heartbeats(self, stub: pb_grpc.DispatcherStub, md: tuple, period: float) -> None:
        while True:
            await self.clock.sleep(period)
            await self.link.wait()
            started = metrics.stopwatch()
            # A heartbeat unanswered this long ends the session; not sooner than the manager
            # would call the node down (three periods after it last heard one, and this
            # call starts a period after the last). A manager that is only slow then decides
            # for itself: ending the session first left the node a short reconnect grace
            # instead, which a busy manager missed (issue 15). A manager gone without a
            # word is found by the channel's keepalive before this (15 s).
            timeout = period * HEARTBEAT_TIMEOUT_PERIODS
            try:
                resp = await stub.Heartbeat(
                    pb.HeartbeatRequest(session_id=self.session_id),
                    metadata=md,
                    timeout=timeout,
                )
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise
                raise SessionEnded(
                    f"heartbeat unanswered for {timeout:.1f} s", cause="heartbeat"
                ) from err
            metrics.AGENT_HEARTBEAT_LATENCY.observe(metrics.since(started))
            period = (resp.period_ms or period * 1000) / 1000

    async def _watch_description(self, sent: NodeDescription) -> None:
        """A new session tells the manager when what the node reports changes (its engine
        came or went, as swarmkit's agent does)."""
        while True:
            await sleep_unless(self.clock, DESCRIBE_PERIOD, self._described)
            self._described.clear()
            if self.config.description() != sent:
                raise SessionEnded("node description changed", cause="description")

    async def _session_messages(self, stream: grpc.aio.UnaryStreamCall) -> None:
        while True:
            msg = await stream.read()
            if msg is grpc.aio.EOF:
                raise SessionEnded("dispatcher closed the session")
            self._learn_managers(msg)
            self._learn_node(msg)
            self._learn_roots(msg)

    def _learn_roots(self, msg: pb.SessionMessage) -> None:
        if msg.root_ca:
            self.config.on_root_ca(msg.root_ca)

    def _learn_node(self, msg: pb.SessionMessage) -> None:
        if msg.node:
            self.config.on_node(Node.model_validate_json(msg.node))

    async def _assignments(self, stub: pb_grpc.DispatcherStub, md: tuple) -> None:
        request = pb.AssignmentsRequest(session_id=self.session_id, known=self._known())
        stream = stub.Assignments(request, metadata=md)
        while True:
            msg = await stream.read()
            if msg is grpc.aio.EOF:
                raise SessionEnded("assignments stream closed")
            await self.link.wait()
            await self._apply(msg)

    def _known(self) -> list[pb.KnownTask]:
        """The tasks held, for the dispatcher to name rather than send again: after a leader
        change or a broken session the node usually holds its whole set already."""
        return [
            pb.KnownTask(id=tid, desired_state=tm.task.DesiredState.value)
            for tid, tm in self.tasks.items()
        ]

    async def _reporter(self, stub: pb_grpc.DispatcherStub, md: tuple) -> None:
        while True:
            await self._report_wakeup.wait()
            self._report_wakeup.clear()
            await self.link.wait()
            while self._unreported:
                batch = dict(list(self._unreported.items())[:REPORT_BATCH])
                await stub.UpdateTaskStatus(
                    pb.UpdateTaskStatusRequest(
                        session_id=self.session_id,
                        updates=[
                            pb.TaskStatusUpdate(task_id=tid, status=st.model_dump_json().encode())
                            for tid, st in batch.items()
                        ],
                    ),
                    metadata=md,
                    timeout=30,
                )
                for tid, st in batch.items():
                    # Only forget what was sent: a newer status may have arrived meanwhile.
                    if self._unreported.get(tid) is st:
                        del self._unreported[tid]

    # --- persistence ------------------------------------------------------------------------

    async def _persist_loop(self) -> None:
        if self._storage.path is None:
            return
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self._save()
            await self.clock.sleep(0.1)  # coalesce bursts of changes into one write

    async def _save(self) -> None:
        # One save at a time (leave() and the persist loop may both save): two writers of
        # the one temporary file would fail the second rename, and the newer snapshot must
        # be the one that lands last.
        async with self._save_lock:
            snapshot = {tid: tm.task for tid, tm in self.tasks.items()}
            await asyncio.to_thread(self._storage.save, snapshot)

    # --- leaving ----------------------------------------------------------------------------

    async def leave(self) -> None:
        """Remove every task at once (``swarm leave``), as Docker's daemon does: it removes
        the node's containers with force, so no task waits out its stop grace period.
        Assignments that still arrive meanwhile (the managers move other leaving nodes'
        tasks about) are not taken."""
        self._leaving = True
        for tm in list(self.tasks.values()):
            await tm.stop()
        await asyncio.gather(
            *(self._retire(tid) for tid in list(self.tasks)), return_exceptions=True
        )
        if isinstance(self.executor, Reconciler):
            # What a task being prepared as it was stopped may have left (a container its
            # engine made after the call was given up).
            await self.executor.reconcile(set())
        self.dependencies.clear()
        await self._save()

    async def retire_saved_tasks(self) -> None:
        """``swarm leave`` of a node whose agent is not running (a locked manager's): stop
        and remove the tasks its last run left (their processes may still run)."""
        self._restore()
        await self.leave()

    async def _retire(self, task_id: str) -> None:
        tm = self.tasks[task_id]
        try:
            await tm.controller.terminate()
        finally:
            await self._remove(task_id)


def _manager_answered(err: BaseException) -> bool:
    """Whether the manager itself ended the attempt (it is up and its channel worth keeping):
    it refused as not the leader, closed the session, or said no in so many words; rather
    than the connection failing, resetting or a call timing out."""
    if isinstance(err, SessionEnded):
        return err.cause in ("closed", "description")
    if not isinstance(err, grpc.aio.AioRpcError):
        return False
    if err.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
        return True
    return any(key == LEADER_METADATA for key, _ in err.trailing_metadata() or ())


def _leader_hint(err: BaseException) -> str | None:
    """The leader's address a manager named when it refused the session as not the leader;
    "" if it named none (it knows no leader: an election is under way); None if the attempt
    did not end in such a refusal."""
    if not isinstance(err, grpc.aio.AioRpcError):
        return None
    for key, value in err.trailing_metadata() or ():
        if key == LEADER_METADATA and isinstance(value, str):
            return value
    return None


__all__ = ["Agent", "AgentConfig", "more_advanced"]
