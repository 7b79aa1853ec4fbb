"""What the dashboard costs at scale: bytes sent to a page and the hub's time, with many tasks.

An in-memory store (no daemons) holds NODES nodes, SERVICES services and TASKS tasks, all
running; the dashboard's hub follows it with two pages open, one with nothing selected and
one showing the tasks of one service. Then:

- one task changes state (a restart, say);
- a burst: every task of one service changes (a rolling update's worth);
- a scale of one service (its spec only).

For each, the bytes each page is sent and the hub's time to apply and send the change. A page
never receives the task list of the cluster: only summaries that changed, and tasks of its
own selection.

Prints the figures and writes bench/results/dashboard_scale.json.
Run: .venv/bin/python bench/dashboard_scale.py [--tasks 100000]
"""

import argparse
import asyncio
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from shoal.api.base import Version  # noqa: E402
from shoal.api.objects import Node, NodeStatus, Service, Task, TaskStatus  # noqa: E402
from shoal.api.specs import ReplicatedService, ServiceMode, ServiceSpec  # noqa: E402
from shoal.api.types import NodeState, TaskState  # noqa: E402
from shoal.clock import SystemClock  # noqa: E402
from shoal.dashboard.hub import Hub, Viewer  # noqa: E402
from shoal.engineapi.event_log import EventLog  # noqa: E402
from shoal.store import MemoryStore  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from result_file import write_result  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "dashboard_scale.json"


class Source:
    def __init__(self, store: MemoryStore) -> None:
        self.events = EventLog()
        self.store = store

    def dashboard_store(self) -> MemoryStore:
        return self.store

    def dashboard_node_id(self) -> str:
        return "node-0"


def drain(viewer: Viewer) -> tuple[int, int, list[str]]:
    """(messages, bytes as the websocket sends them, their types) waiting for a page."""
    count = size = 0
    types = []
    while not viewer.queue.empty():
        message = viewer.queue.get_nowait()
        assert message is not None
        count += 1
        size += len(json.dumps(message, separators=(",", ":")))
        types.append(message["type"])
    return count, size, types


async def settle(hub: Hub, store: MemoryStore) -> None:
    """Until the hub has applied and sent everything up to the store's version."""
    # (Polls the hub from outside: it has no event to wait on, and needs none.)
    while hub.version != store.version or hub._tasks or hub._removed_tasks:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.15)  # its last flush


class StallMeter:
    """The longest the event loop went without running this (a node's raft heartbeats and
    sessions wait as long)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task | None = None

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.001)
            now = time.monotonic()
            self.longest = max(self.longest, now - last)
            last = now

    def __enter__(self) -> "StallMeter":
        self._task = asyncio.create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def run(nodes: int, services: int, tasks: int) -> dict:
    store = MemoryStore()
    per_service = tasks // services
    node_ids = [f"node-{i}" for i in range(nodes)]
    await store.batch(
        [
            (
                lambda tx, i=i: tx.create(
                    Node(ID=node_ids[i], Status=NodeStatus(State=NodeState.READY))
                )
            )
            for i in range(nodes)
        ]
    )

    def service(i: int, replicas: int) -> Service:
        return Service(
            ID=f"svc-{i}",
            Spec=ServiceSpec(
                Name=f"svc-{i}",
                Mode=ServiceMode(Replicated=ReplicatedService(Replicas=replicas)),
            ),
            SpecVersion=Version(Index=1),
        )

    def task(s: int, slot: int, state: TaskState = TaskState.RUNNING) -> Task:
        return Task(
            ID=f"t-{s}-{slot}",
            ServiceID=f"svc-{s}",
            Slot=slot,
            NodeID=node_ids[(s * per_service + slot) % nodes],
            DesiredState=TaskState.RUNNING,
            Status=TaskStatus(State=state),
            SpecVersion=Version(Index=1),
        )

    started = time.monotonic()
    await store.batch(
        [(lambda tx, i=i: tx.create(service(i, per_service))) for i in range(services)]
    )
    await store.batch(
        [
            (lambda tx, s=s, k=k: tx.create(task(s, k)))
            for s in range(services)
            for k in range(1, per_service + 1)
        ]
    )
    built = time.monotonic() - started

    hub = Hub(Source(store), SystemClock())
    idle, watching = Viewer(), Viewer()
    hub.viewers |= {idle, watching}
    load_started = time.monotonic()
    with StallMeter() as load_stall:
        running = asyncio.create_task(hub.run())
        while not (await idle.next() or {}).get("manager"):
            pass
        load_seconds = time.monotonic() - load_started
        await settle(hub, store)
    hub.select(watching, ("service", "svc-0"))
    reset_bytes = len(json.dumps(hub.state(), separators=(",", ":")))
    drain(idle)
    _, selected_bytes, _ = drain(watching)

    def changed(s: int, slot: int, state: TaskState) -> Task:
        current = store.view().get(Task, f"t-{s}-{slot}")
        assert current is not None
        new = current.clone()
        new.Status = TaskStatus(State=state)
        return new

    cases = {}

    async def case(name: str, change: object) -> None:
        before = time.monotonic()
        with StallMeter() as stall:
            await change  # type: ignore[misc]
            await settle(hub, store)
        idle_msgs, idle_bytes, idle_types = drain(idle)
        sel_msgs, sel_bytes, sel_types = drain(watching)
        cases[name] = {
            "seconds_to_pages": round(time.monotonic() - before - 0.15, 3),
            "longest_loop_stall_seconds": round(stall.longest, 3),
            "idle_page": {
                "messages": idle_msgs,
                "bytes": idle_bytes,
                "types": sorted(set(idle_types)),
            },
            "selecting_page": {
                "messages": sel_msgs,
                "bytes": sel_bytes,
                "types": sorted(set(sel_types)),
            },
        }

    one = changed(5, 1, TaskState.FAILED)
    await case("one task of another service fails", store.update(lambda tx: tx.update(one)))
    burst = [changed(0, k, TaskState.SHUTDOWN) for k in range(1, per_service + 1)]
    await case(
        f"every task of the selected service ({per_service}) shuts down",
        store.batch([(lambda tx, t=t: tx.update(t)) for t in burst]),
    )
    scaled = store.view().get(Service, "svc-7")
    assert scaled is not None
    scaled = scaled.clone()
    assert scaled.Spec.Mode.Replicated is not None
    scaled.Spec.Mode.Replicated.Replicas += 1
    await case("a service is scaled", store.update(lambda tx: tx.update(scaled)))

    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    store.close()
    return {
        "benchmark": "dashboard_scale",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "nodes": nodes,
        "services": services,
        "tasks": tasks,
        "store_built_seconds": round(built, 1),
        "hub_load_seconds": round(load_seconds, 3),
        "hub_load_longest_loop_stall_seconds": round(load_stall.longest, 3),
        "reset_bytes": reset_bytes,
        "selected_service_tasks_bytes": selected_bytes,
        "cases": cases,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()
    report = asyncio.run(run(args.nodes, args.services, args.tasks))
    print(
        f"{report['nodes']} nodes, {report['services']} services, {report['tasks']} tasks: "
        f"a page starts from {report['reset_bytes'] / 1024:.0f} KiB (summaries and events); "
        f"the tasks of one service are {report['selected_service_tasks_bytes'] / 1024:.0f} KiB; "
        f"the hub reads the store in {report['hub_load_seconds']:.2f} s, the node's other work "
        f"waiting at most {report['hub_load_longest_loop_stall_seconds'] * 1000:.0f} ms"
    )
    for name, c in report["cases"].items():
        print(
            f"  {name}: page with nothing selected {c['idle_page']['bytes']} bytes in "
            f"{c['idle_page']['messages']} message(s); page showing svc-0's tasks "
            f"{c['selecting_page']['bytes']} bytes in {c['selecting_page']['messages']}; "
            f"{c['seconds_to_pages'] * 1000:.0f} ms to the pages, longest stall "
            f"{c['longest_loop_stall_seconds'] * 1000:.0f} ms"
        )
    write_result(RESULTS, report)


if __name__ == "__main__":
    main()
