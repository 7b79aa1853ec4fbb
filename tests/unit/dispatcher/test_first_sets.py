"""A new leader's agents all ask for their complete assignment sets at once: the sets are
built a few per turn of the event loop, so that raft's heartbeats are not held meanwhile."""

import asyncio

from shoal.api.objects import Node, NodeStatus
from shoal.api.types import NodeState
from shoal.clock import FakeClock
from shoal.manager.dispatcher import dispatcher as dispatching
from shoal.manager.dispatcher.assignments import NodeAssignments
from shoal.manager.dispatcher.dispatcher import AgentSession, Dispatcher
from shoal.store import MemoryStore


async def test_complete_sets_are_built_a_few_per_turn_of_the_loop(monkeypatch) -> None:
    store = MemoryStore()
    ids = [f"node{i}" for i in range(20)]
    await store.update(
        lambda tx: [tx.create(Node(ID=i, Status=NodeStatus(State=NodeState.READY))) for i in ids]
    )
    dispatcher = Dispatcher(store, FakeClock())
    turn = 0
    built_at: list[int] = []
    complete = NodeAssignments.complete

    def counted(self, view, known=None):  # type: ignore[no-untyped-def]
        built_at.append(turn)
        return complete(self, view, known)

    monkeypatch.setattr(NodeAssignments, "complete", counted)

    async def turns() -> None:
        nonlocal turn
        while True:
            await asyncio.sleep(0)
            turn += 1

    counter = asyncio.ensure_future(turns())
    sessions = [AgentSession(id=f"s{i}", node_id=n) for i, n in enumerate(ids)]
    try:
        firsts = await asyncio.gather(*(dispatcher._first_set(s) for s in sessions))
    finally:
        counter.cancel()
    assert [node.node_id for node, _, _ in firsts] == ids
    assert len(built_at) == len(ids)
    per_turn = {t: built_at.count(t) for t in built_at}
    assert max(per_turn.values()) <= dispatching.FIRST_SETS_AT_ONCE
    for _, inbox, _ in firsts:
        inbox.close()
