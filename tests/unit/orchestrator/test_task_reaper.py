import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from shoal.api.objects import Cluster, Node, Task
from shoal.api.specs import RestartPolicy
from shoal.api.types import NodeState, TaskState
from shoal.manager.orchestrator.task_reaper import (
    TaskReaper,
    history_to_delete,
    removable,
    retention_limit,
    slot_retention,
)
from tests.unit.orchestrator.helpers import change, cluster, node, put, service, settle, task

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(n: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=n)


def history(svc, states):
    """Tasks of one slot, oldest first."""
    return [
        task(
            svc,
            slot=1,
            node_id="n1",
            state=s,
            desired=TaskState.SHUTDOWN if s > TaskState.RUNNING else TaskState.RUNNING,
            at=at(i),
        )
        for i, s in enumerate(states)
    ]


def test_limit_counts_the_running_task_too():
    svc = service()
    ts = history(svc, [TaskState.FAILED] * 6 + [TaskState.RUNNING])
    doomed, _ = history_to_delete(ts, 5)
    assert doomed == ts[:2]  # 5 left: the running task and the 4 newest stopped ones


def test_nothing_deleted_within_the_limit_or_when_negative():
    svc = service()
    ts = history(svc, [TaskState.FAILED] * 4 + [TaskState.RUNNING])
    assert history_to_delete(ts, 5) == ([], 0)
    assert history_to_delete(ts * 3, -1) == ([], 0)


def test_zero_keeps_only_what_runs():
    svc = service()
    ts = history(svc, [TaskState.COMPLETE, TaskState.SHUTDOWN, TaskState.RUNNING])
    doomed, running = history_to_delete(ts, 0)
    assert doomed == ts[:2] and running == 1


def test_running_tasks_are_never_deleted():
    svc = service()
    ts = history(svc, [TaskState.RUNNING, TaskState.STARTING, TaskState.ASSIGNED])
    assert history_to_delete(ts, 1) == ([], 3)


def test_tasks_that_will_never_run_go():
    svc = service()
    never = task(svc, slot=1, state=TaskState.PENDING, desired=TaskState.SHUTDOWN, at=at(0))
    live = task(svc, slot=1, node_id="n1", state=TaskState.RUNNING, at=at(1))
    assert history_to_delete([never, live], 1)[0] == [never]


@given(
    states=st.lists(
        st.sampled_from(
            [TaskState.RUNNING, TaskState.FAILED, TaskState.SHUTDOWN, TaskState.ASSIGNED]
        ),
        max_size=12,
    ),
    keep=st.integers(min_value=-1, max_value=8),
)
def test_deletes_the_oldest_stopped_tasks_down_to_the_limit(states, keep):
    svc = service()
    ts = history(svc, states)
    doomed, _ = history_to_delete(ts, keep)
    stopped = [t for t in ts if t.Status.State > TaskState.RUNNING]
    if keep < 0 or len(ts) <= keep:
        assert doomed == []
    else:
        assert doomed == stopped[: min(len(ts) - keep, len(stopped))]


def test_retention_settings():
    assert retention_limit(None) == 5
    assert retention_limit(cluster(3)) == 3
    assert retention_limit(cluster(None)) == 0
    assert retention_limit(cluster(-1)) == -1
    assert slot_retention(5, service()) == 5
    assert slot_retention(5, service(restart=RestartPolicy(MaxAttempts=7))) == 8
    assert slot_retention(-1, service(restart=RestartPolicy(MaxAttempts=1))) == 2


def test_removable():
    svc = service()
    for state, ok in (
        (TaskState.NEW, True),
        (TaskState.PENDING, True),
        (TaskState.ASSIGNED, False),
        (TaskState.RUNNING, False),
        (TaskState.COMPLETE, True),
        (TaskState.SHUTDOWN, True),
        (TaskState.FAILED, True),
    ):
        assert removable(task(svc, slot=1, state=state, desired=TaskState.REMOVE)) is ok
    assert not removable(task(svc, slot=1, state=TaskState.SHUTDOWN, desired=TaskState.SHUTDOWN))


# --- the loop --------------------------------------------------------------------------------


def ids(store, svc):
    return {t.ID for t in store.view().tasks_of_service(svc.ID)}


async def test_keeps_the_retention_limit_per_slot(store, clock, running):
    svc = service()
    await put(store, cluster(3), svc)
    await running.start(TaskReaper(store, clock))
    made = []
    for i in range(6):
        if made:
            await change(
                store, Task, made[-1].ID, lambda t: setattr(t.Status, "State", TaskState.FAILED)
            )
        t = task(svc, slot=1, node_id="n1", at=at(i))
        made.append(t)
        other = task(svc, slot=2, node_id="n1", state=TaskState.FAILED, at=at(i))
        await put(store, t, other)
        await settle(store)
    slot1 = [t.ID for t in store.view().find(Task, "slot", (svc.ID, 1))]
    assert sorted(slot1) == sorted(t.ID for t in made[-3:])
    assert len(store.view().find(Task, "slot", (svc.ID, 2))) == 3


async def test_global_history_is_per_node(store, clock, running):
    svc = service(mode_global=True)
    await put(store, cluster(2), svc)
    await running.start(TaskReaper(store, clock))
    for i in range(4):
        await put(
            store,
            task(svc, node_id="a", state=TaskState.FAILED, desired=TaskState.SHUTDOWN, at=at(i)),
        )
        await put(
            store,
            task(svc, node_id="b", state=TaskState.FAILED, desired=TaskState.SHUTDOWN, at=at(i)),
        )
    await settle(store)
    assert len(store.view().tasks_on_node("a")) == 2
    assert len(store.view().tasks_on_node("b")) == 2


async def test_removed_tasks_go_once_stopped(store, clock, running):
    svc = service()
    up = task(svc, slot=1, node_id="n1", state=TaskState.RUNNING)
    unplaced = task(svc, slot=2, state=TaskState.PENDING)
    await put(store, cluster(), node("n1"), svc, up, unplaced)
    await running.start(TaskReaper(store, clock))
    for t in (up, unplaced):
        await change(store, Task, t.ID, lambda x: setattr(x, "DesiredState", TaskState.REMOVE))
    await settle(store)
    assert ids(store, svc) == {up.ID}
    await change(store, Task, up.ID, lambda x: setattr(x.Status, "State", TaskState.SHUTDOWN))
    await settle(store)
    assert ids(store, svc) == set()


async def test_new_leader_cleans_up(store, clock, running):
    svc = service()
    gone = service("gone")
    orphan = task(gone, slot=1, node_id="n1", state=TaskState.RUNNING)
    stopped_remove = task(
        svc, slot=1, node_id="n1", state=TaskState.SHUTDOWN, desired=TaskState.REMOVE
    )
    running_remove = task(
        svc, slot=2, node_id="n1", state=TaskState.RUNNING, desired=TaskState.REMOVE
    )
    keep = task(svc, slot=3, node_id="n1")
    await put(store, cluster(), node("n1"), svc, orphan, stopped_remove, running_remove, keep)
    await running.start(TaskReaper(store, clock))
    assert {t.ID for t in store.view().list(Task)} == {running_remove.ID, keep.ID}


async def test_retention_limit_follows_the_cluster(store, clock, running):
    svc = service()
    await put(store, cluster(10), svc)
    await running.start(TaskReaper(store, clock))
    for i in range(6):
        await put(
            store,
            task(
                svc,
                slot=1,
                node_id="n1",
                state=TaskState.FAILED,
                desired=TaskState.SHUTDOWN,
                at=at(i),
            ),
        )
    await settle(store)
    assert len(ids(store, svc)) == 6
    await change(
        store,
        Cluster,
        "cluster1",
        lambda c: setattr(c.Spec.Orchestration, "TaskHistoryRetentionLimit", 2),
    )
    await put(store, task(svc, slot=1, node_id="n1", at=at(9)))
    await settle(store)
    assert len(ids(store, svc)) == 2


async def test_negative_limit_keeps_everything(store, clock, running):
    svc = service()
    await put(store, cluster(-1), svc)
    await running.start(TaskReaper(store, clock))
    for i in range(8):
        await put(
            store,
            task(
                svc,
                slot=1,
                node_id="n1",
                state=TaskState.FAILED,
                desired=TaskState.SHUTDOWN,
                at=at(i),
            ),
        )
    await settle(store)
    assert len(ids(store, svc)) == 8


async def test_slot_with_two_running_tasks_is_looked_at_again(store, clock, running):
    svc = service()
    await put(store, cluster(1), node("n1"), svc)
    await running.start(TaskReaper(store, clock))
    old = task(svc, slot=1, node_id="n1", desired=TaskState.SHUTDOWN, at=at(0))
    new = task(svc, slot=1, node_id="n1", at=at(1))
    await put(store, old, new)
    await settle(store)
    assert len(ids(store, svc)) == 2
    await change(store, Task, old.ID, lambda t: setattr(t.Status, "State", TaskState.SHUTDOWN))
    await settle(store)
    assert ids(store, svc) == {new.ID}


def test_removable_on_a_lost_node():
    svc = service()
    t = task(svc, slot=1, node_id="n1", state=TaskState.RUNNING, desired=TaskState.REMOVE)
    assert not removable(t, node("n1"))
    assert removable(t, node("n1", state=NodeState.DOWN))
    assert removable(t, None)


async def test_tasks_retired_on_a_lost_node_do_not_linger(store, clock, running):
    svc = service()
    removed = task(svc, slot=1, node_id="n1", state=TaskState.RUNNING, desired=TaskState.REMOVE)
    old = task(
        svc, slot=2, node_id="n1", state=TaskState.RUNNING, desired=TaskState.SHUTDOWN, at=at(0)
    )
    new = task(svc, slot=2, node_id="n2", state=TaskState.RUNNING, at=at(1))
    await put(store, cluster(1), node("n1"), node("n2"), svc, removed, old, new)
    await running.start(TaskReaper(store, clock))
    assert ids(store, svc) == {removed.ID, old.ID, new.ID}
    await change(store, Node, "n1", lambda n: setattr(n.Status, "State", NodeState.DOWN))
    await settle(store)
    assert ids(store, svc) == {new.ID}


async def test_a_new_leader_with_no_history_kept_deletes_a_slot_s_only_task_once_done(
    store, clock, running
):
    # A slot of one task is skipped by the new leader's first look only while that task is
    # not done: with a retention of 0, one that failed, will never run, or was retired on a
    # lost node goes, and one that runs stays (issue 15: the skip spares 100,000 lookups).
    svc = service()
    runs = task(svc, slot=1, node_id="n1")
    failed = task(svc, slot=2, node_id="n1", state=TaskState.FAILED, desired=TaskState.SHUTDOWN)
    never = task(svc, slot=3, state=TaskState.PENDING, desired=TaskState.SHUTDOWN)
    retired = task(svc, slot=4, node_id="gone", state=TaskState.RUNNING, desired=TaskState.SHUTDOWN)
    await put(store, cluster(0), node("n1"), svc, runs, failed, never, retired)
    await running.start(TaskReaper(store, clock))
    await settle(store)
    assert ids(store, svc) == {runs.ID}
