"""A batch of store changes moves only the parts of a node's assignments it can: a task
with no port, network or secret on another node moves nothing; ports move the routing
table, attachments the network map, the node's own tasks and secrets its dependencies."""

from shoal.api.objects import Node, Secret, Task
from shoal.manager.dispatcher.fanout import Affected, SharedFlags, affected
from shoal.store import Event
from shoal.store.watch import Action


def task(node: str = "n2", **fields: object) -> Task:
    return Task.model_validate({"ID": "t1", "NodeID": node, **fields})


def test_a_plain_task_elsewhere_moves_nothing() -> None:
    events = [Event(Action.UPDATE, task(), task()), Event(None, None, None)]
    assert affected(events, "n1") == Affected()


def test_each_kind_of_change_moves_its_part() -> None:
    ported = task(Status={"PortStatus": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}})
    attached = task(NetworksAttachments=[{"Network": {"ID": "net1"}, "Addresses": []}])
    assert affected([Event(Action.UPDATE, task(), ported)], "n1") == Affected(routes=True)
    # A task leaving the table (removed) still carries its ports in the event.
    assert affected([Event(Action.REMOVE, ported, ported)], "n1") == Affected(routes=True)
    assert affected([Event(Action.CREATE, attached)], "n1") == Affected(networks=True)
    secret = {"ContainerSpec": {"Secrets": [{"SecretID": "s", "SecretName": "s"}]}}
    config = {"ContainerSpec": {"Configs": [{"ConfigID": "c", "ConfigName": "c"}]}}
    assert affected([Event(Action.UPDATE, task("n1", Spec=secret), task())], "n1") == Affected(
        dependencies=True
    )
    assert affected([Event(Action.CREATE, task("n1", Spec=config))], "n1") == Affected(
        dependencies=True
    )
    # The node's own task naming no secret or config moves none of them.
    assert affected([Event(Action.UPDATE, task("n1"), task())], "n1") == Affected()
    assert affected([Event(Action.CREATE, Secret.model_validate({"ID": "s"}))], "n1") == Affected(
        dependencies=True
    )
    node = Node.model_validate({"ID": "n3"})
    assert affected([Event(Action.UPDATE, node, node)], "n1") == Affected(
        routes=True, networks=True
    )


def test_shared_flags_give_the_same_answers_once_worked_out() -> None:
    ported = task(Status={"PortStatus": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}})
    secret = {"ContainerSpec": {"Secrets": [{"SecretID": "s", "SecretName": "s"}]}}
    mine = task("n1", Spec=secret)
    events = [Event(Action.UPDATE, task(), ported), Event(Action.UPDATE, mine, mine)]
    shared = SharedFlags(limit=1)  # forgets at once: answers must not depend on it
    for _ in range(2):
        assert affected(events, "n1", shared) == affected(events, "n1")
        assert affected(events, "n1", shared) == Affected(routes=True, dependencies=True)
