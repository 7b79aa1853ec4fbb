"""A real agent talking gRPC to a real dispatcher, running real processes."""

import asyncio
import contextlib

import pytest

from shoal.agent.agent import Agent, AgentConfig
from shoal.agent.describe import describe_node
from shoal.agent.exec.base import NodeContext
from shoal.agent.exec.process import ProcessExecutor, pid_alive
from shoal.api.ids import new_id
from shoal.api.objects import Cluster, Node, Task
from shoal.api.specs import SECOND
from shoal.api.types import NodeState, TaskState
from shoal.clock import SystemClock
from shoal.manager.dispatcher import Dispatcher
from shoal.rpc import Transport
from shoal.store import MemoryStore

TIMEOUT = 30


async def until(check, what=""):
    async def poll():
        while not (result := check()):  # noqa: ASYNC110 - polls state other tasks change
            await asyncio.sleep(0.02)
        return result

    try:
        return await asyncio.wait_for(poll(), TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"timed out: {what}") from None


class Rig:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.clock = SystemClock()
        self.store = MemoryStore(clock=self.clock)
        self.node_id = new_id()
        self.agent_task = None

    async def start(self):
        cluster = Cluster(ID=new_id())
        cluster.Spec.Dispatcher.HeartbeatPeriod = SECOND // 5
        node = Node(ID=self.node_id)
        await self.store.update(lambda tx: (tx.create(cluster), tx.create(node)))
        self.dispatcher = Dispatcher(self.store, self.clock)
        transport = Transport()
        self.server = transport.server()
        self.dispatcher.add_to_server(self.server)
        self.port = transport.add_port(self.server, "127.0.0.1:0")
        await self.server.start()
        self.loops = asyncio.create_task(self.dispatcher.run())

    def agent(self) -> Agent:
        node = NodeContext(node_id=self.node_id, hostname="h1", addr="127.0.0.1")
        return Agent(
            AgentConfig(
                node_id=self.node_id,
                advertise_addr="127.0.0.1:1",
                managers=[f"127.0.0.1:{self.port}"],
                state_dir=self.tmp / "worker",
                transport=Transport(node_id=self.node_id),
                description=lambda: describe_node("h1", {}, ["process"]),
            ),
            ProcessExecutor(self.tmp / "worker" / "tasks", node),
            self.clock,
        )

    def run_agent(self):
        self.current = self.agent()
        self.agent_task = asyncio.create_task(self.current.run())
        return self.current

    async def stop_agent(self):
        self.agent_task.cancel()
        await asyncio.gather(self.agent_task, return_exceptions=True)

    async def assign(self, *argv, **spec) -> str:
        task = Task.model_validate(
            {
                "ID": new_id(),
                "ServiceID": "svc",
                "Slot": 1,
                "NodeID": self.node_id,
                "DesiredState": "running",
                "ServiceAnnotations": {"Name": "web"},
                "Spec": {
                    "Runtime": "process",
                    "ContainerSpec": {"Image": argv[0], "Args": list(argv[1:]), **spec},
                },
                "Status": {"State": "assigned", "Message": "scheduler assigned task to node"},
            }
        )
        await self.store.update(lambda tx: tx.create(task))
        return task.ID

    def task(self, task_id) -> Task:
        return self.store.view().get(Task, task_id)

    async def set_desired(self, task_id, state):
        def fn(tx):
            t = tx.get(Task, task_id).clone()
            t.DesiredState = state
            tx.update(t)

        await self.store.update(fn)

    async def close(self):
        if self.agent_task is not None:
            with contextlib.suppress(Exception):
                await self.current.leave()
            await self.stop_agent()
        self.loops.cancel()
        await asyncio.gather(self.loops, return_exceptions=True)
        await self.dispatcher.close()
        await self.server.stop(0)


@pytest.fixture
async def rig(tmp_path):
    r = Rig(tmp_path)
    await r.start()
    yield r
    await r.close()


async def test_session_makes_the_node_ready_and_runs_a_task_to_completion(rig):
    rig.run_agent()
    node = await until(
        lambda: (
            (n := rig.store.view().get(Node, rig.node_id)).Status.State == NodeState.READY and n
        ),
        "node ready",
    )
    assert node.Status.Addr == "127.0.0.1"
    assert node.Description.Hostname == "h1"
    ok = await rig.assign("sh", "-c", "exit 0")
    bad = await rig.assign("sh", "-c", "exit 3")
    await until(lambda: rig.task(ok).Status.State == TaskState.COMPLETE, "complete")
    await until(
        lambda: rig.task(bad).Status.State == TaskState.FAILED, f"failed {rig.task(bad).Status}"
    )
    status = rig.task(bad).Status
    assert status.Err == "task: non-zero exit (3)"
    assert status.ContainerStatus.ExitCode == 3
    assert status.Message == "started"


async def test_desired_shutdown_stops_a_running_task(rig):
    rig.run_agent()
    tid = await rig.assign("sleep", "300")
    await until(lambda: rig.task(tid).Status.State == TaskState.RUNNING, "running")
    pid = rig.task(tid).Status.ContainerStatus.PID
    assert pid_alive(pid, None)
    await rig.set_desired(tid, TaskState.SHUTDOWN)
    await until(lambda: rig.task(tid).Status.State == TaskState.SHUTDOWN, "shutdown")
    assert not pid_alive(pid, None)


async def test_restarted_agent_adopts_its_running_task(rig):
    rig.run_agent()
    tid = await rig.assign("sleep", "300")
    await until(lambda: rig.task(tid).Status.State == TaskState.RUNNING, "running")
    pid = rig.task(tid).Status.ContainerStatus.PID
    await rig.stop_agent()  # the agent goes away; its task does not
    assert pid_alive(pid, None)
    agent = rig.run_agent()
    await until(lambda: agent.connected.is_set(), "reconnected")
    await until(lambda: tid in agent.tasks, "task known again")
    assert agent.tasks[tid].controller.container_status().PID == pid
    assert len(list((rig.tmp / "worker" / "tasks").iterdir())) == 1  # no second copy


async def test_exit_while_agent_is_away_is_reported_after(rig):
    rig.run_agent()
    tid = await rig.assign("sleep", "300")
    await until(lambda: rig.task(tid).Status.State == TaskState.RUNNING, "running")
    pid = rig.task(tid).Status.ContainerStatus.PID
    await rig.stop_agent()
    import os
    import signal

    os.killpg(pid, signal.SIGKILL)
    rig.run_agent()
    await until(lambda: rig.task(tid).Status.State == TaskState.FAILED, "exit reported")
    assert rig.task(tid).Status.ContainerStatus.ExitCode == 137


async def test_silent_node_is_marked_down(rig):
    rig.run_agent()
    await until(lambda: rig.store.view().get(Node, rig.node_id).Status.State == NodeState.READY)
    await rig.stop_agent()
    node = await until(
        lambda: (n := rig.store.view().get(Node, rig.node_id)).Status.State == NodeState.DOWN and n,
        "down",
    )
    assert node.Status.Message == "heartbeat failure"


async def test_tasks_removed_from_the_store_are_removed_from_the_node(rig):
    agent = rig.run_agent()
    tid = await rig.assign("sleep", "300")
    await until(lambda: rig.task(tid).Status.State == TaskState.RUNNING, "running")
    await rig.set_desired(tid, TaskState.SHUTDOWN)
    await until(lambda: rig.task(tid).Status.State == TaskState.SHUTDOWN, "shutdown")
    from shoal.api.objects import Task as T

    await rig.store.update(lambda tx: tx.delete(T, tid))
    await until(lambda: tid not in agent.tasks, "removed")
    # the task's directory goes in a thread, just after the task leaves the agent's table
    await until(lambda: not (rig.tmp / "worker" / "tasks" / tid).exists(), "directory removed")
