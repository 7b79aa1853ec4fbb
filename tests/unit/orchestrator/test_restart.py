import datetime as dt

from shoal.api.objects import Task, UpdateStatus
from shoal.api.specs import SECOND, RestartPolicy
from shoal.api.types import NodeAvailability, NodeState, RestartCondition, TaskState, UpdateState
from shoal.manager.orchestrator.restart import RestartSupervisor, plan_restart
from tests.unit.orchestrator.helpers import change, node, put, service, settle, task


def test_plan_restart_rules():
    svc = service(restart=RestartPolicy(Delay=3 * SECOND))
    failed = task(svc, slot=1, node_id="n1", state=TaskState.FAILED)
    running = task(svc, slot=1, node_id="n1", state=TaskState.RUNNING)
    up, down = node("n1"), node("n1", state=NodeState.DOWN)
    drained = node("n1", availability=NodeAvailability.DRAIN)
    assert plan_restart(failed, up) == (p := plan_restart(failed, up)) and p.delay == 3
    assert not plan_restart(failed, up).wait_stop  # already stopped
    assert plan_restart(running, up).wait_stop
    assert not plan_restart(running, down).wait_stop
    # Lost with its node, not failed: replaced at once.
    assert plan_restart(running, down).delay == 0
    # Failed on its own (a crash loop), then its node went down: the delay still applies.
    assert plan_restart(failed, down).delay == 3 and not plan_restart(failed, down).wait_stop
    assert plan_restart(running, drained).delay == 0 and plan_restart(running, drained).wait_stop
    assert plan_restart(running, None).delay == 3 and plan_restart(running, None).wait_stop


async def _restart(store, sup, svc, task_id):
    def fn(tx):
        return sup.restart(tx, svc, tx.get(Task, task_id))

    return await store.update(fn)


async def test_restart_replaces_in_same_slot_after_delay(store, clock, running):
    sup = RestartSupervisor(store, clock)
    svc = service()
    old = task(svc, slot=2, node_id="n1", state=TaskState.FAILED)
    await put(store, node("n1"), svc, old)
    await running.start(sup)
    new = await _restart(store, sup, svc, old.ID)
    await settle(store)
    view = store.view()
    assert view.get(Task, old.ID).DesiredState == TaskState.SHUTDOWN
    assert view.get(Task, old.ID).Status.State == TaskState.FAILED
    t = view.get(Task, new.ID)
    assert (t.Slot, t.NodeID, t.DesiredState) == (2, None, TaskState.READY)
    await clock.advance(4.9)
    await settle(store)
    assert store.view().get(Task, new.ID).DesiredState == TaskState.READY
    await clock.advance(0.1)
    await settle(store)
    assert store.view().get(Task, new.ID).DesiredState == TaskState.RUNNING
    assert sup.pending() == set()


async def test_replacement_waits_for_the_old_task_to_stop(store, clock, running):
    sup = RestartSupervisor(store, clock)
    svc = service(restart=RestartPolicy(Delay=1 * SECOND))
    old = task(svc, slot=1, node_id="n1", state=TaskState.RUNNING)
    await put(store, node("n1"), svc, old)
    await running.start(sup)
    new = await _restart(store, sup, svc, old.ID)
    await clock.advance(30)
    await settle(store)
    assert store.view().get(Task, new.ID).DesiredState == TaskState.READY

    def stop(t):
        t.Status.State = TaskState.SHUTDOWN

    await change(store, Task, old.ID, stop)
    await settle(store)
    assert store.view().get(Task, new.ID).DesiredState == TaskState.RUNNING


async def test_replacement_stops_waiting_when_old_node_goes_down(store, clock, running):
    sup = RestartSupervisor(store, clock)
    svc = service(restart=RestartPolicy(Delay=0))
    old = task(svc, slot=1, node_id="n1", state=TaskState.RUNNING)
    await put(store, node("n1"), svc, old)
    await running.start(sup)
    new = await _restart(store, sup, svc, old.ID)
    await settle(store)
    assert store.view().get(Task, new.ID).DesiredState == TaskState.READY
    await change(store, type(node("x")), "n1", lambda n: setattr(n.Status, "State", NodeState.DOWN))
    await settle(store)
    assert store.view().get(Task, new.ID).DesiredState == TaskState.RUNNING


async def test_a_task_lost_with_its_node_is_replaced_running_in_the_same_write(
    store, clock, running
):
    sup = RestartSupervisor(store, clock)
    svc = service(restart=RestartPolicy(Delay=3 * SECOND))
    old = task(svc, slot=1, node_id="n1", state=TaskState.RUNNING)
    await put(store, node("n1", state=NodeState.DOWN), svc, old)
    await running.start(sup)
    new = await _restart(store, sup, svc, old.ID)
    # In the restart's own transaction: no delayed start, no second write.
    assert new.DesiredState == TaskState.RUNNING
    assert sup.pending() == set()
    view = store.view()
    assert view.get(Task, new.ID).DesiredState == TaskState.RUNNING
    assert view.get(Task, old.ID).DesiredState == TaskState.SHUTDOWN


async def test_a_failed_task_with_no_delay_is_replaced_running(store, clock, running):
    sup = RestartSupervisor(store, clock)
    svc = service(restart=RestartPolicy(Delay=0))
    old = task(svc, slot=1, node_id="n1", state=TaskState.FAILED)
    await put(store, node("n1"), svc, old)
    await running.start(sup)
    new = await _restart(store, sup, svc, old.ID)
    assert new.DesiredState == TaskState.RUNNING and sup.pending() == set()


async def test_replacement_gives_up_waiting_after_a_minute(store, clock, running):
    sup = RestartSupervisor(store, clock)
    svc = service(restart=RestartPolicy(Delay=0))
    old = task(svc, slot=1, node_id="n1", state=TaskState.RUNNING)
    await put(store, node("n1"), svc, old)
    await running.start(sup)
    new = await _restart(store, sup, svc, old.ID)
    await clock.advance(59)
    await settle(store)
    assert store.view().get(Task, new.ID).DesiredState == TaskState.READY
    await clock.advance(1)
    await settle(store)
    assert store.view().get(Task, new.ID).DesiredState == TaskState.RUNNING


async def test_no_restart_under_condition_none_but_still_shut_down(store, clock, running):
    sup = RestartSupervisor(store, clock)
    svc = service(restart=RestartPolicy(Condition=RestartCondition.NONE))
    old = task(svc, slot=1, node_id="n1", state=TaskState.COMPLETE)
    await put(store, node("n1"), svc, old)
    await running.start(sup)
    assert await _restart(store, sup, svc, old.ID) is None
    assert store.view().get(Task, old.ID).DesiredState == TaskState.SHUTDOWN
    assert len(store.view().list(Task)) == 1


async def test_global_replacement_stays_on_its_node(store, clock, running):
    sup = RestartSupervisor(store, clock)
    svc = service(mode_global=True)
    old = task(svc, node_id="n1", state=TaskState.FAILED)
    await put(store, node("n1"), svc, old)
    await running.start(sup)
    new = await _restart(store, sup, svc, old.ID)
    assert (new.NodeID, new.Slot) == ("n1", None)


async def test_restarting_a_task_still_in_its_delay_waits_for_the_delay(store, clock, running):
    sup = RestartSupervisor(store, clock)
    svc = service()
    old = task(svc, slot=1, node_id="n1", state=TaskState.FAILED)
    await put(store, node("n1"), svc, old)
    await running.start(sup)
    first = await _restart(store, sup, svc, old.ID)

    def fail(t):
        t.NodeID = "n1"
        t.Status.State = TaskState.REJECTED

    await change(store, Task, first.ID, fail)
    assert await _restart(store, sup, svc, first.ID) is None  # deferred
    assert len(store.view().list(Task)) == 2
    await clock.advance(5)
    await settle(store)
    tasks = store.view().list(Task)
    assert len(tasks) == 3
    assert store.view().get(Task, first.ID).DesiredState == TaskState.SHUTDOWN
    third = next(t for t in tasks if t.ID not in (old.ID, first.ID))
    assert third.DesiredState == TaskState.READY and third.Slot == 1


async def test_max_attempts_counted_per_slot(store, clock, running):
    sup = RestartSupervisor(store, clock)
    svc = service(restart=RestartPolicy(MaxAttempts=2, Delay=0))
    await put(store, node("n1"), svc)
    await running.start(sup)
    current = task(svc, slot=1, node_id="n1", state=TaskState.FAILED)
    other = task(svc, slot=2, node_id="n1", state=TaskState.FAILED)
    await put(store, current, other)
    made = []
    for _ in range(3):
        new = await _restart(store, sup, svc, current.ID)
        await settle(store)
        if new is None:
            break
        made.append(new)
        await change(store, Task, new.ID, lambda t: setattr(t.Status, "State", TaskState.FAILED))
        current = new
    assert len(made) == 2
    # Another slot has its own count.
    assert await _restart(store, sup, svc, other.ID) is not None


def _slot_of(svc, *specs):
    return [task(svc, slot=1, node_id="n1", state=s, desired=d, at=at) for s, d, at in specs]


def test_updatable_tasks_in_slot(store, clock):
    sup = RestartSupervisor(store, clock)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    later = t0 + dt.timedelta(seconds=1)
    svc = service()
    slot = _slot_of(
        svc,
        (TaskState.SHUTDOWN, TaskState.SHUTDOWN, t0),
        (TaskState.RUNNING, TaskState.RUNNING, later),
    )
    assert sup.updatable_tasks_in_slot(slot, svc) == [slot[1]]
    # Everything stopped and the newest would be restarted: the slot is dead.
    stopped = _slot_of(svc, (TaskState.FAILED, TaskState.SHUTDOWN, t0))
    assert sup.updatable_tasks_in_slot(stopped, svc) == []
    # ... unless its policy says no restart: it still counts as a replica.
    svc_none = service(restart=RestartPolicy(Condition=RestartCondition.NONE))
    done = _slot_of(
        svc_none,
        (TaskState.COMPLETE, TaskState.SHUTDOWN, t0),
        (TaskState.COMPLETE, TaskState.SHUTDOWN, later),
    )
    assert sup.updatable_tasks_in_slot(done, svc_none) == [done[1]]
    # During a rollback such a slot is dead, so the rollback converges.
    svc_none.UpdateStatus = UpdateStatus(State=UpdateState.ROLLBACK_STARTED)
    assert sup.updatable_tasks_in_slot(done, svc_none) == []
    assert sup.updatable_tasks_in_slot([], svc) == []


async def test_new_leader_starts_replacements_left_in_ready(store, clock, running):
    svc = service(restart=RestartPolicy(Delay=10 * SECOND))
    waiting = task(svc, slot=1, state=TaskState.NEW, desired=TaskState.READY, at=clock.now())
    overdue = task(
        svc,
        slot=2,
        state=TaskState.NEW,
        desired=TaskState.READY,
        at=clock.now() - dt.timedelta(seconds=30),
    )
    await put(store, svc, waiting, overdue)
    await clock.advance(4)
    sup = RestartSupervisor(store, clock)
    await running.start(sup)
    assert store.view().get(Task, overdue.ID).DesiredState == TaskState.RUNNING
    assert store.view().get(Task, waiting.ID).DesiredState == TaskState.READY
    await clock.advance(6)
    await settle(store)
    assert store.view().get(Task, waiting.ID).DesiredState == TaskState.RUNNING


async def test_new_leader_rebuilds_restart_history(store, clock, running):
    svc = service(restart=RestartPolicy(MaxAttempts=2, Delay=0))
    t0 = clock.now()
    history = [
        task(svc, slot=1, node_id="n1", state=TaskState.FAILED, desired=TaskState.SHUTDOWN, at=t0)
        for _ in range(3)
    ]
    await put(store, node("n1"), svc)
    for t in history:
        await put(store, t)
        await clock.advance(1)
    last = history[-1]
    await change(store, Task, last.ID, lambda t: setattr(t, "DesiredState", TaskState.RUNNING))
    sup = RestartSupervisor(store, clock)
    await running.start(sup)
    assert await _restart(store, sup, svc, last.ID) is None  # 2 restarts already made


async def test_cancel_abandons_the_start(store, clock, running):
    sup = RestartSupervisor(store, clock)
    svc = service()
    old = task(svc, slot=1, node_id="n1", state=TaskState.FAILED)
    await put(store, node("n1"), svc, old)
    await running.start(sup)
    new = await _restart(store, sup, svc, old.ID)
    sup.cancel(new.ID)
    await clock.advance(10)
    await settle(store)
    assert store.view().get(Task, new.ID).DesiredState == TaskState.READY


async def test_a_start_does_not_wait_for_a_task_that_never_reached_a_node(store, clock, running):
    # An update replacing a slot whose task is still pending (never scheduled) has nothing
    # to wait for: no node runs it, so no node will report it stopped.
    sup = RestartSupervisor(store, clock)
    svc = service()
    old = task(svc, slot=1, node_id=None, state=TaskState.PENDING)
    new = task(svc, slot=1, node_id=None, state=TaskState.NEW, desired=TaskState.READY)
    await put(store, svc, old, new)
    await running.start(sup)
    await store.update(lambda tx: sup.delay_start(old, new.ID, 0, True))
    await settle(store)
    assert store.view().get(Task, new.ID).DesiredState == TaskState.RUNNING


async def test_starts_that_come_due_together_are_written_together(store, clock, running):
    # The replacements of a lost node's tasks all start at once: one proposal, not one each
    # (written one by one, the orchestrator's next restarts queued behind hundreds of them).
    sup = RestartSupervisor(store, clock)
    svc = service()
    news = [task(svc, slot=i, desired=TaskState.READY, state=TaskState.NEW) for i in range(50)]
    await put(store, svc, *news)
    await running.start(sup)
    await store._write_lock.acquire()  # the starts come due while another write is under way
    for t in news:
        sup.delay_start(None, t.ID, 0, False)
    await settle(store)
    before = store.version
    store._write_lock.release()
    await settle(store)
    view = store.view()
    assert all(view.get(Task, t.ID).DesiredState == TaskState.RUNNING for t in news)
    assert store.version - before == 1
    assert sup.pending() == set()


async def test_a_start_cancelled_while_it_waits_for_the_writer_is_not_written(
    store, clock, running
):
    sup = RestartSupervisor(store, clock)
    svc = service()
    news = [task(svc, slot=i, desired=TaskState.READY, state=TaskState.NEW) for i in (1, 2)]
    await put(store, svc, *news)
    await running.start(sup)
    await store._write_lock.acquire()
    done = [sup.delay_start(None, t.ID, 0, False) for t in news]
    await settle(store)  # both are due and wait for the writer, which waits for the lock
    sup.cancel(news[1].ID)
    store._write_lock.release()
    await settle(store)
    view = store.view()
    assert view.get(Task, news[0].ID).DesiredState == TaskState.RUNNING
    assert view.get(Task, news[1].ID).DesiredState == TaskState.READY
    assert all(d.done() for d in done) and sup.pending() == set()
