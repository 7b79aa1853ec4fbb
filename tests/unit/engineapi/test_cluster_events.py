"""The cluster's events as Docker's daemon makes them from its manager's store watch
(daemon/events.go), checked against what Docker 20.10 printed for the same changes."""

import datetime as dt

from shoal.api.objects import (
    Config,
    ManagerStatus,
    Network,
    Node,
    NodeDescription,
    NodeStatus,
    Secret,
    Service,
    Task,
    UpdateStatus,
)
from shoal.api.specs import (
    ConfigSpec,
    ContainerSpec,
    GlobalService,
    NetworkSpec,
    NodeSpec,
    ReplicatedService,
    SecretSpec,
    ServiceMode,
    ServiceSpec,
    TaskSpec,
)
from shoal.api.types import (
    NodeAvailability,
    NodeRole,
    NodeState,
    Reachability,
    UpdateState,
)
from shoal.engineapi.cluster_events import cluster_message
from shoal.store.proposal import Action
from shoal.store.watch import Event

CREATED = dt.datetime(2026, 12, 6, 6, 50, 0, 123456, tzinfo=dt.UTC)
UPDATED = dt.datetime(2026, 12, 6, 6, 51, 0, 5, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 12, 6, 6, 52, 0, tzinfo=dt.UTC)


def service(replicas: int = 1, image: str = "busybox", **kw) -> Service:
    return Service(
        ID="svc1",
        CreatedAt=CREATED,
        UpdatedAt=UPDATED,
        Spec=ServiceSpec(
            Name="web",
            TaskTemplate=TaskSpec(ContainerSpec=ContainerSpec(Image=image)),
            Mode=ServiceMode(Replicated=ReplicatedService(Replicas=replicas)),
        ),
        **kw,
    )


def test_service_create_as_docker_prints_it():
    message = cluster_message(Event(Action.CREATE, service()), NOW)
    assert message == {
        "Type": "service",
        "Action": "create",
        "Actor": {"ID": "svc1", "Attributes": {"name": "web"}},
        "scope": "swarm",
        "time": 1796539800,
        "timeNano": 1796539800123456000,
    }
    assert list(message) == ["Type", "Action", "Actor", "scope", "time", "timeNano"]


def test_service_update_names_what_changed_and_takes_its_time_from_updated_at():
    old, new = service(1), service(2, image="busybox:1")
    message = cluster_message(Event(Action.UPDATE, new, old), NOW)
    assert message is not None
    assert message["Actor"]["Attributes"] == {
        "name": "web",
        "image.old": "busybox",
        "image.new": "busybox:1",
        "replicas.old": "1",
        "replicas.new": "2",
    }
    assert message["timeNano"] == 1796539860000005000


def test_service_update_state_new_then_old_and_new():
    plain = service()
    updating = service(UpdateStatus=UpdateStatus(State=UpdateState.UPDATING))
    done = service(UpdateStatus=UpdateStatus(State=UpdateState.COMPLETED))
    first = cluster_message(Event(Action.UPDATE, updating, plain), NOW)
    assert first is not None
    assert first["Actor"]["Attributes"] == {"name": "web", "updatestate.new": "updating"}
    second = cluster_message(Event(Action.UPDATE, done, updating), NOW)
    assert second is not None
    assert second["Actor"]["Attributes"] == {
        "name": "web",
        "updatestate.old": "updating",
        "updatestate.new": "completed",
    }
    same = cluster_message(Event(Action.UPDATE, done, done), NOW)
    assert same is not None and same["Actor"]["Attributes"] == {"name": "web"}


def test_replicas_only_between_replicated_modes():
    glob = service()
    glob.Spec.Mode = ServiceMode(Global=GlobalService())
    message = cluster_message(Event(Action.UPDATE, glob, service(3)), NOW)
    assert message is not None and message["Actor"]["Attributes"] == {"name": "web"}


def test_remove_is_timed_now():
    message = cluster_message(Event(Action.REMOVE, service(), service()), NOW)
    assert message is not None
    assert message["Action"] == "remove" and message["time"] == 1796539920


def node(**kw) -> Node:
    return Node(
        ID="node1",
        Description=NodeDescription(Hostname="vm"),
        CreatedAt=CREATED,
        UpdatedAt=UPDATED,
        **kw,
    )


def test_node_update_attributes():
    old = node(
        Spec=NodeSpec(Availability=NodeAvailability.ACTIVE),
        Status=NodeStatus(State=NodeState.UNKNOWN),
        ManagerStatus=ManagerStatus(Leader=None, Reachability=Reachability.UNKNOWN),
        Role=NodeRole.WORKER,
    )
    new = node(
        Spec=NodeSpec(Availability=NodeAvailability.DRAIN),
        Status=NodeStatus(State=NodeState.READY),
        ManagerStatus=ManagerStatus(Leader=True, Reachability=Reachability.REACHABLE),
        Role=NodeRole.MANAGER,
    )
    message = cluster_message(Event(Action.UPDATE, new, old), NOW)
    assert message is not None
    assert message["Type"] == "node"
    assert message["Actor"] == {
        "ID": "node1",
        "Attributes": {
            "name": "vm",
            "availability.old": "active",
            "availability.new": "drain",
            "role.old": "worker",
            "role.new": "manager",
            "state.old": "unknown",
            "state.new": "ready",
            "leader.old": "false",
            "leader.new": "true",
            "reachability.old": "unknown",
            "reachability.new": "reachable",
        },
    }


def test_node_name_is_its_spec_name_else_its_hostname():
    message = cluster_message(Event(Action.CREATE, node(Spec=NodeSpec(Name="n1"))), NOW)
    assert message is not None and message["Actor"]["Attributes"] == {"name": "n1"}


def test_networks_secrets_and_configs_carry_their_name_only():
    for obj in (
        Network(ID="n", Spec=NetworkSpec(Name="net"), CreatedAt=CREATED),
        Secret(ID="s", Spec=SecretSpec(Name="pw", Data="eA=="), CreatedAt=CREATED),
        Config(ID="c", Spec=ConfigSpec(Name="conf"), CreatedAt=CREATED),
    ):
        message = cluster_message(Event(Action.CREATE, obj), NOW)
        assert message is not None
        assert message["Type"] == obj.KIND and message["scope"] == "swarm"
        assert message["Actor"] == {"ID": obj.ID, "Attributes": {"name": obj.Spec.Name}}


def test_tasks_and_commits_make_no_event():
    assert cluster_message(Event(Action.CREATE, Task(ID="t")), NOW) is None
    assert cluster_message(Event(None, None), NOW) is None
