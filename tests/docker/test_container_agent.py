"""A real agent, with a real dispatcher, running container tasks on the real engine: the task
states it reports, and what it does with containers across its own restarts."""

import asyncio

import pytest

from shoal.agent.agent import Agent, AgentConfig
from shoal.agent.describe import describe_node
from shoal.agent.exec.base import NodeContext
from shoal.agent.exec.container import ContainerExecutor
from shoal.agent.exec.engine import Engine
from shoal.agent.exec.engine_monitor import EngineMonitor
from shoal.agent.exec.runtimes import RuntimeExecutor
from shoal.api.ids import new_id
from shoal.api.objects import Task
from shoal.api.specs import SECOND
from shoal.api.types import TaskState
from shoal.clock import FakeClock, SystemClock
from shoal.rpc import Transport
from tests.docker.conftest import IMAGE, until
from tests.integration.test_agent_dispatcher import Rig

MS = SECOND // 1000


class ContainerRig(Rig):
    def __init__(self, tmp_path, engine: Engine) -> None:
        super().__init__(tmp_path)
        self.engine = engine
        node = NodeContext(node_id=self.node_id, hostname="h1", addr="127.0.0.1")
        self.containers = ContainerExecutor(engine, node, SystemClock())

    def agent(self) -> Agent:
        return Agent(
            AgentConfig(
                node_id=self.node_id,
                advertise_addr="127.0.0.1:1",
                managers=[f"127.0.0.1:{self.port}"],
                state_dir=self.tmp / "worker",
                transport=Transport(node_id=self.node_id),
                description=lambda: describe_node("h1", {}, ["container"], {}),
            ),
            RuntimeExecutor({"container": self.containers}),
            self.clock,
        )

    async def assign_container(self, *argv: str, **container) -> str:
        task = Task.model_validate(
            {
                "ID": new_id(),
                "ServiceID": "svc",
                "Slot": 1,
                "NodeID": self.node_id,
                "DesiredState": "running",
                "ServiceAnnotations": {"Name": "web"},
                "Spec": {
                    "ContainerSpec": {
                        "Image": IMAGE,
                        "Args": list(argv),
                        "StopGracePeriod": 0,
                        **container,
                    }
                },
                "Status": {"State": "assigned", "Message": "scheduler assigned task to node"},
            }
        )
        await self.store.update(lambda tx: tx.create(task))
        return task.ID

    def state(self, task_id: str) -> TaskState:
        return self.task(task_id).Status.State


@pytest.fixture
async def rig(tmp_path, engine):
    r = ContainerRig(tmp_path, engine)
    await r.start()
    yield r
    await r.close()
    await r.containers.reconcile(set())


async def test_runs_a_task_and_reports_its_container(rig):
    rig.run_agent()
    tid = await rig.assign_container("sh", "-c", "exit 5")
    await until(lambda: rig.state(tid) == TaskState.FAILED, "failed")
    status = rig.task(tid).Status
    assert (status.Message, status.Err) == ("started", "task: non-zero exit (5)")
    assert status.ContainerStatus.ExitCode == 5 and len(status.ContainerStatus.ContainerID) == 64


async def test_docker_kill_behind_the_agents_back_fails_the_task(rig):
    rig.run_agent()
    tid = await rig.assign_container("sleep", "300")
    await until(lambda: rig.state(tid) == TaskState.RUNNING, "running")
    await rig.engine.kill(rig.task(tid).Status.ContainerStatus.ContainerID)
    await until(lambda: rig.state(tid) == TaskState.FAILED, "failed")
    assert rig.task(tid).Status.Err == "task: non-zero exit (137)"


async def test_restarted_agent_adopts_its_running_container(rig):
    rig.run_agent()
    tid = await rig.assign_container("sleep", "300")
    await until(lambda: rig.state(tid) == TaskState.RUNNING, "running")
    before = rig.task(tid).Status.ContainerStatus
    await rig.stop_agent()  # the agent goes away; its container does not
    agent = rig.run_agent()
    await until(lambda: agent.connected.is_set(), "reconnected")
    await until(lambda: tid in agent.tasks, "task known again")
    assert agent.tasks[tid].task.Status.State == TaskState.RUNNING
    assert await rig.containers.containers() == {tid: before.ContainerID}, "no second copy"
    # Still watched: its exit is seen by the new agent.
    await rig.engine.kill(before.ContainerID)
    await until(lambda: rig.state(tid) == TaskState.FAILED, "exit seen after adoption")


async def test_containers_of_tasks_no_longer_assigned_are_removed(rig):
    rig.run_agent()
    stays = await rig.assign_container("sleep", "300")
    goes = await rig.assign_container("sleep", "300")
    await until(lambda: rig.state(stays) == rig.state(goes) == TaskState.RUNNING, "running")
    await rig.stop_agent()
    # While the agent is away its task is deleted, and the agent's own records are lost:
    # only the container's labels say it was ever there.
    await rig.store.update(lambda tx: tx.delete(Task, goes))
    (rig.tmp / "worker" / "tasks.json").unlink()
    agent = rig.run_agent()
    await until(lambda: agent.connected.is_set(), "reconnected")
    await until(lambda: stays in agent.tasks, "task known again")
    for _ in range(600):  # bounded: reconciliation follows the first complete assignment
        if set(await rig.containers.containers()) == {stays}:
            break
        await asyncio.sleep(0.05)
    assert set(await rig.containers.containers()) == {stays}
    assert rig.state(stays) == TaskState.RUNNING


async def test_shutdown_while_waiting_to_be_healthy(rig):
    rig.run_agent()
    tid = await rig.assign_container(
        "sleep",
        "300",
        Healthcheck={
            "Test": ["CMD", "false"],
            "Interval": 50 * MS,
            "StartPeriod": 300 * SECOND,  # failures never count: it stays "starting"
        },
    )
    await until(lambda: rig.state(tid) == TaskState.STARTING, "starting")
    await asyncio.sleep(0.3)
    assert rig.state(tid) == TaskState.STARTING, "not running before it is healthy"
    await rig.set_desired(tid, TaskState.SHUTDOWN)
    await until(lambda: rig.state(tid) == TaskState.SHUTDOWN, "shut down")
    assert rig.task(tid).Status.ContainerStatus.ExitCode == 137


async def test_engine_monitor(docker_engine):
    clock = FakeClock()
    monitor = EngineMonitor(Engine(docker_engine), clock, misses_allowed=1)
    await monitor.start()
    try:
        assert monitor.reachable and monitor.info["ServerVersion"]
        # The engine stops answering: the node keeps offering containers for a missed
        # probe, then stops.
        real = monitor.engine
        monitor.engine = Engine("unix:///nonexistent/docker.sock")
        await monitor.probe()
        assert monitor.reachable
        await monitor.probe()
        assert not monitor.reachable
        await monitor.engine.close()
        monitor.engine = real
        await monitor.probe()
        assert monitor.reachable
    finally:
        await monitor.stop()
    never = EngineMonitor(Engine("unix:///nonexistent/docker.sock"), clock)
    await never.probe()
    assert not never.reachable
    await never.stop()
