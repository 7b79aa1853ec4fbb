import asyncio

from shoal.api.objects import Node, Service
from shoal.api.specs import SECOND, RestartPolicy, UpdateConfig
from shoal.api.types import (
    FailureAction,
    NodeAvailability,
    RestartCondition,
    TaskState,
    UpdateOrder,
    UpdateState,
)
from shoal.manager.orchestrator.global_orchestrator import GlobalOrchestrator
from shoal.manager.orchestrator.replicated import ReplicatedOrchestrator
from shoal.manager.orchestrator.update_status import apply_spec_update, begin_rollback
from tests.unit.orchestrator.helpers import change, node, put, service, settle

NO_RESTART = RestartPolicy(Condition=RestartCondition.NONE)


async def update(store, svc_id, *, image=None, replicas=None, force=False, config=None):
    """What the control API does on ``service update``."""

    def fn(tx):
        s = tx.get(Service, svc_id)
        spec = s.Spec.clone()
        if image is not None:
            spec.TaskTemplate.ContainerSpec.Image = image
        if replicas is not None:
            spec.Mode.Replicated.Replicas = replicas
        if force:
            spec.TaskTemplate.ForceUpdate += 1
        if config is not None:
            spec.UpdateConfig = config
        tx.update(apply_spec_update(s, spec))

    await store.update(fn)


async def rollback(store, clock, svc_id):
    await store.update(lambda tx: tx.update(begin_rollback(tx.get(Service, svc_id), clock.now())))


def status(store, svc_id):
    return store.view().get(Service, svc_id).UpdateStatus


def images(sim, svc_id):
    return sorted(t.Spec.ContainerSpec.Image for t in sim.running(svc_id))


async def start(store, clock, sim, running, svc, nodes=("n1", "n2")):
    await put(store, *[node(n) for n in nodes])
    await running.start(ReplicatedOrchestrator(store, clock))
    await put(store, svc)
    await sim.converge()
    assert len(sim.running(svc.ID)) == svc.Spec.Mode.Replicated.Replicas


async def test_parallelism_2_on_6_replicas_goes_in_3_batches(store, clock, sim, running):
    cfg = UpdateConfig(Parallelism=2, Delay=10 * SECOND)
    svc = service(replicas=6, update=cfg)
    await start(store, clock, sim, running, svc)
    t0 = clock.now()
    await update(store, svc.ID, image="img:2")
    batches = []
    for _ in range(3):
        await sim.converge()
        new = [t for t in sim.tasks(svc.ID) if t.Spec.ContainerSpec.Image == "img:2"]
        batches.append(len(new))
        await clock.advance(10)
    assert batches == [2, 4, 6]
    created = sorted(
        {t.CreatedAt for t in sim.tasks(svc.ID) if t.Spec.ContainerSpec.Image == "img:2"}
    )
    assert [(c - t0).total_seconds() for c in created] == [0, 10, 20]
    st = status(store, svc.ID)
    assert (st.State, st.Message) == (UpdateState.UPDATING, "update in progress")
    assert st.StartedAt == t0
    # After the last batch: its delay (10 s), then monitor = delay + 1 s since delay >= 5 s.
    await sim.converge()
    await clock.advance(11)
    await settle(store)
    st = status(store, svc.ID)
    assert (st.State, st.Message) == (UpdateState.COMPLETED, "update completed")
    assert (st.CompletedAt - t0).total_seconds() == 41
    assert images(sim, svc.ID) == ["img:2"] * 6
    # History: each slot keeps its old task, shut down.
    old = [t for t in sim.tasks(svc.ID) if t.Spec.ContainerSpec.Image == "img:1"]
    assert len(old) == 6 and all(t.DesiredState == TaskState.SHUTDOWN for t in old)
    assert all(t.Status.State == TaskState.SHUTDOWN for t in old)


async def test_parallelism_0_updates_all_at_once(store, clock, sim, running):
    svc = service(replicas=4, update=UpdateConfig(Parallelism=0))
    await start(store, clock, sim, running, svc)
    await update(store, svc.ID, image="img:2")
    await sim.converge()
    assert images(sim, svc.ID) == ["img:2"] * 4


async def test_replica_change_or_update_config_restarts_nothing(store, clock, sim, running):
    svc = service(replicas=2)
    await start(store, clock, sim, running, svc)
    before = {t.ID for t in sim.running(svc.ID)}
    await update(store, svc.ID, config=UpdateConfig(Parallelism=3))
    await update(store, svc.ID, replicas=3)
    await sim.converge()
    after = {t.ID for t in sim.running(svc.ID)}
    assert before < after and len(after) == 3
    assert status(store, svc.ID) is None


async def test_force_update_replaces_every_task(store, clock, sim, running):
    svc = service(replicas=2)
    await start(store, clock, sim, running, svc)
    before = {t.ID for t in sim.running(svc.ID)}
    await update(store, svc.ID, force=True)
    for _ in range(3):
        await sim.converge()
    assert before.isdisjoint({t.ID for t in sim.running(svc.ID)})
    assert len(sim.running(svc.ID)) == 2


async def test_failure_pauses_by_default(store, clock, sim, running):
    svc = service(replicas=3, restart=NO_RESTART)
    await start(store, clock, sim, running, svc)
    sim.fail_images.add("bad")
    await update(store, svc.ID, image="bad")
    for _ in range(3):
        await sim.converge()
        await clock.advance(5)
    failed = [t for t in sim.tasks(svc.ID) if t.Status.State == TaskState.FAILED]
    assert len(failed) == 1
    st = status(store, svc.ID)
    assert st.State == UpdateState.PAUSED
    assert st.Message == f"update paused due to failure or early termination of task {failed[0].ID}"
    assert images(sim, svc.ID) == ["img:1", "img:1"]


async def test_paused_update_resumes_on_next_update(store, clock, sim, running):
    svc = service(replicas=3, restart=NO_RESTART)
    await start(store, clock, sim, running, svc)
    sim.fail_images.add("bad")
    await update(store, svc.ID, image="bad")
    await sim.converge()
    assert status(store, svc.ID).State == UpdateState.PAUSED
    # Nothing more happens while paused, however long we wait.
    await clock.advance(60)
    await sim.converge()
    assert images(sim, svc.ID) == ["img:1", "img:1"]
    await update(store, svc.ID, image="img:2")
    for _ in range(4):
        await sim.converge()
        await clock.advance(5)
    assert images(sim, svc.ID) == ["img:2"] * 3
    assert status(store, svc.ID).State == UpdateState.COMPLETED


async def test_failure_action_continue(store, clock, sim, running):
    cfg = UpdateConfig(FailureAction=FailureAction.CONTINUE)
    svc = service(replicas=3, restart=NO_RESTART, update=cfg)
    await start(store, clock, sim, running, svc)
    sim.fail_images.add("bad")
    await update(store, svc.ID, image="bad")
    for _ in range(4):
        await sim.converge()
        await clock.advance(5)
    assert sum(1 for t in sim.tasks(svc.ID) if t.Status.State == TaskState.FAILED) == 3
    assert status(store, svc.ID).State == UpdateState.COMPLETED


async def test_max_failure_ratio_tolerates_some_failures(store, clock, sim, running):
    cfg = UpdateConfig(FailureAction=FailureAction.PAUSE, MaxFailureRatio=0.5)
    svc = service(replicas=4, restart=NO_RESTART, update=cfg)
    await start(store, clock, sim, running, svc)
    await update(store, svc.ID, image="img:2")
    await sim.converge()
    new = next(t for t in sim.running(svc.ID) if t.Spec.ContainerSpec.Image == "img:2")
    await sim.set_state(new.ID, TaskState.FAILED)  # 1 of 4 < 0.5
    for _ in range(5):
        await sim.converge()
        await clock.advance(5)
    assert status(store, svc.ID).State == UpdateState.COMPLETED


async def test_failure_rolls_back(store, clock, sim, running):
    cfg = UpdateConfig(FailureAction=FailureAction.ROLLBACK)
    svc = service(replicas=3, restart=NO_RESTART, update=cfg)
    await start(store, clock, sim, running, svc)
    sim.fail_images.add("bad")
    t0 = clock.now()
    seen = store.watch(kinds={"service"})
    await update(store, svc.ID, image="bad")
    await sim.converge()
    failed = next(t for t in sim.tasks(svc.ID) if t.Status.State == TaskState.FAILED)
    states = []
    while (ev := seen.get_nowait()) is not None:
        if not ev.is_commit and ev.obj.UpdateStatus is not None:
            states.append((ev.obj.UpdateStatus.State, ev.obj.UpdateStatus.Message))
    seen.close()
    assert states[:2] == [
        (UpdateState.UPDATING, "update in progress"),
        (
            UpdateState.ROLLBACK_STARTED,
            f"update rolled back due to failure or early termination of task {failed.ID}",
        ),
    ]
    s = store.view().get(Service, svc.ID)
    assert s.Spec.TaskTemplate.ContainerSpec.Image == "img:1" and s.PreviousSpec is None
    for _ in range(4):
        await sim.converge()
        await clock.advance(5)
    st = status(store, svc.ID)
    assert (st.State, st.Message) == (UpdateState.ROLLBACK_COMPLETED, "rollback completed")
    assert st.StartedAt == t0
    assert images(sim, svc.ID) == ["img:1"] * 3


async def test_failed_rollback_pauses_and_is_not_rolled_back(store, clock, sim, running):
    cfg = UpdateConfig(FailureAction=FailureAction.ROLLBACK)
    svc = service(replicas=2, restart=NO_RESTART, update=cfg, rollback=cfg)
    await start(store, clock, sim, running, svc)
    await update(store, svc.ID, image="img:2")
    for _ in range(3):
        await sim.converge()
        await clock.advance(5)
    assert status(store, svc.ID).State == UpdateState.COMPLETED
    sim.fail_images.add("img:1")
    await rollback(store, clock, svc.ID)
    for _ in range(3):
        await sim.converge()
        await clock.advance(5)
    s = store.view().get(Service, svc.ID)
    assert s.UpdateStatus.State == UpdateState.ROLLBACK_PAUSED
    assert s.UpdateStatus.Message.startswith("rollback paused due to failure or early termination")
    assert s.Spec.TaskTemplate.ContainerSpec.Image == "img:1"  # still the rollback's target


async def test_manual_rollback(store, clock, sim, running):
    svc = service(replicas=2)
    await start(store, clock, sim, running, svc)
    await update(store, svc.ID, image="img:2")
    for _ in range(3):
        await sim.converge()
        await clock.advance(5)
    assert images(sim, svc.ID) == ["img:2", "img:2"]
    await rollback(store, clock, svc.ID)
    st = status(store, svc.ID)
    assert (st.State, st.Message) == (UpdateState.ROLLBACK_STARTED, "manually requested rollback")
    for _ in range(3):
        await sim.converge()
        await clock.advance(5)
    assert images(sim, svc.ID) == ["img:1", "img:1"]
    st = status(store, svc.ID)
    assert (st.State, st.Message) == (UpdateState.ROLLBACK_COMPLETED, "rollback completed")
    assert (
        store.view().get(Service, svc.ID).PreviousSpec.TaskTemplate.ContainerSpec.Image == "img:2"
    )


async def test_failure_after_monitor_window_does_not_count(store, clock, sim, running):
    svc = service(replicas=2, restart=NO_RESTART, update=UpdateConfig(Monitor=2 * SECOND))
    await start(store, clock, sim, running, svc)
    await update(store, svc.ID, image="img:2")
    await sim.converge()
    await clock.advance(2)
    await settle(store)
    assert status(store, svc.ID).State == UpdateState.COMPLETED
    victim = sim.running(svc.ID)[0]
    await sim.set_state(victim.ID, TaskState.FAILED)
    await settle(store)
    assert status(store, svc.ID).State == UpdateState.COMPLETED


async def test_failure_within_monitor_window_pauses(store, clock, sim, running):
    svc = service(replicas=2, restart=NO_RESTART, update=UpdateConfig(Monitor=10 * SECOND))
    await start(store, clock, sim, running, svc)
    await update(store, svc.ID, image="img:2")
    await sim.converge()
    await clock.advance(9)
    victim = sim.running(svc.ID)[0]
    await sim.set_state(victim.ID, TaskState.FAILED)
    await settle(store)
    assert status(store, svc.ID).State == UpdateState.PAUSED


class RunningCount:
    """The number of running tasks of a service after every commit, from the events."""

    def __init__(self, store, service_id: str) -> None:
        self.service_id = service_id
        self.states = {t.ID: t.Status.State for t in store.view().tasks_of_service(service_id)}
        self.sub = store.watch(kinds={"task"})
        self.counts: list[int] = []

    def drain(self) -> None:
        while (ev := self.sub.get_nowait()) is not None:
            if ev.is_commit:
                self.counts.append(sum(1 for s in self.states.values() if s == TaskState.RUNNING))
            elif ev.obj.ServiceID == self.service_id:
                if ev.action == "remove":
                    self.states.pop(ev.obj.ID, None)
                else:
                    self.states[ev.obj.ID] = ev.obj.Status.State


async def test_start_first_never_drops_running_below_replicas(store, clock, sim, running):
    cfg = UpdateConfig(Parallelism=1, Order=UpdateOrder.START_FIRST)
    svc = service(replicas=3, update=cfg)
    await start(store, clock, sim, running, svc)
    watch = RunningCount(store, svc.ID)
    await update(store, svc.ID, image="img:2")
    for _ in range(6):
        await sim.converge()
        await clock.advance(5)
        watch.drain()
    assert images(sim, svc.ID) == ["img:2"] * 3
    assert min(watch.counts) == 3
    assert max(watch.counts) == 4  # one extra while each slot switches over
    assert status(store, svc.ID).State == UpdateState.COMPLETED


async def test_stop_first_does_drop_below_replicas(store, clock, sim, running):
    svc = service(replicas=3)
    await start(store, clock, sim, running, svc)
    watch = RunningCount(store, svc.ID)
    await update(store, svc.ID, image="img:2")
    for _ in range(6):
        await sim.converge()
        await clock.advance(5)
        watch.drain()
    assert images(sim, svc.ID) == ["img:2"] * 3
    assert (min(watch.counts), max(watch.counts)) == (2, 3)


async def test_node_drained_during_update_does_not_stall_it(store, clock, sim, running):
    svc = service(replicas=4, restart=RestartPolicy(Delay=0))
    await start(store, clock, sim, running, svc, nodes=("n1", "n2", "n3"))
    await update(store, svc.ID, image="img:2")
    await settle(store)
    # The first new task is placed, then its node drains before it runs.
    await sim.step()
    await settle(store)
    (new,) = [t for t in sim.tasks(svc.ID) if t.Spec.ContainerSpec.Image == "img:2"]
    assert new.NodeID is not None and new.Status.State < TaskState.RUNNING

    def drain(n):
        n.Spec.Availability = NodeAvailability.DRAIN

    await change(store, Node, new.NodeID, drain)
    for _ in range(6):
        await sim.converge()
        await clock.advance(5)
    assert images(sim, svc.ID) == ["img:2"] * 4
    assert new.NodeID not in {t.NodeID for t in sim.running(svc.ID)}
    assert sorted(t.Slot for t in sim.running(svc.ID)) == [1, 2, 3, 4]
    assert status(store, svc.ID).State == UpdateState.COMPLETED


async def test_global_service_updates_node_by_node(store, clock, sim, running):
    await put(store, node("n1"), node("n2"), node("n3"))
    await running.start(GlobalOrchestrator(store, clock))
    svc = service("mon", mode_global=True, update=UpdateConfig(Delay=10 * SECOND))
    await put(store, svc)
    await sim.converge()
    assert len(sim.running(svc.ID)) == 3
    await update(store, svc.ID, image="img:2")
    seen = []
    for _ in range(3):
        await sim.converge()
        new = [t for t in sim.running(svc.ID) if t.Spec.ContainerSpec.Image == "img:2"]
        seen.append(len(new))
        await clock.advance(10)
    assert seen == [1, 2, 3]
    assert {t.NodeID for t in sim.running(svc.ID)} == {"n1", "n2", "n3"}
    await clock.advance(11)
    await settle(store)
    assert status(store, svc.ID).State == UpdateState.COMPLETED


async def test_service_removed_during_update(store, clock, sim, running):
    svc = service(replicas=3, update=UpdateConfig(Delay=10 * SECOND))
    await start(store, clock, sim, running, svc)
    await update(store, svc.ID, image="img:2")
    await sim.converge()
    await store.update(lambda tx: tx.delete(Service, svc.ID))
    await clock.advance(30)
    await sim.converge()
    assert all(t.DesiredState == TaskState.REMOVE for t in sim.tasks(svc.ID))


async def test_global_update_skips_a_node_drained_meanwhile(store, clock, sim, running):
    await put(store, node("n1"), node("n2"), node("n3"))
    await running.start(GlobalOrchestrator(store, clock))
    svc = service("mon", mode_global=True, update=UpdateConfig(Delay=10 * SECOND))
    await put(store, svc)
    await sim.converge()
    await update(store, svc.ID, image="img:2")
    await sim.converge()
    pending = {t.NodeID for t in sim.running(svc.ID) if t.Spec.ContainerSpec.Image == "img:1"}
    drained = sorted(pending)[-1]
    await change(
        store, Node, drained, lambda n: setattr(n.Spec, "Availability", NodeAvailability.DRAIN)
    )
    for _ in range(4):
        await sim.converge()
        await clock.advance(10)
    await clock.advance(11)
    await settle(store)
    assert drained not in {t.NodeID for t in sim.live(svc.ID)}
    assert images(sim, svc.ID) == ["img:2", "img:2"]
    assert status(store, svc.ID).State == UpdateState.COMPLETED


async def test_update_replaces_a_task_not_restarted_by_policy(store, clock, sim, running):
    svc = service(replicas=1, restart=NO_RESTART)
    await start(store, clock, sim, running, svc, nodes=("n1",))
    (t,) = sim.running(svc.ID)
    await sim.set_state(t.ID, TaskState.COMPLETE)
    await sim.converge()
    assert sim.running(svc.ID) == []
    await update(store, svc.ID, image="img:2")
    await sim.converge()
    assert images(sim, svc.ID) == ["img:2"]


async def test_paused_update_resumes_on_an_update_with_the_same_spec(store, clock, sim, running):
    cfg = UpdateConfig(Parallelism=2)
    svc = service(replicas=4, restart=NO_RESTART, update=cfg)
    await start(store, clock, sim, running, svc)
    await update(store, svc.ID, image="img:2")
    await settle(store)
    # One new task fails at once; the other never gets going (no node has room, say).
    new = [t for t in sim.tasks(svc.ID) if t.Spec.ContainerSpec.Image == "img:2"]
    assert len(new) == 2
    await sim.set_state(new[0].ID, TaskState.FAILED)
    await settle(store)
    assert status(store, svc.ID).State == UpdateState.PAUSED
    await update(store, svc.ID)  # `service update` with nothing changed
    for _ in range(4):
        await sim.converge()
        await clock.advance(5)
    assert status(store, svc.ID).State == UpdateState.COMPLETED
    assert images(sim, svc.ID) == ["img:2"] * 3  # the failed slot is not restarted


async def test_a_restart_between_reading_a_slot_and_replacing_it_leaves_one_task(
    store, clock, running
):
    """The updater reads a slot, then writes its replacement. When the restart supervisor
    replaced the slot's failed task in between (on the spec the update brings, as during a
    rollback), the updater keeps that replacement instead of starting a second task in the
    slot (seen in CI: two tasks of a rolled-back service running in one slot)."""
    from shoal.api.base import Version
    from shoal.api.objects import Task
    from shoal.manager.orchestrator.restart import RestartSupervisor
    from shoal.manager.orchestrator.update_config import update_settings
    from shoal.manager.orchestrator.updater import Updater
    from tests.unit.orchestrator.helpers import task

    old_spec = service(replicas=1, image="img:1")
    svc = service(replicas=1, image="img:2", service_id=old_spec.ID)
    svc.SpecVersion = Version(Index=old_spec.SpecVersion.Index + 1)
    failed = task(old_spec, slot=1, node_id="n1", state=TaskState.FAILED)
    await put(store, node("n1"), svc, failed)
    restarts = RestartSupervisor(store, clock)
    await running.start(restarts)
    updater = Updater(store, clock, restarts, store.view().get(Service, svc.ID))
    stale = [store.view().get(Task, failed.ID)]
    # The restart lands after the updater read the slot.
    await store.update(lambda tx: restarts.restart(tx, svc, failed))
    read = updater._current
    updater._current = lambda slot, reader=None: stale if reader is None else read(slot, reader)
    work = asyncio.create_task(
        updater._update_slot(stale, update_settings(svc.Spec, rollback=False))
    )
    for _ in range(3):
        await settle(store)
        await clock.advance(5)
    slot = store.view().find(Task, "slot", (svc.ID, 1))
    live = [t for t in slot if t.DesiredState <= TaskState.RUNNING]
    if not work.done():
        work.cancel()  # only when it failed: waiting for a second task no agent runs here
    assert len(slot) == 2 and len(live) == 1
    assert work.done() and work.exception() is None
    assert live[0].DesiredState == TaskState.RUNNING
    assert live[0].Spec.ContainerSpec.Image == "img:2"
