import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from shoal.api.objects import Node, Service, Task
from shoal.api.specs import SECOND, RestartPolicy
from shoal.api.types import NodeAvailability, NodeState, RestartCondition, TaskState
from shoal.manager.orchestrator.replicated import (
    ReplicatedOrchestrator,
    lowest_free_slots,
    needs_restart,
    plan_replicated,
    scale_down_order,
)
from tests.unit.orchestrator.helpers import change, node, put, service, settle, task

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def slots_of(plan_slots):
    return [s[0].Slot for s in plan_slots]


def test_lowest_free_slots():
    assert lowest_free_slots(set(), 3) == [1, 2, 3]
    assert lowest_free_slots({1, 3, 4}, 3) == [2, 5, 6]
    assert lowest_free_slots({1}, 0) == []


def test_scale_down_prefers_nodes_with_most_copies_then_high_slots():
    svc = service()
    placed = {1: "n1", 2: "n1", 3: "n1", 4: "n2", 5: "n2"}
    slots = [[task(svc, slot=n, node_id=nid)] for n, nid in placed.items()]
    assert slots_of(scale_down_order(slots)) == [1, 4, 2, 5, 3]


def test_scale_down_prefers_removing_tasks_not_running():
    svc = service()
    placed = {1: "n1", 2: "n1", 3: "n1", 4: "n2", 5: "n2"}
    slots = [
        [task(svc, slot=n, node_id=nid, state=TaskState.PREPARING if n == 1 else TaskState.RUNNING)]
        for n, nid in placed.items()
    ]
    assert slots_of(scale_down_order(slots)) == [2, 4, 3, 5, 1]


def test_scale_down_removes_unplaced_and_crowded_slots_first():
    svc = service()
    slots = [
        [task(svc, slot=1, node_id="n1")],
        [task(svc, slot=2, node_id=None, state=TaskState.PENDING)],
        [task(svc, slot=3, node_id="n2"), task(svc, slot=3, node_id="n2")],
        [task(svc, slot=4, node_id="n2")],
    ]
    # Among those, running ones are kept before the others.
    assert slots_of(scale_down_order(slots)) == [1, 4, 3, 2]


@given(
    placement=st.lists(st.sampled_from(["n1", "n2", "n3", None]), min_size=1, max_size=12),
    running=st.lists(st.booleans(), min_size=12, max_size=12),
    keep=st.integers(min_value=0, max_value=12),
)
def test_scale_down_keeps_the_spread_even(placement, running, keep):
    svc = service()
    slots = [
        [
            task(
                svc,
                slot=i + 1,
                node_id=n,
                state=TaskState.RUNNING if running[i] else TaskState.STARTING,
            )
        ]
        for i, n in enumerate(placement)
    ]
    order = scale_down_order(slots)
    assert sorted(slots_of(order)) == list(range(1, len(placement) + 1))
    kept = order[: min(keep, len(order))]
    per_node: dict[str, int] = {}
    for s in kept:
        if s[0].NodeID:
            per_node[s[0].NodeID] = per_node.get(s[0].NodeID, 0) + 1
    # A node keeps at most one more copy than any node that lost one.
    removed_nodes = {s[0].NodeID for s in order[len(kept) :] if s[0].NodeID}
    for n in removed_nodes:
        kept_here = per_node.get(n, 0)
        assert all(c <= kept_here + 1 for c in per_node.values())


def test_plan_scale_up_reuses_dead_slots_and_deletes_the_rest():
    svc = service()
    live = {1: [task(svc, slot=1)], 3: [task(svc, slot=3)]}
    dead2 = [task(svc, slot=2, desired=TaskState.SHUTDOWN, state=TaskState.FAILED)]
    dead7 = [task(svc, slot=7, desired=TaskState.REMOVE, state=TaskState.SHUTDOWN)]
    plan = plan_replicated(4, live, {2: dead2, 7: dead7})
    assert plan.create == [2, 4]
    assert slots_of(plan.update) == [1, 3]
    assert plan.delete == dead7 and plan.remove == []


def test_plan_steady_and_scale_down():
    svc = service()
    live = {n: [task(svc, slot=n, node_id="n1")] for n in (1, 2, 3)}
    plan = plan_replicated(3, live, {})
    assert plan.create == [] and plan.remove == [] and slots_of(plan.update) == [1, 2, 3]
    plan = plan_replicated(1, live, {})
    assert slots_of(plan.update) == [1]
    assert sorted(t.Slot for t in plan.remove) == [2, 3]


def test_needs_restart():
    svc = service()
    up, down = node("n1"), node("n1", state=NodeState.DOWN)
    assert needs_restart(task(svc, slot=1, node_id="n1", state=TaskState.FAILED), up)
    assert needs_restart(task(svc, slot=1, node_id="n1", state=TaskState.RUNNING), down)
    assert needs_restart(task(svc, slot=1, node_id="n1", state=TaskState.RUNNING), None)
    assert not needs_restart(task(svc, slot=1, node_id="n1", state=TaskState.RUNNING), up)
    assert not needs_restart(task(svc, slot=1, state=TaskState.PENDING), None)
    assert not needs_restart(
        task(svc, slot=1, node_id="n1", state=TaskState.FAILED, desired=TaskState.SHUTDOWN), up
    )


# --- the loop --------------------------------------------------------------------------------


def live_slots(sim, svc):
    return sorted(t.Slot for t in sim.live(svc.ID))


async def set_replicas(store, svc, n):
    await change(store, Service, svc.ID, lambda s: setattr(s.Spec.Mode.Replicated, "Replicas", n))


async def test_create_scale_up_and_down(store, clock, sim, running):
    await put(store, node("n1"), node("n2"))
    await running.start(ReplicatedOrchestrator(store, clock))
    svc = service(replicas=3)
    await put(store, svc)
    await settle(store)
    tasks = sim.tasks(svc.ID)
    assert [t.Slot for t in tasks] == [1, 2, 3]
    assert all(
        t.DesiredState == TaskState.RUNNING and t.Status.State == TaskState.PENDING for t in tasks
    )
    assert all(t.Status.Message == "pending task scheduling" for t in tasks)
    await sim.converge()
    await set_replicas(store, svc, 5)
    await settle(store)
    assert live_slots(sim, svc) == [1, 2, 3, 4, 5]
    await sim.converge()
    by_node = {t.Slot: t.NodeID for t in sim.live(svc.ID)}
    await set_replicas(store, svc, 2)
    await settle(store)
    kept = sim.live(svc.ID)
    assert len(kept) == 2
    assert {by_node[t.Slot] for t in kept} == {"n1", "n2"}  # one per node
    removed = [t for t in sim.tasks(svc.ID) if t.DesiredState == TaskState.REMOVE]
    assert len(removed) == 3


async def test_scale_down_picks_crowded_node_and_highest_slots(store, clock, sim, running):
    svc = service(replicas=5)
    placed = {1: "n1", 2: "n1", 3: "n1", 4: "n2", 5: "n2"}
    await put(store, node("n1"), node("n2"), svc)
    await put(store, *[task(svc, slot=n, node_id=nid) for n, nid in placed.items()])
    await running.start(ReplicatedOrchestrator(store, clock))
    assert live_slots(sim, svc) == [1, 2, 3, 4, 5]
    await set_replicas(store, svc, 2)
    await settle(store)
    assert live_slots(sim, svc) == [1, 4]


async def test_node_down_replaces_tasks_and_keeps_history(store, clock, sim, running):
    await put(store, node("n1"), node("n2"))
    await running.start(ReplicatedOrchestrator(store, clock))
    svc = service(replicas=4)
    await put(store, svc)
    await sim.converge()
    on_n1 = [t for t in sim.running(svc.ID) if t.NodeID == "n1"]
    assert len(on_n1) == 2
    await change(store, Node, "n1", lambda n: setattr(n.Status, "State", NodeState.DOWN))
    await settle(store)
    for old in on_n1:
        t = store.view().get(Task, old.ID)
        assert t.DesiredState == TaskState.SHUTDOWN
        assert t.Status.State == TaskState.RUNNING  # last observed state kept
    fresh = [t for t in sim.tasks(svc.ID) if t.ID not in {x.ID for x in sim.running(svc.ID)}]
    fresh = [t for t in fresh if t.DesiredState <= TaskState.RUNNING]
    assert sorted(t.Slot for t in fresh) == sorted(t.Slot for t in on_n1)
    # Lost with their node, not failed: no restart delay (the clock does not move), they
    # start at once on the node left.
    await sim.converge()
    assert len(sim.running(svc.ID)) == 4
    assert all(t.NodeID == "n2" for t in sim.running(svc.ID))
    assert len(sim.tasks(svc.ID)) == 6


async def test_drain_moves_tasks_without_delay(store, clock, sim, running):
    await put(store, node("n1"), node("n2"))
    await running.start(ReplicatedOrchestrator(store, clock))
    svc = service(replicas=2)
    await put(store, svc)
    await sim.converge()
    await change(
        store, Node, "n1", lambda n: setattr(n.Spec, "Availability", NodeAvailability.DRAIN)
    )
    await sim.converge()
    assert [t.NodeID for t in sim.running(svc.ID)] == ["n2", "n2"]


async def test_paused_node_keeps_its_tasks(store, clock, sim, running):
    await put(store, node("n1"), node("n2"))
    await running.start(ReplicatedOrchestrator(store, clock))
    svc = service(replicas=2)
    await put(store, svc)
    await sim.converge()
    before = {t.ID for t in sim.running(svc.ID)}
    await change(
        store, Node, "n1", lambda n: setattr(n.Spec, "Availability", NodeAvailability.PAUSE)
    )
    await sim.converge()
    assert {t.ID for t in sim.running(svc.ID)} == before


async def test_deleted_node_tasks_are_replaced(store, clock, sim, running):
    await put(store, node("n1"), node("n2"))
    await running.start(ReplicatedOrchestrator(store, clock))
    svc = service(replicas=2, restart=RestartPolicy(Delay=0))
    await put(store, svc)
    await sim.converge()
    await store.update(lambda tx: tx.delete(Node, "n1"))
    await sim.converge()
    assert [t.NodeID for t in sim.running(svc.ID)] == ["n2", "n2"]


async def test_failed_task_restarts_in_its_slot(store, clock, sim, running):
    """A task that fails on a node that is up waits its restart delay (a crash loop is
    spaced out), unlike one lost with its node."""
    await put(store, node("n1"))
    await running.start(ReplicatedOrchestrator(store, clock))
    svc = service(replicas=2, restart=RestartPolicy(Delay=2 * SECOND))
    await put(store, svc)
    await sim.converge()
    victim = sim.running(svc.ID)[1]
    await sim.set_state(victim.ID, TaskState.FAILED, "task: non-zero exit (1)")
    await settle(store)
    slot2 = [t for t in sim.tasks(svc.ID) if t.Slot == victim.Slot]
    assert len(slot2) == 2
    assert store.view().get(Task, victim.ID).DesiredState == TaskState.SHUTDOWN
    await sim.converge()
    assert len(sim.running(svc.ID)) == 1  # replacement still in its delay
    await clock.advance(2)
    await sim.converge()
    assert sorted(t.Slot for t in sim.running(svc.ID)) == [1, 2]


async def test_restart_condition_none_leaves_the_slot_alone(store, clock, sim, running):
    await put(store, node("n1"))
    await running.start(ReplicatedOrchestrator(store, clock))
    svc = service(replicas=1, restart=RestartPolicy(Condition=RestartCondition.NONE))
    await put(store, svc)
    await sim.converge()
    (t,) = sim.running(svc.ID)
    await sim.set_state(t.ID, TaskState.COMPLETE)
    await sim.converge()
    assert len(sim.tasks(svc.ID)) == 1
    # A later service change (not of the task spec) does not bring it back either.
    await change(store, Service, svc.ID, lambda s: s.Spec.Labels.update(x="y"))
    await settle(store)
    assert len(sim.tasks(svc.ID)) == 1


async def test_max_attempts_stop_restarts(store, clock, sim, running):
    await put(store, node("n1"))
    await running.start(ReplicatedOrchestrator(store, clock))
    svc = service(image="bad", restart=RestartPolicy(MaxAttempts=2, Delay=1 * SECOND))
    sim.fail_images.add("bad")
    await put(store, svc)
    for _ in range(5):
        await sim.converge()
        await clock.advance(1)
    await sim.converge()
    tasks = sim.tasks(svc.ID)
    assert len(tasks) == 3  # the first and two restarts
    assert all(t.Status.State == TaskState.FAILED for t in tasks)


async def test_max_attempts_within_window(store, clock, sim, running):
    await put(store, node("n1"))
    await running.start(ReplicatedOrchestrator(store, clock))
    policy = RestartPolicy(MaxAttempts=1, Delay=0, Window=10 * SECOND)
    svc = service(restart=policy)
    await put(store, svc)
    await sim.converge()
    (first,) = sim.running(svc.ID)
    await sim.set_state(first.ID, TaskState.FAILED)
    await sim.converge()
    (second,) = sim.running(svc.ID)
    await clock.advance(3)
    await sim.set_state(second.ID, TaskState.FAILED)  # 1 restart in the last 10 s: no more
    await sim.converge()
    assert sim.running(svc.ID) == [] and len(sim.tasks(svc.ID)) == 2


async def test_service_delete_removes_all_tasks(store, clock, sim, running):
    await put(store, node("n1"))
    await running.start(ReplicatedOrchestrator(store, clock))
    svc = service(replicas=3)
    await put(store, svc)
    await sim.converge()
    await store.update(lambda tx: tx.delete(Service, svc.ID))
    await settle(store)
    tasks = sim.tasks(svc.ID)
    assert len(tasks) == 3 and all(t.DesiredState == TaskState.REMOVE for t in tasks)


async def test_deleted_task_is_recreated(store, clock, sim, running):
    await put(store, node("n1"))
    await running.start(ReplicatedOrchestrator(store, clock))
    svc = service(replicas=2)
    await put(store, svc)
    await settle(store)
    victim = sim.tasks(svc.ID)[0]
    await store.update(lambda tx: tx.delete(Task, victim.ID))
    await settle(store)
    assert live_slots(sim, svc) == [1, 2]


async def test_new_leader_fixes_what_happened_meanwhile(store, clock, sim, running):
    svc = service(replicas=3, restart=RestartPolicy(Delay=0))
    await put(store, node("n1"), node("n2", state=NodeState.DOWN), svc)
    await put(
        store,
        task(svc, slot=1, node_id="n1", state=TaskState.FAILED),
        task(svc, slot=2, node_id="n2", state=TaskState.RUNNING),
    )
    await running.start(ReplicatedOrchestrator(store, clock))
    assert live_slots(sim, svc) == [1, 2, 3]
    assert len([t for t in sim.tasks(svc.ID) if t.DesiredState == TaskState.SHUTDOWN]) == 2
