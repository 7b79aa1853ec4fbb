import asyncio
import gc
import logging

import pytest

from shoal.api.ids import new_id
from shoal.api.objects import Service
from shoal.api.specs import ServiceSpec
from shoal.manager.orchestrator.waiting import write, write_batch
from shoal.raft.types import NotLeader
from shoal.store import MemoryStore
from shoal.store.proposal import Proposal


class StoppingProposer:
    """Refuses each proposal once told to (as raft does when the manager stops)."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()

    async def propose(self, proposal: Proposal) -> None:
        await self.stop.wait()
        raise NotLeader("raft: node stopped")


@pytest.mark.parametrize("how", ["write", "write_batch"])
async def test_a_cancelled_loops_failed_write_is_retrieved_and_logged(how, caplog):
    # write/write_batch shield the whole store write from the loop's cancellation (leadership
    # lost, the manager stopping): its error then has nobody to await it, and unretrieved,
    # asyncio reports "Task exception was never retrieved" (seen in a fleet run's managers).
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    store = MemoryStore()
    store.proposer = proposer = StoppingProposer()

    def fn(tx):
        tx.create(Service(ID=new_id(), Spec=ServiceSpec(Name="web")))

    loop_task = asyncio.ensure_future(
        write(store, fn) if how == "write" else write_batch(store, [fn])
    )
    await asyncio.sleep(0)
    loop_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop_task
    caplog.set_level(logging.DEBUG, logger="shoal.store.shielded")
    proposer.stop.set()
    for _ in range(5):
        await asyncio.sleep(0)
    del loop_task
    gc.collect()  # an unretrieved error is reported when its task is collected
    loop.set_exception_handler(None)
    assert reported == []
    assert "raft: node stopped" in caplog.text
