"""Secrets and configs reach a process task through a real dispatcher and agent: the task reads
them at Swarm's paths with the reference's owner and mode, the node forgets them once no task
uses them, and no file of the node's state holds their bytes."""

import asyncio
import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from shoal.agent.agent import Agent, AgentConfig
from shoal.agent.describe import describe_node
from shoal.agent.exec.base import NodeContext
from shoal.agent.exec.files_root import TaskFilesRoot
from shoal.agent.exec.process import ProcessController, ProcessExecutor
from shoal.agent.storage import AgentStorage
from shoal.api.ids import new_id
from shoal.api.objects import Config, Secret
from shoal.api.specs import ConfigSpec, SecretSpec
from shoal.api.types import TaskState
from shoal.rpc import Transport
from tests.integration.test_agent_dispatcher import Rig, until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")


class SecretsRig(Rig):
    def agent(self) -> Agent:
        node = NodeContext(node_id=self.node_id, hostname="h1", addr="127.0.0.1")
        node.files = TaskFilesRoot.open(self.node_id)
        self.node = node
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
            node.dependencies,
        )

    async def add(self, obj):
        await self.store.update(lambda tx: tx.create(obj))
        return obj

    def log(self, task_id) -> str:
        path = self.tmp / "worker" / "tasks" / task_id / "log.json"
        if not path.exists():
            return ""
        return "".join(json.loads(line)["log"] for line in path.read_text().splitlines())

    async def close(self):
        await super().close()
        if getattr(self, "node", None) is not None and self.node.files is not None:
            self.node.files.close()


@pytest.fixture
async def rig(tmp_path):
    r = SecretsRig(tmp_path)
    await r.start()
    yield r
    await r.close()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def files_under(root: Path):
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


async def test_a_process_task_reads_its_secret_and_config_then_the_node_forgets_them(rig):
    token = f"s3cr3t-{new_id()}"
    secret = await rig.add(Secret(ID=new_id(), Spec=SecretSpec(Name="db", Data=b64(token))))
    config = await rig.add(
        Config(
            ID=new_id(),
            Spec=ConfigSpec(
                Name="app",
                Data=b64('svc={{.Service.Name}} slot={{.Task.Slot}} env={{env "MODE"}}'),
                Templating={"Name": "golang"},
            ),
        )
    )
    config_target = f"shoal-test-{new_id()[:8]}.conf"  # under /, as Docker puts it
    rig.run_agent()
    script = (
        f'stat -c "%n %u %g %a" /run/secrets/db /{config_target}; '
        # A digest only: the task's log is on disk, and must not hold the secret either.
        f'md5sum < /run/secrets/db; cat /{config_target}; echo; echo "dir=$SHOAL_SECRETS_DIR"; '
        "echo x > /run/secrets/db 2>/dev/null || echo read-only; sleep 300"
    )
    tid = await rig.assign(
        "sh",
        "-c",
        script,
        Env=["MODE=blue"],
        Secrets=[
            {
                "File": {"Name": "db", "UID": "1234", "GID": "2345", "Mode": 0o440},
                "SecretID": secret.ID,
                "SecretName": "db",
            }
        ],
        Configs=[
            {
                "File": {"Name": config_target, "UID": "0", "GID": "0", "Mode": 0o444},
                "ConfigID": config.ID,
                "ConfigName": "app",
            }
        ],
    )
    await until(lambda: "read-only" in rig.log(tid), f"the task's output: {rig.task(tid).Status}")
    out = rig.log(tid).splitlines()
    assert out[0] == "/run/secrets/db 1234 2345 440"
    assert out[1] == f"/{config_target} 0 0 444"
    assert out[2].split()[0] == hashlib.md5(token.encode()).hexdigest()
    assert out[3] == "svc=web slot=1 env=blue"
    assert out[4] == "dir=/run/secrets"
    # The host's own tree is untouched: the task saw them in a namespace of its own.
    assert not os.path.exists(f"/{config_target}")
    agent = rig.current
    assert set(agent.dependencies.secrets) == {secret.ID}
    assert set(agent.dependencies.configs) == {config.ID}
    task_files = rig.node.files.task_dir(tid)
    assert (task_files / "run/secrets/db").read_text() == token  # on the node's tmpfs

    # Nothing the node keeps on disk holds the secret's bytes.
    for path in files_under(rig.tmp):
        assert token.encode() not in path.read_bytes(), path

    # The service drops the reference: its task is replaced by one without it.
    await rig.set_desired(tid, TaskState.SHUTDOWN)
    after = await rig.assign("sh", "-c", "test -e /run/secrets/db; echo exists=$?; sleep 300")
    await until(lambda: rig.task(tid).Status.State == TaskState.SHUTDOWN, "old task shut down")
    await until(lambda: "exists=1" in rig.log(after), f"new task: {rig.task(after).Status}")
    await until(lambda: not agent.dependencies.secrets, "the node forgot the secret")
    assert not agent.dependencies.configs
    assert not task_files.exists()
    for path in files_under(rig.tmp):
        assert token.encode() not in path.read_bytes(), path


async def test_a_template_naming_a_secret_the_task_lacks_fails_the_task(rig):
    secret = await rig.add(
        Secret(
            ID=new_id(),
            Spec=SecretSpec(
                Name="t", Data=b64('X={{secret "nope"}}'), Templating={"Name": "golang"}
            ),
        )
    )
    rig.run_agent()
    tid = await rig.assign(
        "sleep",
        "300",
        Secrets=[{"File": {"Name": "t"}, "SecretID": secret.ID, "SecretName": "t"}],
    )
    await until(lambda: rig.task(tid).Status.State == TaskState.FAILED, "failed")
    status = rig.task(tid).Status
    assert status.Message == "starting"
    assert status.Err == (
        "starting process failed: unable to get secret from secret store: failed to expand "
        f'templated secret {secret.ID}: template: expansion:1:4: executing "expansion" at '
        '<secret "nope">: error calling secret: secret target nope not found'
    )


async def test_without_root_the_task_finds_its_files_in_a_private_directory(rig, monkeypatch):
    monkeypatch.setattr(ProcessController, "_as_root", staticmethod(lambda: False))
    token = f"plain-{new_id()}"
    secret = await rig.add(Secret(ID=new_id(), Spec=SecretSpec(Name="k", Data=b64(token))))
    rig.run_agent()
    tid = await rig.assign(
        "sh",
        "-c",
        'cat "$SHOAL_SECRETS_DIR/k"; echo; echo "$SHOAL_SECRETS_DIR"; sleep 300',
        Secrets=[{"File": {"Name": "k", "Mode": 0o400}, "SecretID": secret.ID, "SecretName": "k"}],
    )
    await until(lambda: len(rig.log(tid).splitlines()) >= 2, f"output: {rig.task(tid).Status}")
    content, directory = rig.log(tid).splitlines()[:2]
    assert content == token
    assert directory == str(rig.node.files.task_dir(tid)) + "/run/secrets"
    assert oct(os.stat(Path(directory) / "k").st_mode & 0o777) == oct(0o400)
    await rig.set_desired(tid, TaskState.SHUTDOWN)
    await until(lambda: not Path(directory).exists(), "files removed when the task ends")
    await asyncio.sleep(0)


async def test_a_restarted_agent_waits_for_the_secrets_of_a_task_it_had_not_started(rig):
    """The agent saved a task it had accepted but not started; its secrets were never saved.
    Restarted, it must not start the task before the managers send them again."""
    token = f"later-{new_id()}"
    secret = await rig.add(Secret(ID=new_id(), Spec=SecretSpec(Name="k", Data=b64(token))))
    tid = await rig.assign(
        "sh",
        "-c",
        "md5sum < /run/secrets/k; sleep 300",
        Secrets=[{"File": {"Name": "k"}, "SecretID": secret.ID, "SecretName": "k"}],
    )
    accepted = rig.task(tid).clone()
    accepted.Status.State = TaskState.ACCEPTED
    await rig.store.update(lambda tx: tx.update(accepted))
    AgentStorage(rig.tmp / "worker").save({tid: accepted})
    rig.run_agent()
    await until(lambda: rig.task(tid).Status.State == TaskState.RUNNING, str(rig.task(tid).Status))
    digest = hashlib.md5(token.encode()).hexdigest()
    await until(lambda: digest in rig.log(tid), "the task read its secret")
