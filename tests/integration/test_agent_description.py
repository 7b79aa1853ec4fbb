"""What a node reports reaches the manager again when it changes (its engine came or went)."""

import asyncio

from shoal.agent import agent as agent_module
from shoal.agent.agent import Agent, AgentConfig
from shoal.agent.describe import describe_node
from shoal.agent.exec.base import NodeContext
from shoal.agent.exec.process import ProcessExecutor
from shoal.api.objects import Node
from shoal.rpc import Transport
from tests.integration.test_agent_dispatcher import Rig, until


async def test_a_changed_description_reaches_the_manager(tmp_path, monkeypatch):
    monkeypatch.setattr(agent_module, "DESCRIBE_PERIOD", 0.05)
    rig = Rig(tmp_path)
    await rig.start()
    engine_info: dict = {"ServerVersion": "20.10.24", "NCPU": 1, "MemTotal": 1 << 30}
    facts = {"engine": None}
    node = NodeContext(node_id=rig.node_id, hostname="h1", addr="127.0.0.1")
    rig.current = Agent(
        AgentConfig(
            node_id=rig.node_id,
            advertise_addr="127.0.0.1:1",
            managers=[f"127.0.0.1:{rig.port}"],
            state_dir=tmp_path / "worker",
            transport=Transport(node_id=rig.node_id),
            description=lambda: describe_node("h1", {}, ["process", "container"], facts["engine"]),
        ),
        ProcessExecutor(tmp_path / "worker" / "tasks", node),
        rig.clock,
    )
    rig.agent_task = asyncio.create_task(rig.current.run())
    try:

        def runtimes():
            desc = rig.store.view().get(Node, rig.node_id).Description
            return desc.Runtimes if desc is not None else None

        await until(lambda: runtimes() == ["process"], "no engine: no containers")
        facts["engine"] = engine_info  # the engine answers now
        await until(lambda: runtimes() == ["process", "container"], "containers offered")
        desc = rig.store.view().get(Node, rig.node_id).Description
        assert desc.Engine.EngineVersion == "20.10.24"
        facts["engine"] = None  # and goes away
        await until(lambda: runtimes() == ["process"], "containers no longer offered")
    finally:
        await rig.close()
