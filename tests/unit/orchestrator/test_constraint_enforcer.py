import datetime as dt

from shoal.api.objects import Node, Service, Task
from shoal.api.specs import RestartPolicy
from shoal.api.types import NodeAvailability, TaskState
from shoal.manager.orchestrator.constraint_enforcer import ConstraintEnforcer, noncompliant_tasks
from shoal.manager.orchestrator.replicated import ReplicatedOrchestrator
from tests.unit.orchestrator.helpers import change, node, put, service, settle, task

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
GB = 1 << 30


def reserving(svc, cpus=0, memory=0, **kw):
    t = task(svc, **kw)
    t.Spec.Resources.Reservations.NanoCPUs = cpus
    t.Spec.Resources.Reservations.MemoryBytes = memory
    return t


def test_constraints_from_the_current_service_spec():
    svc = service(constraints=["node.labels.zone==a"])
    n = node("n1", labels={"zone": "b"})
    t = task(svc, slot=1, node_id="n1")
    t.Spec.Placement.Constraints = None  # the task's copy is stale
    assert noncompliant_tasks(n, [t], {svc.ID: svc}) == [t]
    assert noncompliant_tasks(node("n1", labels={"zone": "a"}), [t], {svc.ID: svc}) == []
    # Without its service, the task's own constraints are used.
    assert noncompliant_tasks(n, [t], {}) == []


def test_only_active_nodes_and_live_tasks_are_checked():
    svc = service(constraints=["node.labels.zone==a"])
    t = task(svc, slot=1, node_id="n1")
    for availability in (NodeAvailability.PAUSE, NodeAvailability.DRAIN):
        assert noncompliant_tasks(node("n1", availability=availability), [t], {svc.ID: svc}) == []
    n = node("n1")
    done = task(svc, slot=2, node_id="n1", state=TaskState.COMPLETE)
    going = task(svc, slot=3, node_id="n1", desired=TaskState.SHUTDOWN)
    assert noncompliant_tasks(n, [done, going], {svc.ID: svc}) == []


def test_resources_oldest_tasks_keep_theirs():
    svc = service()
    n = node("n1", cpus=2_000_000_000, memory=4 * GB)
    first = reserving(svc, memory=3 * GB, slot=1, node_id="n1")
    second = reserving(svc, memory=2 * GB, slot=2, node_id="n1")
    third = reserving(svc, cpus=2_000_000_000, slot=3, node_id="n1")
    first.CreatedAt, second.CreatedAt, third.CreatedAt = (
        T0,
        T0 + dt.timedelta(1),
        T0 + dt.timedelta(2),
    )
    assert noncompliant_tasks(n, [third, second, first], {svc.ID: svc}) == [second]
    # A node reporting no resources at all is not judged on them.
    assert noncompliant_tasks(node("n1"), [first, second, third], {svc.ID: svc}) == []


async def test_label_removed_rejects_and_replicated_moves_the_task(store, clock, sim, running):
    svc = service(replicas=1, constraints=["node.labels.zone==a"], restart=RestartPolicy(Delay=0))
    await put(store, node("n1", labels={"zone": "a"}), node("n2"), svc)
    await running.start(ConstraintEnforcer(store, clock), ReplicatedOrchestrator(store, clock))
    await sim.converge()
    (t,) = sim.running(svc.ID)
    assert t.NodeID == "n1"
    await change(store, Node, "n1", lambda n: n.Spec.Labels.clear())
    await settle(store)
    old = store.view().get(Task, t.ID)
    assert old.Status.State == TaskState.REJECTED
    assert old.Status.Message == "task rejected by constraint enforcer"
    assert old.Status.Err == "assigned node no longer meets constraints"
    assert old.DesiredState == TaskState.SHUTDOWN
    (new,) = sim.live(svc.ID)
    assert new.Slot == t.Slot and new.ID != t.ID


async def test_checks_every_node_at_start(store, clock, running):
    svc = service(constraints=["node.labels.zone==a"])
    t = task(svc, slot=1, node_id="n1")
    await put(store, node("n1"), svc, t)
    await running.start(ConstraintEnforcer(store, clock))
    assert store.view().get(Task, t.ID).Status.State == TaskState.REJECTED
    assert store.view().get(Service, svc.ID) is not None
