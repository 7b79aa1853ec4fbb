"""The container runtime on a real Docker Engine: each controller step against real
containers of the locally built busybox image."""

import asyncio
import os
import urllib.error
import urllib.request

import pytest

from shoal.agent.exec.base import ExitError, TaskFailed
from shoal.agent.exec.container import ContainerExecutor
from shoal.agent.exec.engine import Engine
from shoal.api.ids import new_id
from shoal.api.objects import Task
from shoal.api.specs import SECOND, EndpointPortConfig, EndpointSpec
from shoal.clock import SystemClock
from tests.docker.conftest import IMAGE, until

MS = SECOND // 1000


def task(node_id: str, *argv: str, image: str = IMAGE, slot: int | None = 2, **spec) -> Task:
    return Task.model_validate(
        {
            "ID": new_id(),
            "ServiceID": "svc1",
            "Slot": slot,
            "NodeID": node_id,
            "ServiceAnnotations": {"Name": "web"},
            "Spec": {
                "ContainerSpec": {"Image": image, "Args": list(argv), **spec.pop("container", {})},
                **spec,
            },
        }
    )


async def run(ctl) -> None:
    await ctl.prepare()
    await ctl.start()


async def test_runs_to_completion_as_swarm_names_and_labels_it(executor, engine, node):
    t = task(node.node_id, "sh", "-c", "echo hello", container={"Labels": {"tier": "front"}})
    ctl = executor.controller(t)
    await run(ctl)
    await ctl.wait()
    status = ctl.container_status()
    assert status.ExitCode == 0 and status.PID == 0 and len(status.ContainerID) == 64
    insp = await engine.inspect(status.ContainerID)
    assert insp["Name"] == f"/web.2.{t.ID}"
    assert insp["Config"]["Image"] == IMAGE
    labels = insp["Config"]["Labels"]
    assert labels["tier"] == "front"
    assert {k: v for k, v in labels.items() if k.startswith("com.docker.swarm")} == {
        "com.docker.swarm.task": "",
        "com.docker.swarm.task.id": t.ID,
        "com.docker.swarm.task.name": f"web.2.{t.ID}",
        "com.docker.swarm.node.id": node.node_id,
        "com.docker.swarm.service.id": "svc1",
        "com.docker.swarm.service.name": "web",
    }
    await ctl.remove()
    assert await executor.containers() == {}


async def test_global_task_is_named_by_its_node(executor, engine, node):
    t = task(node.node_id, "true", slot=None)
    ctl = executor.controller(t)
    await ctl.prepare()
    insp = await engine.inspect(ctl.container_status().ContainerID)
    assert insp["Name"] == f"/web.{node.node_id}.{t.ID}"


async def test_failing_command_fails_with_its_exit_code(executor, node):
    ctl = executor.controller(task(node.node_id, "sh", "-c", "exit 3"))
    await run(ctl)
    with pytest.raises(ExitError) as err:
        await ctl.wait()
    assert str(err.value) == "task: non-zero exit (3)"
    assert ctl.container_status().ExitCode == 3


async def test_missing_image_is_rejected_with_dockers_message(executor, node):
    # A registry that refuses at once: the pull fails quickly, with no network needed.
    image = "127.0.0.1:9/shoal-no-such-image:1.0"
    ctl = executor.controller(task(node.node_id, "true", image=image))
    with pytest.raises(TaskFailed) as err:
        await ctl.prepare()
    assert str(err.value) == f"No such image: {image}"
    status = ctl.container_status()
    assert (status.ContainerID, status.PID, status.ExitCode) == ("", 0, 0)


async def test_missing_command_fails_to_start(executor, node):
    ctl = executor.controller(task(node.node_id, "no-such-program"))
    await ctl.prepare()
    with pytest.raises(TaskFailed, match=r"^starting container failed: .*no-such-program"):
        await ctl.start()


async def test_prepare_and_start_are_idempotent(executor, node):
    ctl = executor.controller(task(node.node_id, "sleep", "30", container={"StopGracePeriod": 0}))
    await run(ctl)
    first = ctl.container_status()
    await run(ctl)  # a restarted agent may repeat either step
    assert ctl.container_status().ContainerID == first.ContainerID
    assert ctl.container_status().PID == first.PID > 0
    await ctl.shutdown()


async def test_stop_signal_and_grace_period(executor, node):
    # The stop signal is trapped: the command ends on its own, with its own exit code.
    graceful = executor.controller(
        task(
            node.node_id,
            "sh",
            "-c",
            "trap 'exit 42' USR1; while true; do sleep 0.05; done",
            container={"StopSignal": "SIGUSR1", "StopGracePeriod": 30 * SECOND},
        )
    )
    # The stop signal is ignored: the engine kills it once the grace period is over.
    stubborn = executor.controller(
        task(
            node.node_id,
            "sh",
            "-c",
            "trap '' TERM; while true; do sleep 0.05; done",
            container={"StopGracePeriod": 1 * SECOND},
        )
    )
    await asyncio.gather(run(graceful), run(stubborn))
    await asyncio.gather(graceful.shutdown(), stubborn.shutdown())
    assert graceful.container_status().ExitCode == 42
    assert stubborn.container_status().ExitCode == 137


async def test_killed_behind_our_back_fails_the_wait(executor, engine, node):
    ctl = executor.controller(task(node.node_id, "sleep", "300"))
    await run(ctl)
    waiting = asyncio.ensure_future(ctl.wait())
    await asyncio.sleep(0)
    await engine.kill(ctl.name)  # as `docker kill` would
    with pytest.raises(ExitError, match=r"^task: non-zero exit \(137\)$"):
        await waiting


async def test_healthy_container_is_started_only_once_healthy(executor, engine, node, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    ctl = executor.controller(
        task(
            node.node_id,
            "sleep",
            "300",
            container={
                "StopGracePeriod": 0,
                "Mounts": [{"Type": "bind", "Source": str(shared), "Target": "/shared"}],
                "Healthcheck": {
                    "Test": ["CMD-SHELL", "test -f /shared/ok"],
                    "Interval": 50 * MS,
                    # Failures before the first success do not count (start period), after it
                    # the first one makes the container unhealthy.
                    "StartPeriod": 120 * SECOND,
                    "Retries": 1,
                },
            },
        )
    )
    await ctl.prepare()
    starting = asyncio.ensure_future(ctl.start())
    await until(lambda: ctl.container_status().PID or starting.done(), "container running")
    # Running, but not healthy: starting goes on until the healthcheck passes.
    health = (await engine.inspect(ctl.name))["State"]["Health"]["Status"]
    assert health == "starting" and not starting.done()
    (shared / "ok").touch()
    await starting
    assert (await engine.inspect(ctl.name))["State"]["Health"]["Status"] == "healthy"

    # Unhealthy later: the container is stopped and the task fails, as Swarm says.
    waiting = asyncio.ensure_future(ctl.wait())
    await asyncio.sleep(0.2)
    assert not waiting.done()
    (shared / "ok").unlink()
    with pytest.raises(ExitError) as err:
        await waiting
    assert str(err.value) == "task: non-zero exit (137): dockerexec: unhealthy container"


async def test_unhealthy_container_fails_to_start(executor, node):
    ctl = executor.controller(
        task(
            node.node_id,
            "sleep",
            "300",
            container={
                "StopGracePeriod": 0,
                "Healthcheck": {"Test": ["CMD", "false"], "Interval": 50 * MS, "Retries": 1},
            },
        )
    )
    await ctl.prepare()
    with pytest.raises(ExitError) as err:
        await ctl.start()
    assert str(err.value) == "task: non-zero exit (137): dockerexec: unhealthy container"
    assert ctl.container_status().ExitCode == 137


async def test_spec_fields_reach_the_container(executor, engine, node, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    script = (
        'echo "$WHO $(hostname) $(id -u) $(pwd)" > /out/result; '
        "touch /rootfs-file 2>/dev/null || echo read-only >> /out/result; "
        "echo x > /scratch/f && echo tmpfs >> /out/result; "
        "grep -q ' /data ' /proc/mounts && echo volume >> /out/result; "
        "cat /etc/hosts | grep -q 'db.example' && echo hosts >> /out/result"
    )
    volume = f"shoal-test-{new_id()}"
    t = task(
        node.node_id,
        "-c",
        script,
        container={
            "Command": ["sh"],
            "Env": ["WHO={{.Service.Name}}.{{.Task.Slot}}@{{.Node.Hostname}}"],
            "Hostname": "{{.Service.Name}}-{{.Task.Slot}}",
            "User": "nobody",
            "Dir": "/tmp",
            "ReadOnly": True,
            "Init": True,
            "Hosts": ["10.1.2.3 db.example"],
            "Mounts": [
                {"Type": "bind", "Source": str(out), "Target": "/out"},
                {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"Mode": 0o1777}},
                {"Type": "volume", "Source": volume, "Target": "/data"},
            ],
        },
        Resources={"Limits": {"MemoryBytes": 64 * 1024 * 1024, "NanoCPUs": SECOND // 2}},
    )
    ctl = executor.controller(t)
    try:
        await run(ctl)
        await ctl.wait()
        host = (await engine.inspect(ctl.name))["HostConfig"]
        assert (host["Memory"], host["NanoCpus"], host["ReadonlyRootfs"], host["Init"]) == (
            64 * 1024 * 1024,
            SECOND // 2,
            True,
            True,
        )
        lines = (out / "result").read_text().splitlines()
        assert lines == [
            "web.2@host1 web-2 65534 /tmp",
            "read-only",
            "tmpfs",
            "volume",
            "hosts",
        ]
    finally:
        await ctl.remove()
        await engine._json(f"volumes/{volume}", "DELETE")


async def test_missing_bind_source_is_refused(executor, node, tmp_path):
    source = tmp_path / "source"
    mounts = [{"Type": "bind", "Source": str(source), "Target": "/m"}]
    # Missing when the container is made: the engine refuses, in its words (as in Swarm,
    # where `service ps` shows this error on the rejected task).
    ctl = executor.controller(task(node.node_id, "true", container={"Mounts": mounts}))
    with pytest.raises(TaskFailed) as err:
        await ctl.prepare()
    assert str(err.value) == (
        f'invalid mount config for type "bind": bind source path does not exist: {source}'
    )
    # Gone between making the container and starting it: Swarm's own check refuses.
    source.mkdir()
    ctl = executor.controller(task(node.node_id, "true", container={"Mounts": mounts}))
    await ctl.prepare()
    source.rmdir()
    with pytest.raises(TaskFailed) as err:
        await ctl.start()
    assert str(err.value) == f"invalid bind mount source, source path not found: {source}"


async def test_host_mode_port_is_published_and_reported(executor, node):
    t = task(node.node_id, "httpd", "-f", "-p", "80", container={"StopGracePeriod": 0})
    t.Endpoint = EndpointSpec(Ports=[EndpointPortConfig(TargetPort=80, PublishMode="host")])
    ctl = executor.controller(t)
    await run(ctl)
    ports = ctl.port_status()
    assert ports and all(p.TargetPort == 80 and p.PublishMode == "host" for p in ports)
    port = ports[0].PublishedPort
    assert port > 0

    def fetch() -> int:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
        except urllib.error.HTTPError as err:
            return err.code  # httpd answered, whatever it thinks of "/"
        return 200

    assert await until(lambda: _try(fetch), "httpd answers on the published port")
    await ctl.shutdown()


def _try(fn):
    try:
        return fn()
    except OSError:
        return None


async def test_a_new_agent_adopts_a_running_container(engine, node):
    first = ContainerExecutor(engine, node, SystemClock())
    t = task(node.node_id, "sleep", "300", container={"StopGracePeriod": 0})
    ctl = first.controller(t)
    await run(ctl)
    cid, pid = ctl.container_status().ContainerID, ctl.container_status().PID

    # Another agent (after a restart): nothing remembered but the task; the container is found
    # by its name.
    other_engine = Engine(engine.host)
    try:
        again = ContainerExecutor(other_engine, node, SystemClock()).controller(t)
        await again.start()
        assert (again.container_status().ContainerID, again.container_status().PID) == (cid, pid)
        waiting = asyncio.ensure_future(again.wait())
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await again.shutdown()
        with pytest.raises(ExitError, match=r"\(137\)"):
            await waiting
        await again.remove()
    finally:
        await other_engine.close()


async def test_reconcile_removes_only_this_nodes_unassigned_containers(engine, node):
    mine = ContainerExecutor(engine, node, SystemClock())
    other_node = node.__class__(node_id=new_id(), hostname="host2", addr="127.0.0.1")
    theirs = ContainerExecutor(engine, other_node, SystemClock())
    keep = task(node.node_id, "true")
    drop = task(node.node_id, "true")
    foreign = task(other_node.node_id, "true")
    try:
        for ex, t in ((mine, keep), (mine, drop), (theirs, foreign)):
            await ex.controller(t).prepare()
        assert set(await mine.containers()) == {keep.ID, drop.ID}
        assert await mine.reconcile({keep.ID}) == [drop.ID]
        assert set(await mine.containers()) == {keep.ID}
        assert set(await theirs.containers()) == {foreign.ID}, "another node's are untouched"
    finally:
        await mine.reconcile(set())
        await theirs.reconcile(set())
