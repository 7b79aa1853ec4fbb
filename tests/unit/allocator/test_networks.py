"""Network allocation as the managers do it, in the store's transactions: subnets, VXLAN IDs,
VIPs and task addresses; never two holders of one address, and free again when the holder is
gone or dead."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.api.ids import new_id
from shoal.api.objects import Cluster, Network, NetworkAttachment, Service, Task
from shoal.api.specs import NetworkAttachmentConfig, NetworkSpec, ServiceSpec, TaskSpec
from shoal.api.types import TaskState
from shoal.errors import FailedPrecondition, InvalidArgument
from shoal.manager.allocator import allocate_endpoint
from shoal.manager.allocator.addresses import AddressSpace, next_subnet, next_vni
from shoal.manager.allocator.networks import allocate_network, attach_task, taken_addresses
from shoal.manager.controlapi.control import ControlAPI
from shoal.store import MemoryStore


def net(*cidrs: str) -> list[ipaddress.IPv4Network]:
    return [ipaddress.IPv4Network(c) for c in cidrs]


def test_subnets_come_serially_from_the_pool_and_skip_what_overlaps():
    pool = net("10.0.0.0/8")
    assert next_subnet(pool, 24, []) == ipaddress.IPv4Network("10.0.0.0/24")
    assert next_subnet(pool, 24, net("10.0.0.0/24")) == ipaddress.IPv4Network("10.0.1.0/24")
    # After the highest taken, not into a hole left below it (as Swarm's serial allocation).
    assert next_subnet(pool, 24, net("10.0.0.0/24", "10.0.2.0/24")) == ipaddress.IPv4Network(
        "10.0.3.0/24"
    )
    # A user's subnet that covers several of the pool's is stepped over.
    assert next_subnet(pool, 24, net("10.0.0.0/23")) == ipaddress.IPv4Network("10.0.2.0/24")
    assert next_subnet(net("10.20.0.0/16"), 26, net("10.20.0.0/26")) == ipaddress.IPv4Network(
        "10.20.0.64/26"
    )


def test_a_full_pool_wraps_round_and_then_refuses():
    pool = net("192.168.0.0/30")
    assert next_subnet(pool, 31, net("192.168.0.2/31")) == ipaddress.IPv4Network("192.168.0.0/31")
    with pytest.raises(InvalidArgument):
        next_subnet(pool, 31, net("192.168.0.0/31", "192.168.0.2/31"))


def test_vxlan_ids_count_up_from_4096():
    assert next_vni([]) == 4096
    assert next_vni([4096, 4097]) == 4098
    assert next_vni([4096, 5000]) == 5001


def test_addresses_skip_gateway_network_and_broadcast_and_wrap_round():
    space = AddressSpace.of("10.0.1.0/29", None, None)  # .1 gateway, .2-.6 hosts
    taken = {space.gateway}
    got = []
    for _ in range(5):
        addr = space.next_free(taken)
        taken.add(addr)
        got.append(str(addr))
    assert got == ["10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5", "10.0.1.6"]
    with pytest.raises(InvalidArgument, match="could not find an available IP"):
        space.next_free(taken)
    taken.discard(ipaddress.IPv4Address("10.0.1.3"))
    assert str(space.next_free(taken)) == "10.0.1.3"


def test_an_ip_range_limits_where_addresses_come_from():
    space = AddressSpace.of("10.9.0.0/24", "10.9.0.254", "10.9.0.128/25")
    assert str(space.next_free({space.gateway})) == "10.9.0.129"


async def _store_with_network(**spec: object) -> tuple[MemoryStore, Network]:
    store = MemoryStore()
    network = Network(ID=new_id(), Spec=NetworkSpec(Name="app", **spec))  # type: ignore[arg-type]

    def fn(tx):  # type: ignore[no-untyped-def]
        tx.create(Cluster(ID=new_id()))
        allocate_network(tx, network)
        tx.create(network)

    await store.update(fn)
    return store, network


def _task(network: Network, state: TaskState = TaskState.NEW, desired=TaskState.RUNNING) -> Task:
    return Task(
        ID=new_id(),
        Spec=TaskSpec(Networks=[NetworkAttachmentConfig(Target=network.ID)]),
        Status={"State": state},  # type: ignore[arg-type]
        DesiredState=desired,
    )


async def test_a_network_gets_the_first_free_subnet_gateway_and_vni():
    _, network = await _store_with_network()
    assert network.ipam_config is not None
    assert (network.ipam_config.Subnet, network.ipam_config.Gateway) == ("10.0.0.0/24", "10.0.0.1")
    assert network.vxlan_id == 4096


async def test_an_asked_subnet_that_overlaps_is_refused_and_nothing_is_stored():
    store, _ = await _store_with_network()
    other = Network(
        ID=new_id(),
        Spec=NetworkSpec(Name="b", IPAMOptions={"Configs": [{"Subnet": "10.0.0.0/16"}]}),
    )  # type: ignore[arg-type]

    def fn(tx):  # type: ignore[no-untyped-def]
        allocate_network(tx, other)
        tx.create(other)

    with pytest.raises(InvalidArgument, match="Pool overlaps"):
        await store.update(fn)
    assert store.view().get(Network, other.ID) is None


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["add", "kill", "remove"]), min_size=1, max_size=40))
async def test_no_address_is_ever_held_twice(ops: list[str]):
    """Tasks come (each given an address in its own transaction), die (their address is
    free) and go: at every step the live tasks' addresses and the VIP are all different."""
    store, network = await _store_with_network(
        IPAMOptions={"Configs": [{"Subnet": "10.1.0.0/28"}]}  # 13 addresses: they run out
    )
    svc = Service(
        ID=new_id(),
        Spec=ServiceSpec(
            Name="web",
            TaskTemplate=TaskSpec(Networks=[NetworkAttachmentConfig(Target=network.ID)]),
        ),
    )

    def create_svc(tx):  # type: ignore[no-untyped-def]
        allocate_endpoint(tx, svc)
        tx.create(svc)

    await store.update(create_svc)
    live: list[str] = []
    for op in ops:
        if op == "add":
            task = _task(network)

            def add(tx, task=task):  # type: ignore[no-untyped-def]
                if not attach_task(tx, task):
                    tx.create(task)

            await store.update(add)
            if store.view().get(Task, task.ID) is not None:
                live.append(task.ID)
        elif live:
            tid = live.pop(0)

            def end(tx, tid=tid, op=op):  # type: ignore[no-untyped-def]
                if op == "remove":
                    tx.delete(Task, tid)
                else:
                    t = tx.get(Task, tid).clone()
                    t.DesiredState = TaskState.SHUTDOWN
                    t.Status.State = TaskState.FAILED
                    tx.update(t)

            await store.update(end)
        view = store.view()
        space = AddressSpace.of("10.1.0.0/28", None, None)
        held = [
            a
            for tid in live
            for att in view.get(Task, tid).NetworksAttachments or ()
            for a in att.Addresses
        ]
        vips = [v.Addr for v in view.get(Service, svc.ID).Endpoint.VirtualIPs or ()]
        assert len(held + vips) == len(set(held + vips)), (held, vips)
        assert taken_addresses(view, network, space) >= {
            ipaddress.IPv4Interface(a).ip for a in held + vips
        }


async def test_the_control_api_gives_each_service_a_vip_on_each_of_its_networks():
    store = MemoryStore()
    control = ControlAPI(store, store.clock, allocate_endpoint=allocate_endpoint)
    await store.update(lambda tx: tx.create(Cluster(ID=new_id())))
    app = await control.create_network({"Name": "app", "DriverConfiguration": {"Name": "overlay"}})
    back = await control.create_network(
        {"Name": "back", "DriverConfiguration": {"Name": "overlay"}}
    )
    spec = {
        "Name": "web",
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox"},
            "Networks": [{"Target": "app"}, {"Target": back.ID, "Aliases": ["www"]}],
        },
    }
    svc = await control.create_service(spec)
    assert [n.Target for n in svc.Spec.TaskTemplate.Networks or ()] == [app.ID, back.ID]
    assert [(v.NetworkID, v.Addr) for v in svc.Endpoint.VirtualIPs or ()] == [
        (app.ID, "10.0.0.2/24"),
        (back.ID, "10.0.1.2/24"),
    ]
    # dnsrr: no VIPs; back to vip: a VIP again.
    spec["EndpointSpec"] = {"Mode": "dnsrr"}
    svc = await control.update_service("web", svc.Version.Index, spec)
    assert svc.Endpoint.VirtualIPs is None
    with pytest.raises(FailedPrecondition, match=f"network {app.ID} is in use by service"):
        await control.remove_network("app")


@pytest.mark.parametrize(
    ("desired", "state", "in_use"),
    [
        (TaskState.RUNNING, TaskState.RUNNING, True),
        (TaskState.RUNNING, TaskState.PENDING, True),
        # being shut down (its service removed): no longer holds the network, as in swarmkit
        (TaskState.REMOVE, TaskState.RUNNING, False),
        (TaskState.RUNNING, TaskState.FAILED, False),
        (TaskState.SHUTDOWN, TaskState.SHUTDOWN, False),
    ],
)
async def test_a_network_is_in_use_by_a_task_meant_to_run_and_not_stopped(desired, state, in_use):
    store = MemoryStore()
    control = ControlAPI(store, store.clock, allocate_endpoint=allocate_endpoint)
    await store.update(lambda tx: tx.create(Cluster(ID=new_id())))
    app = await control.create_network({"Name": "app", "DriverConfiguration": {"Name": "overlay"}})
    task = Task(
        ID=new_id(),
        ServiceID="gone",
        DesiredState=desired,
        NetworksAttachments=[NetworkAttachment(Network=app, Addresses=["10.0.0.3/24"])],
    )
    task.Status.State = state
    await store.update(lambda tx: tx.create(task))
    if in_use:
        with pytest.raises(FailedPrecondition, match=f"network {app.ID} is in use by task"):
            await control.remove_network("app")
    else:
        await control.remove_network("app")
