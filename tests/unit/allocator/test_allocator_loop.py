import asyncio

from shoal.api.objects import Task
from shoal.api.types import TaskState
from shoal.manager.allocator import PENDING_MESSAGE, Allocator
from shoal.manager.scheduler import Scheduler
from tests.unit.scheduler.factories import make_node, make_task, until


def get(store, task_id) -> Task:
    t = store.view().get(Task, task_id)
    assert t is not None
    return t


def new_task(slot):
    t = make_task("web", slot, state=TaskState.NEW)
    t.Status.Message = "created"
    return t


async def test_new_tasks_found_at_start_become_pending(store, clock, background):
    tasks = [new_task(i) for i in (1, 2)]
    await store.update(lambda tx: [tx.create(t) for t in tasks])
    await clock.advance(5)
    background(Allocator(store, clock))
    await until(lambda: all(get(store, t.ID).Status.State == TaskState.PENDING for t in tasks))
    got = get(store, tasks[0].ID)
    assert got.Status.Message == PENDING_MESSAGE == "pending task scheduling"
    assert got.Status.Timestamp == clock.now()


async def test_many_new_tasks_move_in_few_transactions(store, clock, background):
    background(Allocator(store, clock))
    await asyncio.sleep(0)
    before = store.version
    tasks = [new_task(i) for i in range(1, 501)]
    await store.update(lambda tx: [tx.create(t) for t in tasks])
    await until(lambda: all(get(store, t.ID).Status.State == TaskState.PENDING for t in tasks))
    # 1 transaction to create them; the allocator's batches hold up to 200 changes each
    assert store.version - before <= 1 + 3


async def test_only_new_tasks_are_touched(store, clock, background):
    pending = make_task("web", 1)
    running = make_task("web", 2, state=TaskState.RUNNING, node_id="n")
    await store.update(lambda tx: (tx.create(pending), tx.create(running)))
    versions = {t.ID: get(store, t.ID).Version.Index for t in (pending, running)}
    background(Allocator(store, clock))
    fresh = new_task(3)
    await store.update(lambda tx: tx.create(fresh))
    await until(lambda: get(store, fresh.ID).Status.State == TaskState.PENDING)
    assert {t.ID: get(store, t.ID).Version.Index for t in (pending, running)} == versions


async def test_new_to_assigned_with_the_scheduler(store, clock, background):
    await store.update(lambda tx: tx.create(make_node("a")))
    background(Allocator(store, clock))
    background(Scheduler(store, clock))
    tasks = [new_task(i) for i in (1, 2, 3)]
    await store.update(lambda tx: [tx.create(t) for t in tasks])
    await until(lambda: all(get(store, t.ID).Status.State == TaskState.ASSIGNED for t in tasks))
    assert {get(store, t.ID).NodeID for t in tasks} == {"a"}


async def test_run_returns_when_store_closes(store, clock):
    runner = asyncio.create_task(Allocator(store, clock).run())
    await asyncio.sleep(0)
    store.close()
    await asyncio.wait_for(runner, timeout=5)
