"""A node's session breaking, with a real agent and a real dispatcher talking gRPC through a
TCP relay the test controls: reset (the worker's kernel closed its connections: its daemon
or machine died), or silenced (its machine vanished: no packet says so)."""

import asyncio
import contextlib
import socket
import struct

import pytest

from shoal import metrics
from shoal.agent import reconnect
from shoal.api.objects import Node
from shoal.api.specs import SECOND
from shoal.api.types import NodeState, TaskState
from shoal.manager.dispatcher import Dispatcher
from shoal.manager.dispatcher.assignments import NodeAssignments
from shoal.rpc import pb
from tests.integration.test_agent_dispatcher import Rig, until


class Relay:
    """Forwards TCP connections from a local port to the dispatcher's."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.silent = False
        self._pumps: set[asyncio.Task] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.silent:
            # A machine that vanished answers nothing: hold the connection, say nothing.
            self.pairs.append((writer, writer))
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.pairs.append((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            pump = asyncio.create_task(self._pump(src, dst))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await src.read(65536):
                if self.silent:
                    return  # dropped on the floor: neither side hears of it
                dst.write(data)
                await dst.drain()
            if not self.silent:
                dst.close()  # one side closed: so does the relay, towards the other

    def silence(self) -> None:
        """Nothing gets through any more, and nothing is closed."""
        self.silent = True

    def reset(self) -> None:
        """Close every connection with a reset (RST) on both sides."""
        for pair in self.pairs:
            for writer in pair:
                sock = writer.get_extra_info("socket")
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
        self.pairs.clear()

    async def close(self) -> None:
        self.reset()
        self.server.close()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)


class RelayedRig(Rig):
    """The dispatcher with a long heartbeat period (3 min before a silent node is down) and
    the given reconnect grace; the agent reaches it through a Relay."""

    def __init__(self, tmp_path, heartbeat_period: int, reconnect_grace: float) -> None:
        super().__init__(tmp_path)
        self.heartbeat_period = heartbeat_period
        self.reconnect_grace = reconnect_grace

    async def start(self):
        await super().start()
        cluster = self.store.view().cluster()

        def fn(tx):
            c = tx.get(type(cluster), cluster.ID).clone()
            c.Spec.Dispatcher.HeartbeatPeriod = self.heartbeat_period
            tx.update(c)

        await self.store.update(fn)
        self.dispatcher.reconnect_grace = self.reconnect_grace
        self.relay = Relay(self.port)
        self.relay_port = await self.relay.start()

    def agent(self):
        agent = super().agent()
        agent.managers = [f"127.0.0.1:{self.relay_port}"]
        return agent

    def node(self) -> Node:
        return self.store.view().get(Node, self.node_id)

    async def close(self):
        await self.relay.close()
        await super().close()


@pytest.fixture
async def make_rig(tmp_path):
    rigs = []

    async def make(heartbeat_period: int, reconnect_grace: float) -> RelayedRig:
        rig = RelayedRig(tmp_path, heartbeat_period, reconnect_grace)
        await rig.start()
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        await rig.close()


async def test_a_reset_session_not_reopened_marks_the_node_down_before_any_heartbeat_is_due(
    make_rig,
):
    rig = await make_rig(heartbeat_period=60 * SECOND, reconnect_grace=0.2)
    rig.run_agent()
    await until(lambda: rig.node().Status.State == NodeState.READY, "ready")
    # The machine dies: its agent is gone and its kernel resets the connections.
    rig.relay.silence()
    await rig.stop_agent()
    rig.relay.reset()
    # Three minutes of heartbeats were still due: the broken session alone does it.
    node = await until(lambda: rig.node().Status.State == NodeState.DOWN and rig.node(), "down")
    # Docker's words for a node found down.
    assert node.Status.Message == "heartbeat failure"


async def test_a_node_that_reconnects_within_the_grace_keeps_its_session_and_tasks(
    make_rig, monkeypatch
):
    sets: list[pb.AssignmentsMessage] = []  # the COMPLETE sets the dispatcher made
    complete = NodeAssignments.complete

    def recorded(self, view, known=None):  # type: ignore[no-untyped-def]
        sets.append(complete(self, view, known))
        return sets[-1]

    monkeypatch.setattr(NodeAssignments, "complete", recorded)
    rig = await make_rig(heartbeat_period=60 * SECOND, reconnect_grace=1.0)
    agent = rig.run_agent()
    tid = await rig.assign("sleep", "300")
    await until(lambda: rig.task(tid).Status.State == TaskState.RUNNING, "running")
    pid = rig.task(tid).Status.ContainerStatus.PID
    first = rig.dispatcher.sessions[rig.node_id].id
    downs: list[Node] = []
    with rig.store.watch(kinds={"node"}) as sub:
        rig.relay.reset()  # a network blip: both ends see a reset, the agent lives on
        await until(
            lambda: (s := rig.dispatcher.sessions.get(rig.node_id)) and s.id != first,
            "a new session",
        )
        await until(lambda: agent.connected.is_set() and len(sets) == 2, "agent connected again")
        while (ev := sub.get_nowait()) is not None:
            if isinstance(ev.obj, Node) and ev.obj.Status.State == NodeState.DOWN:
                downs.append(ev.obj)
    assert downs == []
    # The new session cleared what the broken one left: well past the grace, no node is due.
    assert rig.dispatcher.deadlines.expired(rig.clock.monotonic() + 10 * rig.reconnect_grace) == []
    assert rig.node().Status.State == NodeState.READY
    # The new set named the task the node held rather than sending it again, and the agent
    # kept it (not dropped as missing from the set): the same task runs on, the same process.
    assert list(sets[1].unchanged_tasks) == [tid] and list(sets[1].update_tasks) == []
    await asyncio.sleep(0.2)
    assert rig.task(tid).Status.State == TaskState.RUNNING
    assert agent.tasks[tid].controller.container_status().PID == pid


async def test_a_silent_node_is_still_found_by_its_heartbeats(make_rig):
    rig = await make_rig(heartbeat_period=SECOND // 5, reconnect_grace=600.0)
    rig.run_agent()
    await until(lambda: rig.node().Status.State == NodeState.READY, "ready")
    rig.relay.silence()  # nothing closes; nothing arrives
    node = await until(lambda: rig.node().Status.State == NodeState.DOWN and rig.node(), "down")
    assert node.Status.Message == "heartbeat failure"
    await rig.stop_agent()


async def test_a_node_whose_daemon_said_it_restarts_keeps_its_heartbeat_timeout(make_rig):
    rig = await make_rig(heartbeat_period=60 * SECOND, reconnect_grace=0.2)
    agent = rig.run_agent()
    await until(lambda: agent.connected.is_set(), "connected")
    await agent.announce_restart()
    # The daemon stops: its connection closes, and it is not back for a while.
    rig.relay.silence()
    await rig.stop_agent()
    rig.relay.reset()
    await until(lambda: rig.node_id not in rig.dispatcher.sessions, "the session ended")
    now = rig.clock.monotonic()
    # Well past the grace it is not due; at its heartbeat timeout (3 x 60 s) it would be.
    assert rig.dispatcher.deadlines.expired(now + 10 * rig.reconnect_grace) == []
    assert rig.node().Status.State == NodeState.READY
    assert rig.dispatcher.deadlines.expired(now + 180) == [rig.node_id]


async def test_a_slow_heartbeat_answer_does_not_end_the_session(make_rig, monkeypatch):
    """A manager slow to answer (its event loop busy) is not left by the agent before the
    manager itself would call the node down: leaving it would have given the node only the
    short reconnect grace to come back, which a busy manager misses (issue 15)."""
    answer = Dispatcher.Heartbeat
    slow = 0

    async def slow_heartbeat(self, request, context):
        nonlocal slow
        reply = await answer(self, request, context)  # heard at once, answered late
        if slow < 2:
            slow += 1
            await asyncio.sleep(0.5)  # 2.5 heartbeat periods
        return reply

    monkeypatch.setattr(Dispatcher, "Heartbeat", slow_heartbeat)
    ended = metrics.AGENT_SESSIONS_ENDED.labels("heartbeat")
    ended_before = ended._value.get()
    rig = await make_rig(heartbeat_period=SECOND // 5, reconnect_grace=0.05)
    agent = rig.run_agent()
    await until(lambda: agent.connected.is_set(), "connected")
    first = rig.dispatcher.sessions[rig.node_id].id
    await until(lambda: slow == 2, "two slow heartbeats")
    await asyncio.sleep(1.0)
    assert rig.dispatcher.sessions[rig.node_id].id == first
    assert rig.node().Status.State == NodeState.READY
    assert ended._value.get() == ended_before
    await rig.stop_agent()


async def test_attempts_refused_by_a_manager_without_a_leader_share_one_connection(
    make_rig, monkeypatch
):
    """While managers hold an election they refuse sessions ("not the leader", none known):
    the node tries again on the same connection, not with a new TLS handshake each time
    (issue 15: 1,000 nodes did so after a leader was killed, slowing the election)."""
    # The wait after each refusal (an election timeout, tests/unit/agent) is not the point.
    monkeypatch.setattr(reconnect, "NO_LEADER_DELAY", 0.05)
    rig = await make_rig(heartbeat_period=60 * SECOND, reconnect_grace=1.0)
    asked = 0

    def redirect() -> str | None:
        nonlocal asked
        asked += 1
        return "" if asked <= 3 else None  # three refusals, then it leads

    rig.dispatcher.redirect = redirect
    agent = rig.agent()
    made = []
    build = agent.config.transport.channel

    def channel(addr, options=()):
        made.append(addr)
        return build(addr, options)

    agent.config.transport.channel = channel
    rig.current = agent
    rig.agent_task = asyncio.create_task(agent.run())
    await until(lambda: agent.connected.is_set(), "connected after the refusals")
    assert asked > 3
    assert len(made) == 1  # one channel (one TLS handshake) for the four attempts
    rig.relay.reset()  # the connection itself fails: the next attempt makes a new one
    await until(lambda: len(made) == 2 and agent.connected.is_set(), "connected again")
    await rig.stop_agent()
