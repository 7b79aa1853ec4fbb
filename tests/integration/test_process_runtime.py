"""The process runtime with real child processes."""

import asyncio
import json
import os
import sys
import urllib.request

import pytest

from shoal.agent.exec.base import ExitError, NodeContext, TaskFailed
from shoal.agent.exec.process import ProcessExecutor, pid_alive
from shoal.api.ids import new_id
from shoal.api.objects import Task
from shoal.api.specs import SECOND

NODE = NodeContext(node_id="n1", hostname="host1", addr="127.0.0.1")


def task(*argv: str, ports=(), **spec) -> Task:
    return Task.model_validate(
        {
            "ID": new_id(),
            "ServiceID": "s1",
            "Slot": 2,
            "ServiceAnnotations": {"Name": "web"},
            "Spec": {
                "Runtime": "process",
                "ContainerSpec": {"Image": argv[0], "Args": list(argv[1:]), **spec},
            },
            "Endpoint": {"Ports": [{"TargetPort": p} for p in ports]},
        }
    )


@pytest.fixture
def executor(tmp_path):
    return ProcessExecutor(tmp_path / "tasks", NODE)


async def run(ctl):
    await ctl.prepare()
    await ctl.start()


async def test_exit_zero_and_non_zero(executor):
    ok = executor.controller(task("sh", "-c", "echo hello; echo oops >&2"))
    await run(ok)
    await ok.wait()
    lines = [json.loads(ln) for ln in executor.log_path(ok.task.ID).read_text().splitlines()]
    # stdout and stderr are separate pipes: their relative order is not guaranteed.
    assert sorted((ln["stream"], ln["log"]) for ln in lines) == [
        ("stderr", "oops\n"),
        ("stdout", "hello\n"),
    ]
    assert all(ln["time"].endswith("Z") for ln in lines)
    bad = executor.controller(task("sh", "-c", "exit 3"))
    await run(bad)
    with pytest.raises(ExitError) as err:
        await bad.wait()
    assert str(err.value) == "task: non-zero exit (3)"
    assert bad.container_status().ExitCode == 3


async def test_missing_program_is_refused_in_prepare(executor):
    ctl = executor.controller(task("no-such-program-anywhere"))
    with pytest.raises(TaskFailed, match="executable file not found"):
        await ctl.prepare()


async def test_ports_env_and_placeholders(executor):
    script = "import os,sys; print(os.environ['HOST'], os.environ['PORT'], os.environ['PORT_80'], os.environ['WHO'])"
    ctl = executor.controller(
        task(
            sys.executable,
            "-c",
            script,
            ports=[80],
            Env=["WHO={{.Service.Name}}.{{.Task.Slot}}@{{.Node.Hostname}}"],
        )
    )
    await run(ctl)
    await ctl.wait()
    [port] = ctl.port_status()
    assert port.TargetPort == 80 and port.PublishMode == "host"
    out = json.loads(executor.log_path(ctl.task.ID).read_text().splitlines()[0])["log"]
    assert out.split() == [
        "127.0.0.1",
        str(port.PublishedPort),
        str(port.PublishedPort),
        "web.2@host1",
    ]


async def test_a_served_port_answers(executor):
    # http.server takes the port as an argument: pass $PORT through the shell.
    ctl = executor.controller(
        task(
            "sh", "-c", f'exec {sys.executable} -m http.server --bind "$HOST" "$PORT"', ports=[8000]
        )
    )
    await run(ctl)
    [port] = ctl.port_status()

    def fetch():
        for _ in range(100):
            try:
                return urllib.request.urlopen(
                    f"http://127.0.0.1:{port.PublishedPort}/", timeout=2
                ).status
            except OSError:
                import time

                time.sleep(0.05)
        raise AssertionError("no answer")

    assert await asyncio.to_thread(fetch) == 200
    await ctl.shutdown()
    assert ctl.container_status().ExitCode == 143  # SIGTERM, as a container reports it


async def test_shutdown_kills_after_grace_when_term_is_ignored(executor):
    ctl = executor.controller(
        task(
            "sh",
            "-c",
            "trap '' TERM; echo ready; while true; do sleep 0.1; done",
            StopGracePeriod=SECOND // 5,
        )
    )
    await run(ctl)
    pid = ctl.container_status().PID
    await ctl.shutdown()
    assert ctl.container_status().ExitCode == 137
    assert not pid_alive(pid, None)


async def test_a_new_controller_adopts_a_running_task(executor):
    t = task("sh", "-c", "echo started; sleep 30")
    first = executor.controller(t)
    await run(first)
    pid = first.container_status().PID
    # A restarted daemon makes a new controller for the same task: it must not start a copy.
    again = executor.controller(t)
    await again.prepare()
    await again.start()
    assert again.container_status().PID == pid
    assert again.is_running()
    os.killpg(pid, 9)
    with pytest.raises(ExitError) as err:
        await again.wait()
    assert err.value.exit_code == 137
    await again.remove()
    assert not (executor.dir / t.ID).exists()
