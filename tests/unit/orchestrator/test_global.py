from shoal.api.objects import Node, Service, Task
from shoal.api.specs import PlatformSpec, RestartPolicy
from shoal.api.types import NodeAvailability, NodeState, TaskState
from shoal.manager.orchestrator.eligibility import NodeFit, node_fit, platform_matches
from shoal.manager.orchestrator.global_orchestrator import (
    GlobalOrchestrator,
    RestartAction,
    plan_global_node,
    plan_global_service,
    restart_action,
)
from shoal.manager.orchestrator.task import is_task_dirty
from tests.unit.orchestrator.helpers import change, node, put, service, settle, task


def test_node_fit():
    svc = service(mode_global=True, constraints=["node.labels.zone==a"])
    z = {"zone": "a"}
    assert node_fit(svc, node("n", labels=z)) == NodeFit.HOST
    assert node_fit(svc, node("n", labels=z, availability=NodeAvailability.PAUSE)) == NodeFit.KEEP
    assert node_fit(svc, node("n", labels=z, state=NodeState.UNKNOWN)) == NodeFit.KEEP
    assert node_fit(svc, node("n", labels=z, state=NodeState.DISCONNECTED)) == NodeFit.KEEP
    assert node_fit(svc, node("n", labels=z, state=NodeState.DOWN)) == NodeFit.EVICT
    assert node_fit(svc, node("n", labels=z, availability=NodeAvailability.DRAIN)) == NodeFit.EVICT
    assert node_fit(svc, node("n", labels={"zone": "b"})) == NodeFit.EVICT
    assert node_fit(svc, node("n", labels=z, runtimes=())) == NodeFit.EVICT
    assert node_fit(svc, None) == NodeFit.EVICT
    container = service(mode_global=True, runtime=None)
    assert node_fit(container, node("n", runtimes=("process",))) == NodeFit.EVICT
    assert node_fit(container, node("n", runtimes=("process", "container"))) == NodeFit.HOST


def test_platforms():
    svc = service(mode_global=True)
    spec = svc.Spec.TaskTemplate
    assert platform_matches(spec, node("n"))
    spec.Placement.Platforms = [PlatformSpec(OS="linux", Architecture="amd64")]
    assert platform_matches(spec, node("n", arch="x86_64"))
    assert not platform_matches(spec, node("n", arch="aarch64"))
    spec.Placement.Platforms.append(PlatformSpec(Architecture="arm64"))
    assert platform_matches(spec, node("n", arch="aarch64", os="freebsd"))
    spec.Placement.Platforms = [PlatformSpec(OS="windows")]
    assert not platform_matches(spec, node("n"))
    assert node_fit(svc, node("n")) == NodeFit.EVICT


def test_plan_global_service():
    svc = service(mode_global=True)
    nodes = [
        node("a"),
        node("b"),
        node("c", availability=NodeAvailability.PAUSE),
        node("d", availability=NodeAvailability.DRAIN),
        node("e", state=NodeState.UNKNOWN),
    ]
    tb = task(svc, node_id="b")
    tc = task(svc, node_id="c")
    td = task(svc, node_id="d")
    tgone = task(svc, node_id="gone")
    plan = plan_global_service(svc, nodes, {"b": [tb], "c": [tc], "d": [td], "gone": [tgone]})
    assert plan.create == [(svc.ID, "a")]
    assert plan.update == [[tb]]
    assert plan.shutdown == [td, tgone]


def test_plan_global_node_replaces_dirty_tasks_at_once():
    svc = service(mode_global=True)
    other = service("other", mode_global=True, constraints=["node.role==manager"])
    n = node("a")
    stale = task(svc, node_id="a")
    stale.Spec.ContainerSpec.Image = "old"
    stale.SpecVersion = None
    fresh1, fresh2 = task(svc, node_id="a"), task(svc, node_id="a")
    plan = plan_global_node(
        n, [(svc, [stale, fresh1, fresh2]), (other, [])], lambda s, t: is_task_dirty(s, t, n)
    )
    assert plan.shutdown == [stale, fresh2] and plan.create == []
    plan = plan_global_node(n, [(svc, [stale])], lambda s, t: is_task_dirty(s, t, n))
    assert plan.shutdown == [stale] and plan.create == [(svc.ID, "a")]
    plan = plan_global_node(n, [(svc, [])], lambda s, t: False)
    assert plan.create == [(svc.ID, "a")]
    paused = node("a", availability=NodeAvailability.PAUSE)
    assert plan_global_node(paused, [(svc, [])], lambda s, t: False).create == []


def test_restart_action():
    svc = service(mode_global=True)
    assert restart_action(svc, node("a")) == RestartAction.RESTART
    assert restart_action(svc, node("a", state=NodeState.UNKNOWN)) == RestartAction.RESTART
    paused = node("a", availability=NodeAvailability.PAUSE)
    assert restart_action(svc, paused) == RestartAction.SHUTDOWN
    assert restart_action(svc, node("a", state=NodeState.DOWN)) == RestartAction.SHUTDOWN
    assert restart_action(svc, None) == RestartAction.SHUTDOWN


# --- the loop --------------------------------------------------------------------------------


def live_nodes(sim, svc):
    return sorted(t.NodeID for t in sim.live(svc.ID))


async def set_node(store, node_id, fn):
    await change(store, Node, node_id, fn)


async def test_one_task_per_eligible_node(store, clock, sim, running):
    await put(
        store,
        node("a"),
        node("b"),
        node("c", availability=NodeAvailability.PAUSE),
        node("d", availability=NodeAvailability.DRAIN),
        node("e", state=NodeState.DOWN),
        node("f", runtimes=("container",)),
        node("g", state=NodeState.UNKNOWN),
    )
    await running.start(GlobalOrchestrator(store, clock))
    svc = service("mon", mode_global=True)
    await put(store, svc)
    await settle(store)
    tasks = sim.tasks(svc.ID)
    assert [t.NodeID for t in tasks] == ["a", "b"]
    assert all(t.Slot is None and t.DesiredState == TaskState.RUNNING for t in tasks)
    # No network to attach: pending at once, for the scheduler (see new_task).
    assert all(t.Status.Message == "pending task scheduling" for t in tasks)


async def test_follows_nodes_joining_draining_down_and_leaving(store, clock, sim, running):
    await put(store, node("a"))
    await running.start(GlobalOrchestrator(store, clock))
    svc = service("mon", mode_global=True)
    await put(store, svc)
    await sim.converge()
    # A node joins: nothing until its agent is there (ready).
    await put(store, node("b", state=NodeState.UNKNOWN))
    await settle(store)
    assert live_nodes(sim, svc) == ["a"]
    await set_node(store, "b", lambda n: setattr(n.Status, "State", NodeState.READY))
    await sim.converge()
    assert sorted(t.NodeID for t in sim.running(svc.ID)) == ["a", "b"]
    # Drained: its task is shut down; active again: a new one.
    await set_node(store, "b", lambda n: setattr(n.Spec, "Availability", NodeAvailability.DRAIN))
    await sim.converge()
    assert live_nodes(sim, svc) == ["a"]
    await set_node(store, "b", lambda n: setattr(n.Spec, "Availability", NodeAvailability.ACTIVE))
    await sim.converge()
    assert sorted(t.NodeID for t in sim.running(svc.ID)) == ["a", "b"]
    # Down: shut down, keeping what was last seen of it.
    (on_b,) = [t for t in sim.running(svc.ID) if t.NodeID == "b"]
    await set_node(store, "b", lambda n: setattr(n.Status, "State", NodeState.DOWN))
    await settle(store)
    t = store.view().get(Task, on_b.ID)
    assert (t.DesiredState, t.Status.State) == (TaskState.SHUTDOWN, TaskState.RUNNING)
    assert live_nodes(sim, svc) == ["a"]
    # Removed from the swarm: its tasks go with it.
    await store.update(lambda tx: tx.delete(Node, "b"))
    await settle(store)
    assert {t.NodeID for t in sim.tasks(svc.ID)} == {"a"}


async def test_paused_node_keeps_its_task_but_gets_no_new_one(store, clock, sim, running):
    await put(store, node("a"), node("b"))
    await running.start(GlobalOrchestrator(store, clock))
    svc = service("mon", mode_global=True)
    await put(store, svc)
    await sim.converge()
    await set_node(store, "b", lambda n: setattr(n.Spec, "Availability", NodeAvailability.PAUSE))
    await sim.converge()
    assert sorted(t.NodeID for t in sim.running(svc.ID)) == ["a", "b"]
    other = service("other", mode_global=True)
    await put(store, other)
    await settle(store)
    assert live_nodes(sim, other) == ["a"]


async def test_follows_label_changes(store, clock, sim, running):
    await put(store, node("a", labels={"zone": "x"}), node("b"))
    await running.start(GlobalOrchestrator(store, clock))
    svc = service("mon", mode_global=True, constraints=["node.labels.zone==x"])
    await put(store, svc)
    await sim.converge()
    assert live_nodes(sim, svc) == ["a"]
    await set_node(store, "b", lambda n: n.Spec.Labels.update(zone="x"))
    await sim.converge()
    assert live_nodes(sim, svc) == ["a", "b"]
    await set_node(store, "a", lambda n: n.Spec.Labels.clear())
    await sim.converge()
    assert live_nodes(sim, svc) == ["b"]


async def test_failed_task_restarts_on_its_node(store, clock, sim, running):
    await put(store, node("a"))
    await running.start(GlobalOrchestrator(store, clock))
    svc = service("mon", mode_global=True, restart=RestartPolicy(Delay=0))
    await put(store, svc)
    await sim.converge()
    (t,) = sim.running(svc.ID)
    await sim.set_state(t.ID, TaskState.FAILED)
    await sim.converge()
    (new,) = sim.running(svc.ID)
    assert new.ID != t.ID and new.NodeID == "a"
    assert store.view().get(Task, t.ID).DesiredState == TaskState.SHUTDOWN


async def test_service_delete_removes_tasks(store, clock, sim, running):
    await put(store, node("a"), node("b"))
    await running.start(GlobalOrchestrator(store, clock))
    svc = service("mon", mode_global=True)
    await put(store, svc)
    await sim.converge()
    await store.update(lambda tx: tx.delete(Service, svc.ID))
    await settle(store)
    assert [t.DesiredState for t in sim.tasks(svc.ID)] == [TaskState.REMOVE] * 2


async def test_replicated_services_are_left_alone(store, clock, sim, running):
    await put(store, node("a"))
    await running.start(GlobalOrchestrator(store, clock))
    svc = service("web", replicas=2)
    await put(store, svc)
    await settle(store)
    assert sim.tasks(svc.ID) == []
