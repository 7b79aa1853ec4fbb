"""What the dashboard's hub sends a page as the store changes: a reset to start from, then
only what changed; the tasks of the page's selection only; a reset again when the store is
replaced from a snapshot or the node stops being a manager."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shoal.api.base import Version
from shoal.api.objects import Node, NodeStatus, Service, Task, TaskStatus
from shoal.api.specs import ReplicatedService, ServiceMode, ServiceSpec
from shoal.api.types import NodeState, TaskState
from shoal.clock import SystemClock
from shoal.dashboard.hub import Hub, Viewer
from shoal.engineapi.event_log import EventLog, event_message
from shoal.store import MemoryStore


class Source:
    def __init__(self, store: MemoryStore | None) -> None:
        self.events = EventLog()
        self.store = store

    def dashboard_store(self) -> MemoryStore | None:
        return self.store

    def dashboard_node_id(self) -> str:
        return "n1"


def web(replicas: int = 2) -> Service:
    return Service(
        ID="svc-web",
        Spec=ServiceSpec(
            Name="web", Mode=ServiceMode(Replicated=ReplicatedService(Replicas=replicas))
        ),
        SpecVersion=Version(Index=1),
    )


def task(ident: str, service: str, slot: int, node: str, state: TaskState) -> Task:
    return Task(
        ID=ident,
        ServiceID=service,
        Slot=slot,
        NodeID=node,
        DesiredState=TaskState.RUNNING,
        Status=TaskStatus(State=state),
        SpecVersion=Version(Index=1),
    )


async def next_of(viewer: Viewer, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            message = await viewer.next()
            assert message is not None, "the page was dropped"
            if message["type"] == kind:
                return message


def pending(viewer: Viewer) -> list[dict[str, Any]]:
    out = []
    while not viewer.queue.empty():
        message = viewer.queue.get_nowait()
        assert message is not None
        out.append(message)
    return out


@pytest.fixture
async def setup() -> AsyncIterator[tuple[MemoryStore, Source, Hub]]:
    store = MemoryStore()
    await store.update(
        lambda tx: (
            tx.create(Node(ID="n1", Status=NodeStatus(State=NodeState.READY))),
            tx.create(web()),
            tx.create(task("t1", "svc-web", 1, "n1", TaskState.PENDING)),
            tx.create(task("t2", "svc-web", 2, "n1", TaskState.RUNNING)),
        )
    )
    source = Source(store)
    hub = Hub(source, SystemClock())
    first = hub.attach()
    running = asyncio.create_task(hub.run())
    while not (await next_of(first, "reset"))["manager"]:
        pass
    hub.detach(first)
    yield store, source, hub
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    store.close()


async def test_a_page_starts_from_summaries_and_gets_only_what_changed(setup):
    store, _source, hub = setup
    page, other = hub.attach(), hub.attach()
    reset = await next_of(page, "reset")
    assert [s["name"] for s in reset["services"]] == ["web"]
    assert (reset["services"][0]["running"], reset["services"][0]["desired"]) == (1, 2)
    assert reset["nodes"][0]["runningTasks"] == 1
    assert "tasks" not in reset  # tasks only for a selection
    hub.select(page, ("service", "svc-web"))
    tasks = await next_of(page, "tasks")
    assert {t["id"] for t in tasks["tasks"]} == {"t1", "t2"} and tasks["total"] == 2

    running = store.view().get(Task, "t1").clone()
    running.Status = TaskStatus(State=TaskState.RUNNING)
    await store.update(lambda tx: tx.update(running))
    delta = await next_of(page, "delta")
    assert [s["running"] for s in delta["services"]["upsert"]] == [2]
    assert [n["runningTasks"] for n in delta["nodes"]["upsert"]] == [2]
    assert "networks" not in delta
    change = await next_of(page, "taskdelta")
    assert [t["id"] for t in change["upsert"]] == ["t1"] and change["remove"] == []
    # A page that selected nothing gets the summaries, no tasks.
    await next_of(other, "delta")
    assert [m["type"] for m in pending(other)] == []

    # A task of a service it did not select: its summaries, not the task.
    await store.update(
        lambda tx: (
            tx.create(Service(ID="svc-api", Spec=ServiceSpec(Name="api"))),
            tx.create(task("t3", "svc-api", 1, "n1", TaskState.RUNNING)),
        )
    )
    delta = await next_of(page, "delta")
    assert [s["name"] for s in delta["services"]["upsert"]] == ["api"]
    await asyncio.sleep(0.2)
    assert [m["type"] for m in pending(page)] == []

    await store.update(lambda tx: tx.delete(Task, "t2"))
    change = await next_of(page, "taskdelta")
    assert change["remove"] == ["t2"]


async def test_a_page_is_sent_the_events_as_they_come(setup):
    _store, source, hub = setup
    page = hub.attach()
    await next_of(page, "reset")
    source.events.publish(event_message("service", "create", "svc-x", {"name": "x"}, "swarm", 1))
    message = await next_of(page, "event")
    assert message["event"]["Actor"]["Attributes"] == {"name": "x"}
    assert hub.state()["events"][-1]["Actor"]["ID"] == "svc-x"


async def test_a_store_replaced_from_a_snapshot_sends_a_reset(setup):
    store, _source, hub = setup
    page = hub.attach()
    await next_of(page, "reset")
    other = MemoryStore()
    await other.update(
        lambda tx: (
            tx.create(web(replicas=7)),
            tx.create(web(7).model_copy(update={"ID": "svc-b", "Spec": ServiceSpec(Name="b")})),
        )
    )
    snapshot = other.snapshot()
    snapshot["Version"] = store.version + 5
    store.restore(snapshot)  # as a follower installs a leader's snapshot: no watch events
    reset = await next_of(page, "reset")
    assert sorted(s["name"] for s in reset["services"]) == ["b", "web"]


async def test_no_longer_a_manager_sends_an_empty_reset(setup):
    _store, source, hub = setup
    page = hub.attach()
    await next_of(page, "reset")
    source.store = None
    reset = await next_of(page, "reset")
    assert reset["manager"] is False and reset["services"] == []


async def test_a_page_that_does_not_keep_up_is_dropped(setup):
    _store, _source, hub = setup
    page = hub.attach()
    for i in range(3000):
        page.send({"type": "event", "n": i})
    assert page.dropped
    got = 0
    while await page.next() is not None:
        got += 1
    assert got < 3000  # the rest was never queued; the page reconnects and starts afresh
