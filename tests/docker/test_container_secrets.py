"""Secrets and configs in containers on the real engine, through a real dispatcher and agent:
each file read-only where Swarm puts it with the reference's owner and mode; gone once the
service drops it, the node forgetting it too; never in a file of the node's state."""

import asyncio
import base64
import hashlib
import os
from pathlib import Path

import pytest

from shoal.agent.agent import Agent, AgentConfig
from shoal.agent.describe import describe_node
from shoal.agent.exec.container import ContainerExecutor
from shoal.agent.exec.files_root import TaskFilesRoot
from shoal.agent.exec.runtimes import RuntimeExecutor
from shoal.api.ids import new_id
from shoal.api.objects import Config, Secret
from shoal.api.specs import ConfigSpec, SecretSpec
from shoal.api.types import TaskState
from shoal.clock import SystemClock
from shoal.rpc import Transport
from tests.docker.conftest import until
from tests.docker.test_container_agent import ContainerRig


class SecretsContainerRig(ContainerRig):
    def __init__(self, tmp_path, engine) -> None:
        super().__init__(tmp_path, engine)
        self.node = self.containers.node
        self.node.files = TaskFilesRoot.open(self.node_id)
        self.containers = ContainerExecutor(engine, self.node, SystemClock())

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
            self.node.dependencies,
        )

    async def add(self, obj):
        await self.store.update(lambda tx: tx.create(obj))
        return obj

    async def logs(self, task_id: str) -> str:
        name = f"web.1.{task_id}"
        try:
            chunks = [data async for _, data in self.engine.logs(name, {"stdout": True}, False)]
        except Exception:
            return ""
        return b"".join(chunks).decode()


@pytest.fixture
async def rig(tmp_path, engine):
    if os.geteuid() != 0:
        pytest.skip("owners other than the node's own need root")
    r = SecretsContainerRig(tmp_path, engine)
    await r.start()
    yield r
    await r.close()
    await r.containers.reconcile(set())
    r.node.files.close()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_a_container_reads_its_secret_and_config_until_the_service_drops_them(rig):
    token = f"s3cr3t-{new_id()}"
    secret = await rig.add(Secret(ID=new_id(), Spec=SecretSpec(Name="db", Data=b64(token))))
    config = await rig.add(
        Config(
            ID=new_id(),
            Spec=ConfigSpec(
                Name="app", Data=b64("name={{.Service.Name}}"), Templating={"Name": "golang"}
            ),
        )
    )
    rig.run_agent()
    script = (
        'stat -c "%n %u %g %a" /run/secrets/db /app.conf /etc/abs.conf; md5sum /run/secrets/db; '
        "cat /app.conf; echo; (echo x > /run/secrets/db) 2>/dev/null || echo read-only; sleep 300"
    )
    tid = await rig.assign_container(
        "sh",
        "-c",
        script,
        Secrets=[
            {
                "File": {"Name": "db", "UID": "1234", "GID": "2345", "Mode": 0o440},
                "SecretID": secret.ID,
                "SecretName": "db",
            }
        ],
        Configs=[
            {"File": {"Name": "app.conf", "Mode": 0o444}, "ConfigID": config.ID},
            {
                "File": {"Name": "/etc/abs.conf", "UID": "5", "GID": "6", "Mode": 0o640},
                "ConfigID": config.ID,
            },
        ],
    )
    out = ""

    async def output():
        nonlocal out
        out = await rig.logs(tid)
        return "read-only" in out

    for _ in range(300):
        if await output():
            break
        await asyncio.sleep(0.1)
    assert "read-only" in out, (out, rig.task(tid).Status)
    lines = out.splitlines()
    assert lines[0] == "/run/secrets/db 1234 2345 440"
    assert lines[1] == "/app.conf 0 0 444"
    assert lines[2] == "/etc/abs.conf 5 6 640"
    assert lines[3].split()[0] == hashlib.md5(token.encode()).hexdigest()
    assert lines[4] == "name=web"
    agent = rig.current
    assert set(agent.dependencies.secrets) == {secret.ID}
    for path in Path(rig.tmp).rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path

    await rig.set_desired(tid, TaskState.SHUTDOWN)
    await until(lambda: rig.state(tid) == TaskState.SHUTDOWN, "shut down")
    await until(lambda: not agent.dependencies.secrets, "the node forgot the secret")
    assert not agent.dependencies.configs
    assert not rig.node.files.task_dir(tid).exists()
