"""The dispatcher's expiry loop on a fake clock: which nodes it marks down, and how."""

import asyncio
import logging

from shoal.api.objects import Cluster, Node, NodeStatus
from shoal.api.types import NodeState
from shoal.manager.dispatcher import Dispatcher


async def test_nodes_found_down_together_are_marked_down_in_one_write(store, clock, background):
    ids = ["n1", "n2", "n3"]
    await store.update(
        lambda tx: [
            tx.create(Cluster(ID="c1")),
            *(tx.create(Node(ID=i, Status=NodeStatus(State=NodeState.READY))) for i in ids),
        ]
    )
    dispatcher = background(Dispatcher(store, clock, reconnect_grace=2.0))
    for _ in range(5):
        await asyncio.sleep(0)  # run() gives every node up its heartbeat timeout (15 s)
    # Two machines die together: their sessions break.
    dispatcher.deadlines.session_broke("n1", clock.monotonic(), 2.0)
    dispatcher.deadlines.session_broke("n2", clock.monotonic(), 2.0)
    with store.watch(kinds={"node"}) as sub:
        await clock.advance(1.9)
        assert sub.get_nowait() is None  # within the grace: nothing yet
        await clock.advance(0.5)
        events = []
        while (ev := sub.get_nowait()) is not None:
            events.append(ev)
    downs = [e.obj for e in events if not e.is_commit]
    assert sorted(n.ID for n in downs) == ["n1", "n2"]
    assert all(n.Status.State == NodeState.DOWN for n in downs)
    assert all(n.Status.Message == "heartbeat failure" for n in downs)
    assert sum(1 for e in events if e.is_commit) == 1
    assert store.view().get(Node, "n3").Status.State == NodeState.READY


async def one_ready_node(store, clock, background) -> Dispatcher:
    """A dispatcher running (2 s reconnect grace) for one ready node, n1."""
    await store.update(
        lambda tx: [
            tx.create(Cluster(ID="c1")),
            tx.create(Node(ID="n1", Status=NodeStatus(State=NodeState.READY))),
        ]
    )
    dispatcher = background(Dispatcher(store, clock, reconnect_grace=2.0))
    for _ in range(5):
        await asyncio.sleep(0)
    return dispatcher


async def broken_session_held_loop(store, clock, background) -> Dispatcher:
    """One ready node whose session broke (2 s grace); 1 s later the dispatcher's loop is
    held for 5 s, from the expiry check due at 1.25 s, when 0.75 s of the grace was left."""
    dispatcher = await one_ready_node(store, clock, background)
    dispatcher.deadlines.session_broke("n1", clock.monotonic(), 2.0)
    await clock.advance(1.0)
    clock.hold(5.0)
    return dispatcher


async def test_time_the_loop_was_held_does_not_count_against_a_broken_session(
    store, clock, background
):
    """A dispatcher whose event loop was held for seconds has not read the new sessions that
    came meanwhile: the grace runs on once the loop turns again."""
    dispatcher = await broken_session_held_loop(store, clock, background)
    await clock.advance(0.0)  # held past the grace: the node's new session waits unread
    assert store.view().get(Node, "n1").Status.State == NodeState.READY
    dispatcher.deadlines.beat("n1", clock.monotonic(), 5.0)  # then read: the node is back
    await clock.advance(2.0)
    assert store.view().get(Node, "n1").Status.State == NodeState.READY


async def test_a_node_silent_past_its_grace_after_a_hold_is_still_marked_down(
    store, clock, background
):
    await broken_session_held_loop(store, clock, background)
    await clock.advance(0.5)
    assert store.view().get(Node, "n1").Status.State == NodeState.READY
    await clock.advance(0.5)  # 0.75 s after the loop turned again, nothing heard
    node = store.view().get(Node, "n1")
    assert node.Status.State == NodeState.DOWN
    assert node.Status.Message == "heartbeat failure"


async def test_a_node_marked_down_is_logged_with_why(store, clock, background, caplog):
    """Its replaced tasks carry no error of their own: the log is what says a node was lost
    (a stalled worker's tasks moved) rather than that they failed."""
    await store.update(
        lambda tx: [
            tx.create(Cluster(ID="c1")),
            tx.create(Node(ID="n1", Status=NodeStatus(State=NodeState.READY))),
            tx.create(Node(ID="n2", Status=NodeStatus(State=NodeState.READY))),
        ]
    )
    dispatcher = background(Dispatcher(store, clock, reconnect_grace=2.0))
    for _ in range(5):
        await asyncio.sleep(0)
    dispatcher.deadlines.session_broke("n2", clock.monotonic(), 2.0)
    caplog.set_level(logging.INFO, logger="shoal.manager.dispatcher.dispatcher")
    await clock.advance(2.5)
    await clock.advance(15.0)  # n1's heartbeat timeout: three periods of 5 s
    downs = [r.getMessage() for r in caplog.records if " is down: " in r.getMessage()]
    assert downs == [
        "node n2 is down: its session broke and it opened no new one within the reconnect "
        "grace (heartbeat period 5 s)",
        "node n1 is down: no heartbeat for 3 heartbeat periods (heartbeat period 5 s)",
    ]


async def test_a_node_waiting_for_its_session_answer_is_not_marked_down(store, clock, background):
    """A node whose session is open but not yet answered (the write marking it ready still
    in flight on a loaded leader) cannot heartbeat: it is not down for that. Once answered,
    its heartbeat timeout runs as any node's."""
    from shoal.manager.dispatcher.dispatcher import AgentSession

    dispatcher = await one_ready_node(store, clock, background)
    session = AgentSession(id="s1", node_id="n1")
    dispatcher.sessions["n1"] = session
    dispatcher.deadlines.beat("n1", clock.monotonic(), 5.0)
    await clock.advance(40.0)  # well past three periods, still waiting on us
    assert store.view().get(Node, "n1").Status.State == NodeState.READY
    assert not session.closed
    session.answered = True  # answered: from now on it must heartbeat
    await clock.advance(16.0)
    assert store.view().get(Node, "n1").Status.State == NodeState.DOWN
    assert session.closed
