import asyncio
import gc
import logging

import pytest

from shoal.api.ids import new_id
from shoal.api.objects import Service, Task
from shoal.api.specs import ServiceSpec
from shoal.api.types import TaskState
from shoal.errors import Conflict, OutOfSequence
from shoal.raft.types import ProposalDropped
from shoal.store import MemoryStore
from shoal.store.proposal import Proposal


def make_service(name: str) -> Service:
    return Service(ID=new_id(), Spec=ServiceSpec(Name=name))


def make_task(service: Service, slot: int, node: str | None = None) -> Task:
    return Task(
        ID=new_id(), ServiceID=service.ID, Slot=slot, NodeID=node, DesiredState=TaskState.RUNNING
    )


async def test_create_assigns_version_and_indexes():
    store = MemoryStore()
    svc = make_service("web")
    await store.update(lambda tx: tx.create(svc))
    view = store.view()
    got = view.service_by_name("WEB")
    assert got is not None and got.ID == svc.ID
    assert got.Version.Index == 1 == store.version

    t1, t2 = make_task(svc, 1, "n1"), make_task(svc, 2, "n2")
    await store.update(lambda tx: (tx.create(t1), tx.create(t2)))
    assert {t.ID for t in store.view().tasks_of_service(svc.ID)} == {t1.ID, t2.ID}
    assert [t.ID for t in store.view().tasks_on_node("n2")] == [t2.ID]
    assert [t.ID for t in store.view().find(Task, "slot", (svc.ID, 1))] == [t1.ID]


async def test_duplicate_name_refused_and_nothing_changes():
    store = MemoryStore()
    await store.update(lambda tx: tx.create(make_service("web")))
    with pytest.raises(Conflict):
        await store.update(lambda tx: tx.create(make_service("Web")))
    assert len(store.view().services()) == 1
    assert store.version == 1


async def test_stale_version_is_out_of_sequence():
    store = MemoryStore()
    svc = make_service("web")
    await store.update(lambda tx: tx.create(svc))
    stale = store.view().get(Service, svc.ID).clone()
    fresh = store.view().get(Service, svc.ID).clone()
    fresh.Spec.Labels["a"] = "b"
    await store.update(lambda tx: tx.update(fresh))
    stale.Spec.Labels["c"] = "d"
    with pytest.raises(OutOfSequence):
        await store.update(lambda tx: tx.update(stale))
    assert store.view().get(Service, svc.ID).Spec.Labels == {"a": "b"}


async def test_update_needs_a_clone():
    store = MemoryStore()
    svc = make_service("web")
    await store.update(lambda tx: tx.create(svc))
    shared = store.view().get(Service, svc.ID)
    with pytest.raises(RuntimeError):
        await store.update(lambda tx: tx.update(shared))


async def test_transaction_reads_its_own_writes():
    store = MemoryStore()
    svc = make_service("web")

    def fn(tx):
        tx.create(svc)
        t = make_task(svc, 1, "n1")
        tx.create(t)
        assert [x.ID for x in tx.find(Task, "service", svc.ID)] == [t.ID]
        moved = tx.get(Task, t.ID).clone()
        moved.NodeID = "n2"
        tx.update(moved)
        assert tx.find(Task, "node", "n1") == []
        assert [x.NodeID for x in tx.find(Task, "node", "n2")] == ["n2"]
        tx.delete(Task, t.ID)
        assert tx.find(Task, "service", svc.ID) == []

    await store.update(fn)
    assert store.view().tasks_of_service(svc.ID) == []
    assert len(store.view().services()) == 1


async def test_failed_callback_commits_nothing():
    store = MemoryStore()

    def fn(tx):
        tx.create(make_service("web"))
        raise ValueError("boom")

    with pytest.raises(ValueError):
        await store.update(fn)
    assert store.view().services() == [] and store.version == 0


async def test_watch_sees_changes_then_commit():
    store = MemoryStore()
    sub = store.watch(kinds=["service"])
    svc = make_service("web")
    await store.update(lambda tx: tx.create(svc))
    ev = await sub.get()
    assert ev.action == "create" and ev.obj.ID == svc.ID
    assert (await sub.get()).is_commit
    await store.update(lambda tx: tx.delete(Service, svc.ID))
    ev = await sub.get()
    assert ev.action == "remove" and ev.obj.ID == svc.ID
    sub.close()


async def test_a_closed_subscription_gives_what_it_queued_then_ends_every_time():
    store = MemoryStore()
    sub = store.watch(kinds=["service"])
    await store.update(lambda tx: tx.create(make_service("web")))
    sub.close()
    await store.update(lambda tx: tx.create(make_service("db")))  # after: not queued
    assert (await sub.get()).obj.Spec.Name == "web"
    assert sub.get_nowait().is_commit
    for _ in range(2):  # a second reader (or a second look) ends too, and does not hang
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(sub.get(), 1)
        assert sub.get_nowait() is None
    assert [ev async for ev in sub] == []


async def test_a_listener_is_called_with_each_proposals_events_from_its_view_on():
    store = MemoryStore()
    before = make_service("before")
    await store.update(lambda tx: tx.create(before))
    heard: list[list] = []
    view, listening = store.view_and_listen(heard.append)
    assert [s.ID for s in view.services()] == [before.ID]
    svc = make_service("web")
    await store.update(lambda tx: tx.create(svc))
    assert len(heard) == 1
    ev, commit = heard[0]
    assert ev.action == "create" and ev.obj.ID == svc.ID and commit.is_commit
    listening.close()
    await store.update(lambda tx: tx.delete(Service, svc.ID))
    assert len(heard) == 1


async def test_batch_splits_large_writes(monkeypatch):
    import shoal.store.memory as memory

    monkeypatch.setattr(memory, "MAX_CHANGES_PER_PROPOSAL", 10)
    store = MemoryStore()
    svc = make_service("web")
    await store.update(lambda tx: tx.create(svc))
    await store.batch([lambda tx, i=i: tx.create(make_task(svc, i)) for i in range(1, 26)])
    assert len(store.view().tasks_of_service(svc.ID)) == 25
    assert store.version == 1 + 3


async def test_batch_ends_a_proposal_once_building_it_took_its_time(monkeypatch):
    """Building a proposal holds the event loop: a slow batch is committed in several, each
    with at least one change, in order (issue 15)."""
    import shoal.store.memory as memory

    monkeypatch.setattr(memory, "MAX_SECONDS_PER_PROPOSAL", 0.0)  # every function is slow
    store = MemoryStore()
    svc = make_service("web")
    await store.update(lambda tx: tx.create(svc))
    versions: list[int] = []
    listening = store.view_and_listen(lambda events: versions.append(events[-1].version))[1]
    await store.batch([lambda tx, i=i: tx.create(make_task(svc, i)) for i in range(1, 6)])
    listening.close()
    tasks = store.view().tasks_of_service(svc.ID)
    assert sorted(t.Slot for t in tasks) == [1, 2, 3, 4, 5]
    assert versions == [2, 3, 4, 5, 6]  # one proposal per function, in order


async def test_a_batch_that_changes_nothing_still_lets_the_loop_run(monkeypatch):
    """Functions that change nothing (statuses the store already has) make no proposal, so
    no commit to wait on: the loop gets its turn once their time is up all the same."""
    import shoal.store.memory as memory

    monkeypatch.setattr(memory, "MAX_SECONDS_PER_PROPOSAL", 0.0)
    store = MemoryStore()
    ran: list[int] = []
    seen_at: list[int] = []

    async def other() -> None:
        seen_at.append(len(ran))

    other_task = asyncio.ensure_future(other())
    await store.batch([lambda tx, i=i: ran.append(i) for i in range(5)])
    await other_task
    assert ran == [0, 1, 2, 3, 4]
    assert seen_at and seen_at[0] < 5  # it ran while the batch was under way
    assert store.version == 0


async def test_batch_skips_a_failing_function_alone_and_keeps_the_order_of_the_rest():
    store = MemoryStore()
    svc = make_service("web")
    await store.update(lambda tx: tx.create(svc))
    tasks = [make_task(svc, i) for i in range(1, 5)]
    sub = store.watch(kinds=["task"])

    def create(t):
        return lambda tx: tx.create(t)

    def create_then_fail(t):
        def fn(tx):
            tx.create(t)
            raise ValueError("no")

        return fn

    def delete_then_fail(t):
        # Drops a change made earlier in the same transaction, then fails: the change
        # comes back where it was.
        def fn(tx):
            tx.delete(Task, t.ID)
            tx.create(tasks[3])
            raise ValueError("no")

        return fn

    await store.batch(
        [
            create(tasks[0]),
            create_then_fail(tasks[3]),
            create(tasks[1]),
            delete_then_fail(tasks[0]),
            create(tasks[2]),
        ]
    )
    order = []
    while (ev := sub.get_nowait()) is not None:
        if not ev.is_commit:
            order.append(ev.obj.ID)
    assert order == [tasks[0].ID, tasks[1].ID, tasks[2].ID]
    assert store.view().get(Task, tasks[3].ID) is None
    sub.close()


class SlowProposer:
    """Makes a proposal durable only after a moment, as a log on disk or raft does."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def propose(self, proposal: Proposal) -> None:
        await asyncio.sleep(0.01)
        self.store.apply(proposal)


async def test_cancelled_writer_still_commits_what_it_proposed():
    store = MemoryStore()
    store.proposer = SlowProposer(store)
    writer = asyncio.ensure_future(store.update(lambda tx: tx.create(make_service("web"))))
    await asyncio.sleep(0)  # the proposal is on its way to the log
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    # The next write waits for the first to finish, and both are committed.
    await store.update(lambda tx: tx.create(make_service("db")))
    assert sorted(s.Spec.Name for s in store.view().services()) == ["db", "web"]


class FailingProposer:
    """Refuses each proposal once told to (as raft does when leadership is lost meanwhile)."""

    def __init__(self) -> None:
        self.fail = asyncio.Event()

    async def propose(self, proposal: Proposal) -> None:
        await self.fail.wait()
        raise ProposalDropped()


@pytest.mark.parametrize("write", ["update", "batch"])
async def test_a_cancelled_writers_failed_commit_is_retrieved_and_logged(write, caplog):
    # The commit is shielded from the writer's cancellation, so its error has nobody to
    # await it: unretrieved, asyncio reports "Task exception was never retrieved".
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    store = MemoryStore()
    store.proposer = proposer = FailingProposer()
    fn = lambda tx: tx.create(make_service("web"))  # noqa: E731
    writer = asyncio.ensure_future(store.update(fn) if write == "update" else store.batch([fn]))
    await asyncio.sleep(0)  # the proposal is on its way to the log
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    caplog.set_level(logging.DEBUG, logger="shoal.store.shielded")
    proposer.fail.set()
    for _ in range(3):
        await asyncio.sleep(0)
    del writer
    gc.collect()  # an unretrieved error is reported when its task is collected
    loop.set_exception_handler(None)
    assert reported == []
    assert "raft: proposal dropped" in caplog.text
    # The lock was let go: the next write goes through.
    store.proposer = SlowProposer(store)
    await store.update(lambda tx: tx.create(make_service("db")))
    assert [s.Spec.Name for s in store.view().services()] == ["db"]


async def test_json_encodings_hold_what_the_python_values_hold():
    import json

    from shoal.store.proposal import Action, Change

    store = MemoryStore()
    svc = make_service("wéb-ünïcode")
    tasks = [make_task(svc, i, node="n1") for i in (1, 2)]
    await store.update(lambda tx: [tx.create(o) for o in (svc, *tasks)])
    assert json.loads(store.snapshot_json()) == store.snapshot()
    proposal = Proposal(
        7,
        [
            Change(Action.CREATE, svc),
            Change(Action.UPDATE, tasks[0]),
            Change(Action.REMOVE, tasks[1]),
        ],
    )
    assert json.loads(proposal.encode_json()) == proposal.encode()
    decoded = Proposal.decode(json.loads(proposal.encode_json()))
    assert decoded.version == 7 and [c.obj for c in decoded.changes[:2]] == [svc, tasks[0]]


async def test_an_updated_object_is_found_under_its_new_keys_and_last_in_each_bucket():
    store = MemoryStore()
    svc = make_service("web")
    tasks = [make_task(svc, i, node="n1") for i in (1, 2, 3)]
    await store.update(lambda tx: [tx.create(o) for o in (svc, *tasks)])

    def change(task_id, **fields):
        def fn(tx):
            t = tx.get(Task, task_id).model_copy(update=fields)
            tx.update(t)

        return fn

    await store.update(change(tasks[0].ID, DesiredState=TaskState.SHUTDOWN))  # same node
    await store.update(change(tasks[1].ID, NodeID="n2"))  # another node
    view = store.view()
    assert [t.ID for t in view.tasks_of_service(svc.ID)] == [tasks[2].ID, tasks[0].ID, tasks[1].ID]
    assert [t.ID for t in view.tasks_on_node("n1")] == [tasks[2].ID, tasks[0].ID]
    assert [t.ID for t in view.tasks_on_node("n2")] == [tasks[1].ID]
    assert view.find(Task, "desired_state", TaskState.SHUTDOWN) == [view.get(Task, tasks[0].ID)]
    assert view.tasks_on_node("n1")[1] is view.get(Task, tasks[0].ID)  # the new version


async def test_create_leaves_the_version_of_the_object_it_was_copied_from_alone(store):
    first = Service(ID="a", Spec=ServiceSpec(Name="a"))
    await store.update(lambda tx: tx.create(first))
    created_at = first.Version.Index
    copy = first.model_copy(update={"ID": "b", "Spec": ServiceSpec(Name="b")})  # shares Version
    await store.update(lambda tx: tx.create(copy))
    assert store.view().get(Service, "a").Version.Index == created_at
    assert copy.Version.Index == created_at + 1


async def test_batch_runs_each_function_as_it_is_made(monkeypatch):
    # A generator of functions is read one at a time (the scheduler's thousands of write
    # closures are never all alive at once), across proposals, in order.
    import shoal.store.memory as memory

    monkeypatch.setattr(memory, "MAX_CHANGES_PER_PROPOSAL", 3)
    store = MemoryStore()
    svc = make_service("web")
    await store.update(lambda tx: tx.create(svc))
    made, ran = [], []

    def functions():
        for i in range(1, 8):
            made.append(i)
            assert made[:-1] == ran  # every function made before was run first
            yield lambda tx, i=i: (ran.append(i), tx.create(make_task(svc, i)))

    await store.batch(functions())
    assert ran == made == list(range(1, 8))
    assert sorted(t.Slot for t in store.view().tasks_of_service(svc.ID)) == list(range(1, 8))
    assert store.version == 1 + 3


async def test_objects_of_one_transaction_get_its_version_and_others_keep_theirs():
    store = MemoryStore()
    svc = make_service("web")
    await store.update(lambda tx: tx.create(svc))
    t1, t2 = make_task(svc, 1), make_task(svc, 2)
    await store.update(lambda tx: (tx.create(t1), tx.create(t2)))

    def assign(tx):
        for t in (t1, t2):
            tx.update(tx.get(Task, t.ID).model_copy(update={"NodeID": "n1"}))

    await store.update(assign)
    view = store.view()
    assert [t.Version.Index for t in view.tasks_on_node("n1")] == [3, 3]
    assert view.get(Service, svc.ID).Version.Index == 1
    assert view.get(Task, t1.ID).UpdatedAt >= view.get(Task, t1.ID).CreatedAt


async def test_network_index_follows_attachments_added_and_removed():
    from shoal.api.objects import Network, NetworkAttachment

    store = MemoryStore()
    svc = make_service("web")
    task = make_task(svc, 1)
    task.NetworksAttachments = []
    await store.update(lambda tx: (tx.create(svc), tx.create(task)))

    def attach(networks):
        def fn(tx):
            t = tx.get(Task, task.ID)
            tx.update(t.model_copy(update={"NetworksAttachments": networks}))

        return fn

    def found(network_id):
        return [t.ID for t in store.view().find(Task, "network", network_id)]

    await store.update(attach(None))  # no attachments either way: in no bucket
    assert store.view()._table(Task).indexes["network"] == {}
    await store.update(attach([NetworkAttachment(Network=Network(ID="net1"))]))
    assert found("net1") == [task.ID]
    await store.update(attach([NetworkAttachment(Network=Network(ID="net2"))]))
    assert found("net1") == [] and found("net2") == [task.ID]
    await store.update(attach([]))
    assert store.view()._table(Task).indexes["network"] == {}


async def test_role_change_index_holds_the_nodes_asked_to_change_role_until_they_have():
    """What the role manager reads each pass instead of every node."""
    from shoal.api.objects import Node
    from shoal.api.specs import NodeSpec
    from shoal.api.types import NodeRole

    store = MemoryStore()
    nodes = [Node(ID=new_id(), Spec=NodeSpec()) for _ in range(3)]
    await store.update(lambda tx: [tx.create(n) for n in nodes])

    def asked(role):
        return [n.ID for n in store.view().find(Node, "role_change", role)]

    assert asked(NodeRole.MANAGER) == asked(NodeRole.WORKER) == []

    def set_roles(node_id, spec_role=None, role=None):
        def fn(tx):
            n = tx.get(Node, node_id).clone()
            if spec_role is not None:
                n.Spec.Role = spec_role
            if role is not None:
                n.Role = role
            tx.update(n)

        return fn

    await store.update(set_roles(nodes[1].ID, spec_role=NodeRole.MANAGER))  # promote
    assert asked(NodeRole.MANAGER) == [nodes[1].ID] and asked(NodeRole.WORKER) == []
    await store.update(set_roles(nodes[1].ID, role=NodeRole.MANAGER))  # promoted
    assert asked(NodeRole.MANAGER) == []
    assert [n.ID for n in store.view().find(Node, "role", NodeRole.MANAGER)] == [nodes[1].ID]
    await store.update(set_roles(nodes[1].ID, spec_role=NodeRole.WORKER))  # demote
    assert asked(NodeRole.WORKER) == [nodes[1].ID] and asked(NodeRole.MANAGER) == []
