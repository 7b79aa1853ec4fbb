"""A plan changes nothing, and the real change then does exactly what it said: each case is
run twice from the same starting state, first as a dry run (the store's version and contents
must stay as they were), then for real, with the leader's components and slower agents; the
tasks created per node, replaced (and in which update batch), stopped, and left unplaced (with
the scheduler's reason) must be those of the plan."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from shoal.api.objects import Node, Service, Task
from shoal.api.types import NodeAvailability, NodeState, TaskState
from shoal.manager.plan import Plan, plan_service_create, plan_service_update
from tests.unit.orchestrator.helpers import node
from tests.unit.plan.cluster import MiniCluster

GiB = 1 << 30
CPU = 10**9


def spec(name: str = "web", replicas: int | None = 3, **task: Any) -> dict[str, Any]:
    template: dict[str, Any] = {"ContainerSpec": {"Image": "img:1"}, "Runtime": "process"}
    template.update(task)
    mode: dict[str, Any] = (
        {"Global": {}} if replicas is None else {"Replicated": {"Replicas": replicas}}
    )
    return {"Name": name, "TaskTemplate": template, "Mode": mode}


def updated(svc: Service, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = svc.to_api()["Spec"]
    change(data)
    return data


@dataclass
class Case:
    id: str
    nodes: list[Node]
    # Services made (and converged) before the change.
    existing: list[dict[str, Any]] = field(default_factory=list)
    create: dict[str, Any] | None = None
    # The service to update and how its spec changes.
    update: tuple[str, Callable[[dict[str, Any]], None]] | None = None
    # Something to check about the plan itself, beyond its agreeing with reality.
    expect: Callable[[dict[str, Any]], None] = lambda plan: None


def _image(image: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["TaskTemplate"]["ContainerSpec"]["Image"] = image

    return change


def _replicas(n: int) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["Mode"]["Replicated"]["Replicas"] = n

    return change


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for c in changes:
            c(data)

    return change


def _constraints(*exprs: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["TaskTemplate"].setdefault("Placement", {})["Constraints"] = list(exprs)

    return change


def _reserve(cpus: float) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["TaskTemplate"]["Resources"] = {"Reservations": {"NanoCPUs": int(cpus * CPU)}}

    return change


def _summary(**expected: int) -> Callable[[dict[str, Any]], None]:
    def check(plan: dict[str, Any]) -> None:
        summary = plan["Services"][0]["Summary"]
        assert {k: summary[k] for k in expected} == expected, plan

    return check


def three(**kw: Any) -> list[Node]:
    return [node(f"n{i}", **kw) for i in (1, 2, 3)]


def _errors(*expected: str) -> Callable[[dict[str, Any]], None]:
    def check(plan: dict[str, Any]) -> None:
        errors = sorted(t["Error"] for t in plan["Services"][0]["Tasks"] if t["Error"])
        assert errors == sorted(expected), plan

    return check


def _batches(n: int) -> Callable[[dict[str, Any]], None]:
    def check(plan: dict[str, Any]) -> None:
        assert plan["Services"][0]["Update"]["Batches"] == n, plan

    return check


def _all(*checks: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def check(plan: dict[str, Any]) -> None:
        for c in checks:
            c(plan)

    return check


ZONES = [
    node("n1", labels={"zone": "a"}),
    node("n2", labels={"zone": "a"}),
    node("n3", labels={"zone": "b"}),
]
UPDATE_2_BY_2 = {"Parallelism": 2, "Delay": 10 * 10**9}

CASES = [
    Case("spread", three(), create=spec(replicas=5), expect=_summary(Create=5, Unplaced=0)),
    Case(
        "spread-preference",
        [*ZONES, node("n4", labels={"zone": "b"})],
        create=spec(
            replicas=4,
            Placement={"Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]},
        ),
    ),
    Case(
        "constraints",
        ZONES,
        create=spec(replicas=4, Placement={"Constraints": ["node.labels.zone==a"]}),
        expect=_summary(Create=4, Unplaced=0),
    ),
    Case(
        "constraints-unsatisfiable",
        three(),
        create=spec(replicas=2, Placement={"Constraints": ["node.labels.zone==z"]}),
        expect=_errors(*["no suitable node (scheduling constraints not satisfied on 3 nodes)"] * 2),
    ),
    Case(
        "drained-node",
        [node("n1"), node("n2"), node("n3", availability=NodeAvailability.DRAIN)],
        create=spec(replicas=4),
        expect=_summary(Create=4, Unplaced=0),
    ),
    Case(
        "too-few-resources",
        three(cpus=2 * CPU, memory=4 * GiB),
        create=spec(replicas=4, Resources={"Reservations": {"NanoCPUs": int(1.5 * CPU)}}),
        expect=_errors("no suitable node (insufficient resources on 3 nodes)"),
    ),
    Case(
        "host-ports",
        three(),
        create={
            **spec(replicas=4),
            "EndpointSpec": {
                "Ports": [{"TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}]
            },
        },
        expect=_errors("no suitable node (host-mode port already in use on 3 nodes)"),
    ),
    Case(
        "update-batches",
        three(),
        existing=[{**spec(replicas=5), "UpdateConfig": UPDATE_2_BY_2}],
        update=("web", _image("img:2")),
        expect=_all(_summary(Replace=5, Outdated=0), _batches(3)),
    ),
    Case(
        "update-batches-4-on-3",
        three(),
        existing=[{**spec(replicas=4), "UpdateConfig": UPDATE_2_BY_2}],
        update=("web", _image("img:2")),
        expect=_all(_summary(Replace=4, Outdated=0), _batches(2)),
    ),
    Case(
        "update-start-first",
        three(),
        existing=[{**spec(replicas=3), "UpdateConfig": {**UPDATE_2_BY_2, "Order": "start-first"}}],
        update=("web", _image("img:2")),
        expect=_all(_summary(Replace=3), _batches(2)),
    ),
    Case(
        "update-moves-off-constrained-node",
        ZONES,
        existing=[{**spec(replicas=3), "UpdateConfig": {"Parallelism": 1}}],
        update=("web", _constraints("node.labels.zone==a")),
    ),
    Case(
        "update-that-cannot-fit-stalls",
        three(cpus=2 * CPU, memory=4 * GiB),
        existing=[{**spec(replicas=3), "UpdateConfig": {"Parallelism": 1}}],
        update=("web", _reserve(3)),
        expect=_errors("no suitable node (insufficient resources on 3 nodes)"),
    ),
    Case(
        "update-with-scale",
        three(),
        existing=[{**spec(replicas=2), "UpdateConfig": {"Parallelism": 1, "Delay": 10**9}}],
        update=("web", _both(_image("img:2"), _replicas(4))),
    ),
    Case("scale-up", three(), existing=[spec(replicas=2)], update=("web", _replicas(5))),
    Case(
        "scale-up-with-a-node-down",
        [node("n1"), node("n2"), node("n3", state=NodeState.DOWN)],
        existing=[spec(replicas=1)],
        update=("web", _replicas(4)),
        expect=_summary(Create=3, Unplaced=0),
    ),
    Case(
        "max-replicas-per-node",
        three(),
        create=spec(replicas=5, Placement={"MaxReplicas": 1}),
        expect=_errors(*["no suitable node (max replicas per node limit exceed)"] * 2),
    ),
    Case(
        "replicated-job",
        three(),
        create={
            **spec(replicas=None),
            "Mode": {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 4}},
        },
    ),
    Case(
        "scale-down",
        three(),
        existing=[spec(replicas=5)],
        update=("web", _replicas(2)),
        expect=_summary(Stop=3, Unchanged=2),
    ),
    Case(
        "scale-up-beside-another-service",
        three(cpus=2 * CPU, memory=4 * GiB),
        existing=[
            spec("db", replicas=2, Resources={"Reservations": {"NanoCPUs": int(1.5 * CPU)}}),
            spec(replicas=1, Resources={"Reservations": {"NanoCPUs": CPU}}),
        ],
        update=("web", _replicas(4)),
    ),
    Case(
        "global",
        [node("n1"), node("n2"), node("n3", availability=NodeAvailability.DRAIN)],
        create=spec("mon", replicas=None),
        expect=_summary(Create=2),
    ),
    Case(
        "global-constrained-and-short-of-resources",
        [
            node("n1", labels={"zone": "a"}, cpus=CPU),
            node("n2", labels={"zone": "a"}, cpus=4 * CPU),
            node("n3", labels={"zone": "b"}, cpus=4 * CPU),
        ],
        create=spec(
            "mon",
            replicas=None,
            Placement={"Constraints": ["node.labels.zone==a"]},
            Resources={"Reservations": {"NanoCPUs": 2 * CPU}},
        ),
        expect=_errors("insufficient resources on 1 node"),
    ),
    Case(
        "global-update",
        three(),
        existing=[{**spec("mon", replicas=None), "UpdateConfig": {"Parallelism": 1}}],
        update=("mon", _image("img:2")),
        expect=_all(_summary(Replace=3), _batches(3)),
    ),
]


# --- what really happened, told the way a plan tells it --------------------------------------


def _live(t: Task) -> bool:
    return t.DesiredState <= TaskState.COMPLETE and t.Status.State <= TaskState.RUNNING


def observed(before: list[Task], after: list[Task], is_global: bool) -> dict[str, Any]:
    """Created, replaced (with batches, from the new tasks' creation times), stopped and
    unplaced tasks, keyed by slot (node for a global service)."""
    ids_before = {t.ID for t in before}
    now = {t.ID: t for t in after}
    stopped = {}
    for t in before:
        if _live(t):
            current = now.get(t.ID)
            if current is None or current.DesiredState > TaskState.COMPLETE:
                stopped[t.NodeID if is_global else t.Slot] = t
    new = sorted((t for t in after if t.ID not in ids_before), key=lambda t: t.CreatedAt)
    replaced_times = sorted(
        {t.CreatedAt for t in new if (t.NodeID if is_global else t.Slot) in stopped}
    )
    rows = set()
    for t in new:
        key = t.NodeID if is_global else t.Slot
        old = stopped.pop(key, None)
        placed = t.Status.State >= TaskState.ASSIGNED
        err = "" if placed else (t.Status.Err or "")
        if old is not None:
            batch = replaced_times.index(t.CreatedAt) + 1
            rows.add(("replace", t.Slot, t.NodeID or "", old.NodeID, batch, err))
        else:
            rows.add(("create", t.Slot, t.NodeID or "", "", 0, err))
    for t in stopped.values():
        rows.add(("stop", t.Slot, "", t.NodeID, 0, ""))
    return {"rows": rows, "batches": len(replaced_times)}


def planned(plan: dict[str, Any]) -> dict[str, Any]:
    service = plan["Services"][0]
    rows = {
        (
            t["Action"],
            t["Slot"],
            t["NodeID"] if t["Action"] != "stop" else "",
            t["PreviousNodeID"],
            t["Batch"],
            t["Error"],
        )
        for t in service["Tasks"]
    }
    update = service["Update"] or {}
    return {"rows": rows, "batches": update.get("Batches", 0)}


@pytest.fixture
async def cluster(store, clock):
    c = MiniCluster(store, clock)
    yield c
    await c.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_a_dry_run_changes_nothing_and_predicts_the_real_change(case: Case, cluster, store):
    await cluster.start(*case.nodes)
    for s in case.existing:
        await cluster.create(s)

    # The dry run.
    version, contents = store.version, store.snapshot()
    do_plan: Callable[[], Awaitable[Plan]]
    if case.create is not None:
        create = case.create

        def do_plan() -> Awaitable[Plan]:
            return plan_service_create(store, cluster.clock, create)
    else:
        assert case.update is not None
        ref, change = case.update
        svc = cluster.service(ref)
        new_spec = updated(svc, change)

        def do_plan() -> Awaitable[Plan]:
            return plan_service_update(store, cluster.clock, svc.ID, svc.Version.Index, new_spec)

    plan = (await do_plan()).to_json()
    await cluster._quiet()
    assert store.version == version
    assert store.snapshot() == contents
    assert plan["Complete"]
    case.expect(plan)

    # The real change.
    if case.create is not None:
        svc = await cluster.control.create_service(case.create)
        before: list[Task] = []
    else:
        before = cluster.tasks(svc.ID)
        await cluster.control.update_service(svc.ID, svc.Version.Index, new_spec)
    await cluster.converge()
    is_global = svc.Spec.Mode.Global is not None
    assert planned(plan) == observed(before, cluster.tasks(svc.ID), is_global)


async def test_a_rollback_plan_is_what_the_rollback_then_does(cluster, store):
    await cluster.start(*three())
    svc = await cluster.create(
        {**spec(replicas=3), "RollbackConfig": {"Parallelism": 2, "Delay": 10**9}}
    )
    await cluster.control.update_service(svc.ID, svc.Version.Index, updated(svc, _image("img:2")))
    await cluster.converge()
    svc = cluster.service("web")

    version, contents = store.version, store.snapshot()
    plan = (
        await plan_service_update(
            store, cluster.clock, "web", svc.Version.Index, None, rollback=True
        )
    ).to_json()
    assert (store.version, store.snapshot()) == (version, contents)
    assert plan["Services"][0]["Operation"] == "rollback"
    assert plan["Services"][0]["Update"]["Batches"] == 2  # the rollback config's parallelism

    before = cluster.tasks(svc.ID)
    await cluster.control.update_service("web", svc.Version.Index, None, rollback=True)
    await cluster.converge()
    assert planned(plan) == observed(before, cluster.tasks(svc.ID), is_global=False)
