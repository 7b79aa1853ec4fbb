"""The dispatcher's fan-out of store changes to agent sessions, in process: N sessions (one
per node, each running the Assignments stream's loop: wait for a change, gather a batch window,
work out the message) while tasks are written as the leader writes them (created and assigned
in proposals of up to 200 changes, as the scheduler does, then moved to RUNNING in proposals
of up to 200, as the dispatcher's status flush does). Two ways of feeding the sessions:

- ``subscription``: each session has a store subscription of its own and sees every change
  and every commit (the dispatcher before the router);
- ``router``: one listener for the dispatcher routes each change to the sessions it concerns
  (shoal.manager.dispatcher.router), and keeps the routing table they share.

Reported for each: CPU seconds of the process from the first write until every session has
been sent its tasks and gone idle, wall seconds, events queued to sessions, session wake-ups,
messages and tasks sent. The tasks sent must be the same; the messages are fewer with the
router, as a session's batch window opens at the first change that concerns it rather than at
any commit in the cluster, so it gathers more of its tasks in one. Writes
bench/results/dispatcher_fanout.json.

``--published``: the service publishes a port on the routing mesh, and each task reports its
host port as it runs. Every such change may move the routing table every node is sent, so it
goes to every session, and each works out the new table (to send it if it changed).

Run: .venv/bin/python bench/dispatcher_fanout.py [--nodes 200 500] [--tasks 10000] [--published]
"""

import argparse
import asyncio
import platform
import sys
import time
from pathlib import Path
from typing import Any

from shoal.api.ids import new_id
from shoal.api.objects import Endpoint, Node, NodeStatus, PortStatus, Service, Task
from shoal.api.specs import ContainerSpec, EndpointPortConfig, ServiceSpec, TaskSpec
from shoal.api.types import NodeState, TaskState
from shoal.manager.dispatcher.assignments import NodeAssignments
from shoal.manager.dispatcher.dispatcher import ASSIGNMENT_BATCH_WINDOW
from shoal.manager.dispatcher.fanout import SharedFlags
from shoal.manager.dispatcher.router import KINDS, Router
from shoal.store import MemoryStore, Tx

sys.path.insert(0, str(Path(__file__).parent))
from result_file import write_result

RESULTS = Path(__file__).parent / "results"


class Counts:
    def __init__(self, tasks: int) -> None:
        self.tasks = tasks
        self.all_sent = asyncio.Event()  # every task sent to its node
        self.queued = 0  # events taken off a session's queue
        self.wakeups = 0  # batches a session worked out
        self.messages = 0  # messages it would send
        self.tasks_sent = 0


async def _session(
    store: MemoryStore, mode: str, router: Router, flags: SharedFlags, node_id: str, c: Counts
) -> None:
    if mode == "router":  # as the dispatcher: the routing table the router keeps for all
        node = NodeAssignments(node_id, flags, router.routes)
        view, source = router.view_and_attach(node_id)
        node.complete(view)
        router.follow_networks(source, node.network_ids)
    else:
        node = NodeAssignments(node_id, flags)
        view, source = store.view_and_watch(kinds=KINDS)  # type: ignore[assignment]
        node.complete(view)
    try:
        while True:
            try:
                first = await source.get()
            except StopAsyncIteration:
                return
            events = [first]
            await asyncio.sleep(ASSIGNMENT_BATCH_WINDOW)
            while (ev := source.get_nowait()) is not None:
                events.append(ev)
            c.queued += len(events)
            c.wakeups += 1
            message = node.incremental(events, store.view())
            if mode == "router":
                router.follow_networks(source, node.network_ids)  # type: ignore[arg-type]
            if message is not None:
                c.messages += 1
                c.tasks_sent += len(message.update_tasks)
                if c.tasks_sent >= c.tasks:
                    c.all_sent.set()
    finally:
        source.close()


def _addr(i: int) -> str:
    return f"198.18.{i // 250}.{i % 250 + 1}"


async def run(mode: str, nodes: int, tasks: int, published: bool = False) -> dict[str, Any]:
    store = MemoryStore()
    flags = SharedFlags()
    router = Router(store, flags)
    node_ids = [f"node{i:04d}" for i in range(nodes)]
    svc = Service(ID=new_id(), Spec=ServiceSpec(Name="web"))
    if published:
        svc.Endpoint = Endpoint(Ports=[EndpointPortConfig(TargetPort=80, PublishedPort=30080)])

    def setup(tx: Tx) -> None:
        tx.create(svc)
        for i, n in enumerate(node_ids):
            tx.create(Node(ID=n, Status=NodeStatus(State=NodeState.READY, Addr=_addr(i))))

    await store.update(setup)
    c = Counts(tasks)
    sessions = [asyncio.create_task(_session(store, mode, router, flags, n, c)) for n in node_ids]
    await asyncio.sleep(0.2)
    cpu, wall = time.process_time(), time.monotonic()
    spec = TaskSpec(ContainerSpec=ContainerSpec(Image="app"))
    ids = [new_id() for _ in range(tasks)]

    def assign(i: int, tid: str):  # type: ignore[no-untyped-def]
        def fn(tx: Tx) -> None:
            t = Task(ID=tid, ServiceID=svc.ID, Slot=i + 1, NodeID=node_ids[i % nodes], Spec=spec)
            t.DesiredState = TaskState.RUNNING
            t.Status.State = TaskState.ASSIGNED
            tx.create(t)

        return fn

    def running(i: int, tid: str):  # type: ignore[no-untyped-def]
        def fn(tx: Tx) -> None:
            t = tx.get(Task, tid)
            assert t is not None
            changed = t.clone()
            changed.Status.State = TaskState.RUNNING
            if published:  # the host port the agent gave the task, as it reports it
                host_port = EndpointPortConfig(TargetPort=80, PublishedPort=20000 + i // nodes)
                changed.Status.PortStatus = PortStatus(Ports=[host_port])
            tx.update(changed)

        return fn

    await store.batch([assign(i, tid) for i, tid in enumerate(ids)])
    await c.all_sent.wait()
    await store.batch([running(i, tid) for i, tid in enumerate(ids)])
    # Until every session has worked out what it was woken for.
    idle_since = None
    last = -1
    while True:
        await asyncio.sleep(ASSIGNMENT_BATCH_WINDOW)
        if c.queued == last:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 3 * ASSIGNMENT_BATCH_WINDOW:
                break
        else:
            idle_since, last = None, c.queued
    cpu_s = time.process_time() - cpu
    wall_s = time.monotonic() - wall - 3 * ASSIGNMENT_BATCH_WINDOW
    for s in sessions:
        s.cancel()
    await asyncio.gather(*sessions, return_exceptions=True)
    router.close()
    return {
        "mode": mode,
        "published": published,
        "nodes": nodes,
        "tasks": tasks,
        "cpu_s": round(cpu_s, 3),
        "wall_s": round(wall_s, 3),
        "events_queued": c.queued,
        "wakeups": c.wakeups,
        "messages": c.messages,
        "tasks_sent": c.tasks_sent,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, nargs="+", default=[200, 500])
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument(
        "--published", action="store_true", help="the service publishes a port (routing mesh)"
    )
    ap.add_argument("--modes", nargs="+", default=["subscription", "router"])
    ap.add_argument("--out", default="dispatcher_fanout", help="results/NAME.json")
    a = ap.parse_args()
    rows = []
    print(
        f"{'mode':<13}{'nodes':>6}{'tasks':>7}{'cpu s':>8}{'wall s':>8}"
        f"{'queued':>10}{'wakeups':>9}{'messages':>9}{'tasks sent':>11}"
    )
    for nodes in a.nodes:
        for mode in a.modes:
            r = asyncio.run(run(mode, nodes, a.tasks, a.published))
            rows.append(r)
            print(
                f"{r['mode']:<13}{nodes:>6}{a.tasks:>7}{r['cpu_s']:>8.2f}{r['wall_s']:>8.2f}"
                f"{r['events_queued']:>10}{r['wakeups']:>9}{r['messages']:>9}{r['tasks_sent']:>11}",
                flush=True,
            )
    out = RESULTS / f"{a.out}.json"
    write_result(
        out,
        {
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "cpus": __import__("os").cpu_count(),
            "published": a.published,
            "results": rows,
        },
    )


if __name__ == "__main__":
    main()
