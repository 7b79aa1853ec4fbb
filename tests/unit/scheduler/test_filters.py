import pytest

from shoal.api.types import NodeAvailability, NodeRole, NodeState, TaskState
from shoal.manager.scheduler import (
    ConstraintFilter,
    HostPortFilter,
    MaxReplicasFilter,
    NodeInfo,
    PlatformFilter,
    PluginFilter,
    ReadyFilter,
    ResourceFilter,
    RuntimeFilter,
)
from tests.unit.scheduler.factories import GB, make_node, make_task


def assigned(task, node_id):
    return task.model_copy(
        update={
            "NodeID": node_id,
            "Status": task.Status.model_copy(update={"State": TaskState.RUNNING}),
        }
    )


# --- ready -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "availability", "ok"),
    [
        (NodeState.READY, NodeAvailability.ACTIVE, True),
        (NodeState.READY, NodeAvailability.DRAIN, False),
        (NodeState.READY, NodeAvailability.PAUSE, False),
        (NodeState.DOWN, NodeAvailability.ACTIVE, False),
        (NodeState.UNKNOWN, NodeAvailability.ACTIVE, False),
        (NodeState.DISCONNECTED, NodeAvailability.ACTIVE, False),
    ],
)
def test_ready_filter(state, availability, ok):
    f = ReadyFilter()
    assert f.set_task(make_task())
    assert f.check(NodeInfo(make_node("n", state=state, availability=availability))) is ok


def test_ready_filter_explains():
    assert ReadyFilter().explain(1) == "1 node not available for new tasks"
    assert ReadyFilter().explain(3) == "3 nodes not available for new tasks"


# --- runtime ---------------------------------------------------------------------------------


def test_runtime_filter_needs_the_runtime_offered():
    f = RuntimeFilter()
    assert f.set_task(make_task(runtime="process"))
    assert f.check(NodeInfo(make_node("n", runtimes=["process"])))
    assert not f.check(NodeInfo(make_node("n", runtimes=["container"])))
    assert not f.check(NodeInfo(make_node("n", runtimes=[])))


def test_runtime_filter_defaults_to_container():
    f = RuntimeFilter()
    assert f.set_task(make_task(runtime=None))
    assert not f.check(NodeInfo(make_node("n", runtimes=["process"])))
    assert f.check(NodeInfo(make_node("n", runtimes=["process", "container"])))
    assert f.explain(1) == "runtime container not offered on 1 node"
    assert f.explain(2) == "runtime container not offered on 2 nodes"


def test_runtime_filter_node_without_description():
    f = RuntimeFilter()
    f.set_task(make_task())
    node = make_node("n")
    node.Description = None
    assert not f.check(NodeInfo(node))


# --- resources -------------------------------------------------------------------------------


def test_resource_filter_off_without_reservations():
    assert not ResourceFilter().set_task(make_task())


def test_resource_filter_counts_what_is_left():
    f = ResourceFilter()
    assert f.set_task(make_task(memory=3 * GB))
    info = NodeInfo(make_node("n", memory=8 * GB))
    assert f.check(info)
    info.add_task(assigned(make_task(memory=3 * GB), "n"))
    assert f.check(info)  # 5 GB left
    other = assigned(make_task(memory=3 * GB), "n")
    info.add_task(other)
    assert not f.check(info)  # 2 GB left
    info.remove_task(other.ID)
    assert f.check(info)


def test_resource_filter_cpu():
    f = ResourceFilter()
    assert f.set_task(make_task(cpus=1.5))
    assert f.check(NodeInfo(make_node("n", cpus=2)))
    assert not f.check(NodeInfo(make_node("n", cpus=1)))
    assert f.explain(1) == "insufficient resources on 1 node"
    assert f.explain(2) == "insufficient resources on 2 nodes"


# --- constraints -----------------------------------------------------------------------------


def test_constraint_filter_off_without_constraints():
    assert not ConstraintFilter().set_task(make_task())


def test_constraint_filter_matches_labels_and_role():
    f = ConstraintFilter()
    assert f.set_task(make_task(constraints=["node.labels.zone==east", "node.role!=manager"]))
    assert f.check(NodeInfo(make_node("n", labels={"zone": "east"})))
    assert not f.check(NodeInfo(make_node("n", labels={"zone": "west"})))
    assert not f.check(NodeInfo(make_node("n", labels={"zone": "east"}, role=NodeRole.MANAGER)))
    assert f.explain(3) == "scheduling constraints not satisfied on 3 nodes"
    assert f.explain(1) == "scheduling constraints not satisfied on 1 node"


def test_constraint_filter_ignores_unparsable_constraints():
    assert not ConstraintFilter().set_task(make_task(constraints=["nonsense"]))


# --- platform --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "node_arch", "node_os", "ok"),
    [
        ([("amd64", "linux")], "x86_64", "linux", True),
        ([("x86_64", "linux")], "amd64", "linux", True),
        ([("arm64", "linux")], "aarch64", "linux", True),
        ([("arm64", "linux")], "x86_64", "linux", False),
        ([("amd64", "windows")], "x86_64", "linux", False),
        ([("", "linux")], "s390x", "linux", True),
        ([("amd64", "")], "x86_64", "windows", True),
        ([("arm64", "linux"), ("amd64", "linux")], "x86_64", "linux", True),
    ],
)
def test_platform_filter(wanted, node_arch, node_os, ok):
    f = PlatformFilter()
    assert f.set_task(make_task(platforms=wanted))
    assert f.check(NodeInfo(make_node("n", arch=node_arch, os=node_os))) is ok


def test_platform_filter_off_without_platforms():
    assert not PlatformFilter().set_task(make_task())
    assert PlatformFilter().explain(2) == "unsupported platform on 2 nodes"


# --- host ports ------------------------------------------------------------------------------


def test_host_port_filter_off_without_host_ports():
    assert not HostPortFilter().set_task(make_task())
    assert not HostPortFilter().set_task(make_task(ingress_ports=[8080]))


def test_host_port_filter_same_port_same_protocol_conflicts():
    f = HostPortFilter()
    assert f.set_task(make_task(host_ports=[8080]))
    info = NodeInfo(make_node("n"))
    assert f.check(info)
    running = assigned(make_task("other", host_ports=[8080]), "n")
    info.add_task(running)
    assert not f.check(info)
    info.remove_task(running.ID)
    assert f.check(info)
    assert f.explain(2) == "host-mode port already in use on 2 nodes"


def test_host_port_filter_protocols_are_separate():
    f = HostPortFilter()
    assert f.set_task(make_task(host_ports=[(53, "udp")]))
    info = NodeInfo(make_node("n"))
    info.add_task(assigned(make_task("dns", host_ports=[(53, "tcp")]), "n"))
    assert f.check(info)
    info.add_task(assigned(make_task("dns", host_ports=[(53, "udp")]), "n"))
    assert not f.check(info)


# --- max replicas ----------------------------------------------------------------------------


def test_max_replicas_filter():
    f = MaxReplicasFilter()
    assert not f.set_task(make_task())
    assert f.set_task(make_task("web", max_replicas=2))
    info = NodeInfo(make_node("n"))
    info.add_task(assigned(make_task("web", 1), "n"))
    info.add_task(assigned(make_task("other", 1), "n"))
    assert f.check(info)
    info.add_task(assigned(make_task("web", 2), "n"))
    assert not f.check(info)
    assert f.explain(3) == "max replicas per node limit exceed"


def test_max_replicas_ignores_tasks_being_shut_down():
    f = MaxReplicasFilter()
    f.set_task(make_task("web", max_replicas=1))
    info = NodeInfo(make_node("n"))
    old = assigned(make_task("web", 1), "n")
    info.add_task(old)
    assert not f.check(info)
    info.add_task(old.model_copy(update={"DesiredState": TaskState.SHUTDOWN}))
    assert f.check(info)


# --- plugins (network drivers) ---------------------------------------------------------------


def _on_overlay(task):
    from shoal.api.objects import Network, NetworkAttachment
    from shoal.api.specs import Driver

    net = Network(ID="net1", DriverState=Driver(Name="overlay"))
    return task.model_copy(
        update={"NetworksAttachments": [NetworkAttachment(Network=net, Addresses=["10.0.1.3/24"])]}
    )


def test_plugin_filter_needs_the_networks_driver_on_the_node():
    from shoal.api.objects import EnginePlugin

    f = PluginFilter()
    assert not f.set_task(make_task())  # no networks: nothing to check
    assert f.set_task(_on_overlay(make_task()))
    node = make_node("n")
    assert not f.check(NodeInfo(node))
    assert node.Description is not None
    node.Description.Engine.Plugins = [EnginePlugin(Type="Network", Name="overlay")]
    assert f.check(NodeInfo(node))
    assert f.explain(1) == "missing plugin on 1 node"
    assert f.explain(2) == "missing plugin on 2 nodes"
