"""Objects as the Docker API shows them: Docker's keys only, key by key (a node's as
``docker node inspect`` shows one from Docker 20.10 and moby's swagger NodeDescription lists
them), while shoal keeps its own in the store."""

from shoal.agent.describe import describe_node
from shoal.api.objects import ManagerStatus, Node, NodeStatus, PortStatus, Task, TaskStatus
from shoal.api.specs import EndpointPortConfig, EndpointSpec
from shoal.api.types import NodeRole, PublishMode

# A manager's keys on Docker 20.10 (docker node inspect self, on a single-node swarm).
DOCKER_NODE_KEYS = ["ID", "Version", "CreatedAt", "UpdatedAt", "Spec", "Description", "Status"]
DOCKER_DESCRIPTION_KEYS = ["Hostname", "Platform", "Resources", "Engine"]


def test_a_node_shows_docker_keys_only():
    description = describe_node("n1", {}, ["process", "container"], {"ServerVersion": "20.10.24"})
    description.DataPathPort = 4790
    node = Node(
        ID="abc",
        Description=description,
        Status=NodeStatus(Addr="10.0.0.1"),
        ManagerStatus=ManagerStatus(Leader=True, Addr="10.0.0.1:2377"),
        Role=NodeRole.MANAGER,
    )
    shown = node.to_api()
    assert list(shown) == [*DOCKER_NODE_KEYS, "ManagerStatus"]
    assert list(shown["Description"]) == DOCKER_DESCRIPTION_KEYS
    # the runtimes it offers show as its engine's plugins; the store keeps both for shoal
    plugins = shown["Description"]["Engine"]["Plugins"]
    assert {"Type": "Runtime", "Name": "process"} in plugins
    assert node.Description is not None and node.Description.Runtimes == ["process", "container"]
    assert node.Description.DataPathPort == 4790


def test_a_task_in_slot_0_leaves_its_slot_out_as_docker_does():
    assert "Slot" not in Task(ID="t", Slot=0).to_api()
    assert "Slot" not in Task(ID="t").to_api()
    assert Task(ID="t", Slot=2).to_api()["Slot"] == 2


def test_a_task_shows_host_mode_ports_in_port_status_and_mesh_ports_apart():
    """Docker's service ps PORTS (PortStatus) lists host-mode publications only: an ingress
    port shows nothing there (Docker 20.10, -p 8080:80). The host port a task was given for
    the routing mesh stays visible, under shoal's own key."""
    endpoint = EndpointSpec(
        Ports=[
            EndpointPortConfig(TargetPort=80, PublishedPort=8080),  # ingress
            EndpointPortConfig(TargetPort=81, PublishedPort=8081, PublishMode=PublishMode.HOST),
        ]
    )
    given = [
        EndpointPortConfig(TargetPort=80, PublishedPort=40001, PublishMode=PublishMode.HOST),
        EndpointPortConfig(TargetPort=81, PublishedPort=8081, PublishMode=PublishMode.HOST),
    ]
    task = Task(ID="t", Endpoint=endpoint, Status=TaskStatus(PortStatus=PortStatus(Ports=given)))
    shown = task.to_api()
    assert shown["Status"]["PortStatus"] == {
        "Ports": [
            {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 8081, "PublishMode": "host"}
        ]
    }
    assert shown["Shoal"] == {
        "RoutingMeshPorts": [
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 40001, "PublishMode": "host"}
        ]
    }
    assert task.Status.PortStatus.Ports == given  # the store (and the mesh) keep both

    ingress_only = Task(
        ID="t",
        Endpoint=EndpointSpec(Ports=[EndpointPortConfig(TargetPort=80, PublishedPort=8080)]),
        Status=TaskStatus(PortStatus=PortStatus(Ports=given[:1])),
    ).to_api()
    assert ingress_only["Status"]["PortStatus"] == {}  # as Docker shows it
    assert "Shoal" not in Task(ID="t").to_api()
