"""A container task's logs, read from the engine as the log broker reads any task's."""

import asyncio

import pytest

from shoal.api.ids import new_id
from shoal.api.objects import Task
from tests.docker.conftest import IMAGE

model = pytest.importorskip("shoal.logs.model", reason="the shoal.logs types are not here yet")
LogOptions = model.LogOptions


def task(node_id: str, script: str) -> Task:
    return Task.model_validate(
        {
            "ID": new_id(),
            "ServiceID": "svc1",
            "Slot": 1,
            "NodeID": node_id,
            "ServiceAnnotations": {"Name": "web"},
            "Spec": {
                "ContainerSpec": {"Image": IMAGE, "Args": ["sh", "-c", script]},
            },
        }
    )


async def collect(ctl, **options) -> list:
    return [line async for line in ctl.logs(LogOptions(**options))]


async def test_lines_with_stream_and_time(executor, node):
    ctl = executor.controller(task(node.node_id, "echo one; echo two >&2; echo three"))
    assert await collect(ctl) == [], "no container yet: nothing to read"
    await ctl.prepare()
    await ctl.start()
    await ctl.wait()
    lines = await collect(ctl)
    assert sorted((ln.stream, ln.data) for ln in lines) == [
        ("stderr", b"two\n"),
        ("stdout", b"one\n"),
        ("stdout", b"three\n"),
    ]
    stamps = [ln.timestamp_ns for ln in lines]
    # Ordered within a stream; across stdout and stderr the engine's copiers may interleave.
    out_stamps = [ln.timestamp_ns for ln in lines if ln.stream == "stdout"]
    assert out_stamps == sorted(out_stamps) and min(stamps) > 1_600_000_000 * 10**9
    assert [ln.data for ln in await collect(ctl, tail=1)] == [lines[-1].data]
    assert [ln.data for ln in await collect(ctl, stderr=False)] == [b"one\n", b"three\n"]
    later = await collect(ctl, since_ns=max(stamps))
    assert [ln.data for ln in later] == [ln.data for ln in lines if ln.timestamp_ns == max(stamps)]


async def test_follow_waits_for_the_start_and_ends_with_the_container(executor, node):
    ctl = executor.controller(task(node.node_id, "for i in 1 2 3; do echo $i; sleep 0.1; done"))
    await ctl.prepare()
    follower = asyncio.ensure_future(collect(ctl, follow=True))
    await asyncio.sleep(0.2)
    assert not follower.done(), "a created container has no log yet: following waits"
    await ctl.start()
    lines = await asyncio.wait_for(follower, 30)
    assert [ln.data for ln in lines] == [b"1\n", b"2\n", b"3\n"]
