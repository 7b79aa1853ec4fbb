"""The store's write lock: a lock as asyncio's (one holder, waiters in the order they came, a
waiter cancelled once woken passing it on), except that urgent waiters (a user's writes) are
let in before the others; and the store lets a user's update in before batches waiting."""

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.api.ids import new_id
from shoal.api.objects import Service
from shoal.api.specs import ServiceSpec
from shoal.store.write_lock import WriteLock
from tests.unit.test_store_group_commit import gated_store


async def holder_order(lock: WriteLock, waiters: list[tuple[str, bool]]) -> list[str]:
    """Who holds ``lock`` in turn, when ``waiters`` (name, urgent) queue while it is held."""
    order: list[str] = []

    async def take(name: str, urgent: bool) -> None:
        await lock.acquire(urgent)
        order.append(name)
        await asyncio.sleep(0)
        lock.release()

    await lock.acquire()
    tasks = []
    for name, urgent in waiters:
        tasks.append(asyncio.ensure_future(take(name, urgent)))
        await asyncio.sleep(0)  # queued in this order
    lock.release()
    await asyncio.gather(*tasks)
    return order


async def test_urgent_waiters_go_first_each_queue_in_order():
    order = await holder_order(
        WriteLock(), [("b1", False), ("b2", False), ("u1", True), ("b3", False), ("u2", True)]
    )
    assert order == ["u1", "u2", "b1", "b2", "b3"]


async def test_a_free_lock_is_taken_at_once_and_release_of_a_free_lock_fails():
    lock = WriteLock()
    assert await lock.acquire() and lock.locked()
    lock.release()
    assert not lock.locked()
    try:
        lock.release()
    except RuntimeError:
        pass
    else:
        raise AssertionError("released a lock nobody held")


async def test_a_waiter_cancelled_once_woken_passes_the_lock_on_urgent_first():
    lock = WriteLock()
    await lock.acquire()
    batch = asyncio.ensure_future(lock.acquire())
    first = asyncio.ensure_future(lock.acquire(urgent=True))
    second = asyncio.ensure_future(lock.acquire(urgent=True))
    await asyncio.sleep(0)  # all three wait
    lock.release()  # the first urgent waiter is woken...
    first.cancel()  # ...and cancelled before it ran: the lock goes to the next urgent one
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert first.cancelled()
    assert second.done() and not batch.done()
    lock.release()
    assert await batch
    lock.release()
    assert not lock.locked()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=12))
def test_one_holder_at_a_time_urgent_first_and_none_left_waiting(waiters):
    """Waiters (urgent, cancelled before their turn) queued behind a holder: never two
    holders; those not cancelled all get it, urgent ones before the others, each queue in
    order."""

    async def run() -> None:
        lock = WriteLock()
        holders = 0
        order: list[int] = []

        async def take(i: int, urgent: bool) -> None:
            nonlocal holders
            await lock.acquire(urgent)
            holders += 1
            assert holders == 1
            order.append(i)
            await asyncio.sleep(0)
            holders -= 1
            lock.release()

        await lock.acquire()
        tasks = [asyncio.ensure_future(take(i, u)) for i, (u, _) in enumerate(waiters)]
        await asyncio.sleep(0)
        for task, (_, cancelled) in zip(tasks, waiters, strict=True):
            if cancelled:
                task.cancel()
        lock.release()
        await asyncio.gather(*tasks, return_exceptions=True)
        kept = [i for i, (_, c) in enumerate(waiters) if not c]
        assert order == sorted(kept, key=lambda i: (not waiters[i][0], i))
        assert not lock.locked()

    asyncio.run(run())


async def test_a_users_update_is_let_in_before_the_batches_waiting():
    store, proposer = gated_store()
    first = asyncio.ensure_future(store.update(lambda tx: tx.create(svc("s0"))))
    await asyncio.sleep(0)  # s0's proposal is out, the write lock held until it commits
    batches = [
        asyncio.ensure_future(store.batch([lambda tx, i=i: tx.create(svc(f"b{i}"))]))
        for i in range(3)
    ]
    await asyncio.sleep(0)
    user = asyncio.ensure_future(store.update(lambda tx: tx.create(svc("user")), urgent=True))
    await asyncio.sleep(0)
    proposer.gate.set()
    await asyncio.gather(first, user, *batches)
    names = [p.changes[0].obj.Spec.Name for p in proposer.proposals]
    assert names == ["s0", "user", "b0", "b1", "b2"]


def svc(name: str) -> Service:
    return Service(ID=new_id(), Spec=ServiceSpec(Name=name))
