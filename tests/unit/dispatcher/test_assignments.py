"""What a node's Assignments stream is sent: the COMPLETE set, then only what changes."""

import json

from shoal.api.objects import Node, Service, Task
from shoal.manager.dispatcher import assignments
from shoal.manager.dispatcher.assignments import NodeAssignments
from shoal.rpc import pb
from shoal.store import Event, MemoryStore, Tx
from shoal.store.watch import Action


def task(node: str, state: str = "assigned", image: str = "busybox") -> Task:
    return Task.model_validate(
        {
            "ID": "t1",
            "NodeID": node,
            "Status": {"State": state},
            "DesiredState": "running",
            "Spec": {"ContainerSpec": {"Image": image}},
        }
    )


async def _store(*tasks: Task) -> MemoryStore:
    store = MemoryStore()

    def fn(tx: Tx) -> None:
        for t in tasks:
            tx.create(t)

    await store.update(fn)
    return store


async def test_the_complete_set_then_only_changes_not_echoes() -> None:
    store = await _store(task("n1"))
    node = NodeAssignments("n1")
    first = node.complete(store.view())
    assert first.type == pb.AssignmentsMessage.COMPLETE and len(first.update_tasks) == 1
    # The agent's own status report comes back: nothing to send.
    running = task("n1", "running")
    assert node.incremental([Event(Action.UPDATE, running, task("n1"))], store.view()) is None
    # A new spec is sent.
    changed = task("n1", "running", image="busybox:2")
    message = node.incremental([Event(Action.UPDATE, changed, running)], store.view())
    assert message is not None and message.type == pb.AssignmentsMessage.INCREMENTAL
    assert len(message.update_tasks) == 1 and not message.remove_tasks
    # Moved away: removed.
    message = node.incremental([Event(Action.UPDATE, task("n2"), changed)], store.view())
    assert message is not None and list(message.remove_tasks) == ["t1"]
    assert node.sent == {}


async def test_a_task_that_came_and_went_within_a_batch_is_not_sent() -> None:
    # Its later changes go to its new node's stream only: sent here, it would stay forever.
    store = await _store()
    node = NodeAssignments("n1")
    node.complete(store.view())
    came, went = task("n1"), task("n2")
    events = [Event(Action.CREATE, came), Event(Action.UPDATE, went, came)]
    assert node.incremental(events, store.view()) is None
    assert node.sent == {}


def _task(tid: str, node: str, desired: str = "running") -> Task:
    return Task.model_validate(
        {
            "ID": tid,
            "NodeID": node,
            "Status": {"State": "running"},
            "DesiredState": desired,
            "Spec": {"ContainerSpec": {"Image": "busybox"}},
        }
    )


async def test_the_complete_set_names_the_tasks_the_node_holds_as_they_are() -> None:
    store = await _store(
        _task("held", "n1"), _task("stopping", "n1", "shutdown"), _task("new", "n1")
    )
    node = NodeAssignments("n1")
    known = {"held": "running", "stopping": "running", "elsewhere": "running"}
    message = node.complete(store.view(), known)
    assert message.type == pb.AssignmentsMessage.COMPLETE
    # Held in the desired state it has: named. Its desired state changed, or never held: sent.
    assert list(message.unchanged_tasks) == ["held"]
    sent = sorted(Task.model_validate_json(raw).ID for raw in message.update_tasks)
    assert sent == ["new", "stopping"]
    # The node holds a task no longer its own ("elsewhere"): in neither list, so it goes.
    # What was sent or named is what the incremental messages compare against.
    assert set(node.sent) == {"held", "stopping", "new"}
    running = _task("held", "n1")
    assert node.incremental([Event(Action.UPDATE, running, running)], store.view()) is None


async def test_a_node_with_no_attached_task_is_not_walked_for_its_network_map(
    monkeypatch,
) -> None:
    walks: list[str] = []
    network_map = assignments.network_map

    def counted(view, node_id):  # type: ignore[no-untyped-def]
        walks.append(node_id)
        return network_map(view, node_id)

    monkeypatch.setattr(assignments, "network_map", counted)
    node = Node.model_validate({"ID": "n1", "Description": {"DataPathPort": 4789}})
    store = await _store(_task("t1", "n1"))
    await store.update(lambda tx: tx.create(node))
    assigned = NodeAssignments("n1")
    assigned.complete(store.view())
    walks.clear()
    # A service changed: it may move any node's map, but not that of a node with no
    # network attachment: no walk, nothing sent.
    service = Service.model_validate({"ID": "s1", "Spec": {"Name": "web"}})
    assert assigned.incremental([Event(Action.CREATE, service)], store.view()) is None
    assert walks == []
    # Its data path port changed: sent, still without a walk.
    moved = Node.model_validate({"ID": "n1", "Description": {"DataPathPort": 4790}})
    await store.update(
        lambda tx: tx.update(
            store.view().get(Node, "n1").model_copy(update={"Description": moved.Description})
        )
    )
    message = assigned.incremental([Event(Action.UPDATE, moved, node)], store.view())
    assert message is not None and json.loads(message.networks)["DataPathPort"] == 4790
    assert walks == []
    # A task of its own with an attachment: walked, and from then on at every change.
    attached = Task.model_validate(
        {
            **_task("t2", "n1").model_dump(mode="json"),
            "NetworksAttachments": [{"Network": {"ID": "net1"}}],
        }
    )
    await store.update(lambda tx: tx.create(attached))
    assigned.incremental([Event(Action.CREATE, attached)], store.view())
    assert walks == ["n1"]
    assigned.incremental([Event(Action.CREATE, service)], store.view())
    assert walks == ["n1", "n1"]
