"""The network map the managers send each node: only the networks it has tasks on; the
other nodes' tasks as peers (with each node's VXLAN port); every service with its VIP (none
under dnsrr), aliases and running tasks; and it survives the trip as JSON."""

from shoal.api.ids import new_id
from shoal.api.objects import (
    Cluster,
    EndpointVirtualIP,
    Network,
    NetworkAttachment,
    Node,
    NodeDescription,
    NodeStatus,
    Service,
    Task,
)
from shoal.api.specs import (
    Driver,
    EndpointSpec,
    IPAMConfig,
    IPAMOptions,
    NetworkAttachmentConfig,
    NetworkSpec,
    ServiceSpec,
    TaskSpec,
)
from shoal.api.types import EndpointMode, TaskState
from shoal.manager.dispatcher.netmap import network_map
from shoal.network.netmap import NetworkMap, PeerTask, ServiceTask
from shoal.store import MemoryStore


def _network(name: str, subnet: str, vni: int) -> Network:
    return Network(
        ID=new_id(),
        Spec=NetworkSpec(Name=name),
        DriverState=Driver(
            Name="overlay", Options={"com.docker.network.driver.overlay.vxlanid_list": str(vni)}
        ),
        IPAMOptions=IPAMOptions(Configs=[IPAMConfig(Subnet=subnet, Gateway=subnet[:-4] + "1")]),
    )


def _task(
    svc: Service, slot: int, node: str, net: Network, addr: str, state=TaskState.RUNNING
) -> Task:
    return Task(
        ID=new_id(),
        ServiceID=svc.ID,
        Slot=slot,
        NodeID=node,
        ServiceAnnotations={"Name": svc.Spec.Name},  # type: ignore[arg-type]
        Spec=svc.Spec.TaskTemplate,
        Status={"State": state},  # type: ignore[arg-type]
        DesiredState=TaskState.RUNNING,
        NetworksAttachments=[NetworkAttachment(Network=net, Addresses=[addr])],
    )


async def test_a_nodes_map_has_its_networks_peers_and_services():
    store = MemoryStore()
    app = _network("app", "10.0.1.0/24", 4097)
    other = _network("other", "10.0.2.0/24", 4098)
    a = Node(ID="a" * 25, Status=NodeStatus(Addr="198.18.0.1"), Description=NodeDescription())
    b = Node(
        ID="b" * 25,
        Status=NodeStatus(Addr="198.18.0.2"),
        Description=NodeDescription(DataPathPort=4790),
    )
    on_app = TaskSpec(Networks=[NetworkAttachmentConfig(Target=app.ID, Aliases=["www"])])
    web = Service(
        ID=new_id(),
        Spec=ServiceSpec(Name="web", TaskTemplate=on_app),
    )
    web.Endpoint.VirtualIPs = [EndpointVirtualIP(NetworkID=app.ID, Addr="10.0.1.2/24")]
    db = Service(
        ID=new_id(),
        Spec=ServiceSpec(
            Name="db",
            TaskTemplate=TaskSpec(Networks=[NetworkAttachmentConfig(Target=app.ID)]),
            EndpointSpec=EndpointSpec(Mode=EndpointMode.DNSRR),
        ),
    )
    t1 = _task(web, 1, a.ID, app, "10.0.1.3/24")
    t2 = _task(web, 2, b.ID, app, "10.0.1.4/24")
    t3 = _task(db, 1, b.ID, app, "10.0.1.5/24", state=TaskState.STARTING)
    elsewhere = _task(web, 3, b.ID, other, "10.0.2.3/24")

    def fn(tx):  # type: ignore[no-untyped-def]
        tx.create(Cluster(ID=new_id(), DataPathPort=4789))
        for obj in (app, other, a, b, web, db, t1, t2, t3, elsewhere):
            tx.create(obj)

    await store.update(fn)
    netmap = network_map(store.view(), a.ID)
    assert netmap.data_path_port == 4789  # the cluster's: node a has none of its own
    (mapped,) = netmap.networks  # not "other": node a has no task there
    assert (mapped.name, mapped.subnet, mapped.gateway, mapped.vni) == (
        "app",
        "10.0.1.0/24",
        "10.0.1.1",
        4097,
    )
    assert mapped.peers == (
        PeerTask("10.0.1.4", "198.18.0.2", 4790),
        PeerTask("10.0.1.5", "198.18.0.2", 4790),  # starting: reachable before it runs
    )
    services = {s.name: s for s in mapped.services}
    assert services["web"].vip == "10.0.1.2" and services["web"].aliases == ("www",)
    assert set(services["web"].tasks) == {
        ServiceTask(f"web.1.{t1.ID}", "10.0.1.3"),
        ServiceTask(f"web.2.{t2.ID}", "10.0.1.4"),
    }
    assert services["db"].mode == "dnsrr" and services["db"].vip is None
    assert services["db"].tasks == ()  # not running yet: not in DNS
    assert network_map(store.view(), b.ID).data_path_port == 4790
    assert NetworkMap.from_json(netmap.to_json()) == netmap


async def test_a_node_without_tasks_on_networks_gets_an_empty_map():
    store = MemoryStore()
    await store.update(lambda tx: tx.create(Cluster(ID=new_id(), DataPathPort=7789)))
    assert network_map(store.view(), "nobody") == NetworkMap(data_path_port=7789)
