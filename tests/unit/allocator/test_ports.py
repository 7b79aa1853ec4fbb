import pytest

from shoal.api.ids import new_id
from shoal.api.objects import Service
from shoal.api.specs import EndpointPortConfig, EndpointSpec, ServiceSpec
from shoal.api.types import PortProtocol, PublishMode
from shoal.clock import FakeClock
from shoal.errors import InvalidArgument
from shoal.manager.allocator import IngressPorts, allocate_endpoint
from shoal.store import MemoryStore


def port(target=80, published=None, mode="ingress", protocol="tcp", name=None):
    return EndpointPortConfig(
        Name=name,
        TargetPort=target,
        PublishedPort=published,
        PublishMode=PublishMode(mode),
        Protocol=PortProtocol(protocol),
    )


def service(name, *ports, service_id=None):
    return Service(
        ID=service_id or new_id(),
        Spec=ServiceSpec(
            Name=name, EndpointSpec=EndpointSpec(Ports=list(ports)) if ports else None
        ),
    )


def published(ports):
    return [(p.Protocol.value, p.TargetPort, p.PublishedPort, p.PublishMode.value) for p in ports]


# --- the pure bookkeeping --------------------------------------------------------------------


def test_fixed_port_is_kept():
    ports = IngressPorts()
    got = ports.allocate(service("web", port(80, 8080)))
    assert published(got) == [("tcp", 80, 8080, "ingress")]


def test_ingress_port_held_by_another_service_is_refused():
    web = service("web", port(80, 8080))
    ports = IngressPorts.from_services([web])
    with pytest.raises(InvalidArgument) as err:
        ports.allocate(service("pubdup", port(80, 8080)))
    assert str(err.value) == (
        "rpc error: code = InvalidArgument desc = port '8080' is already in use by service "
        f"'web' ({web.ID}) as an ingress port"
    )


def test_protocols_are_separate():
    ports = IngressPorts.from_services([service("dns", port(53, 53, protocol="tcp"))])
    got = ports.allocate(service("dns-udp", port(53, 53, protocol="udp")))
    assert published(got) == [("udp", 53, 53, "ingress")]


def test_host_port_against_ingress_port():
    web = service("web", port(80, 8080))
    ports = IngressPorts.from_services([web])
    with pytest.raises(InvalidArgument, match=r"as an ingress port$"):
        ports.allocate(service("h", port(80, 8080, mode="host")))


def test_ingress_port_against_host_port():
    h = service("h", port(80, 8080, mode="host"))
    ports = IngressPorts.from_services([h])
    with pytest.raises(InvalidArgument) as err:
        ports.allocate(service("web", port(80, 8080)))
    assert str(err.value).endswith(
        f"port '8080' is already in use by service 'h' ({h.ID}) as a host-published port"
    )


def test_host_ports_may_be_shared_between_services():
    ports = IngressPorts.from_services([service("a", port(80, 8080, mode="host"))])
    got = ports.allocate(service("b", port(80, 8080, mode="host")))
    assert published(got) == [("tcp", 80, 8080, "host")]


def test_host_port_without_number_is_not_allocated():
    got = IngressPorts().allocate(service("h", port(80, None, mode="host")))
    assert published(got) == [("tcp", 80, None, "host")]


def test_dynamic_ports_come_from_swarms_range_in_order():
    ports = IngressPorts()
    a = ports.allocate(service("a", port(80)))
    b = ports.allocate(service("b", port(80), port(443)))
    assert [p.PublishedPort for p in a] == [30000]
    assert [p.PublishedPort for p in b] == [30001, 30002]


def test_dynamic_port_skips_ports_asked_for():
    ports = IngressPorts()
    got = ports.allocate(service("a", port(80), port(81, 30000)))
    assert published(got) == [("tcp", 80, 30001, "ingress"), ("tcp", 81, 30000, "ingress")]


def test_dynamic_port_skips_host_ports_of_others():
    ports = IngressPorts.from_services([service("h", port(80, 30000, mode="host"))])
    assert ports.allocate(service("a", port(80)))[0].PublishedPort == 30001


def test_freed_dynamic_port_is_not_reused_at_once():
    a, b = service("a", port(80)), service("b", port(80))
    ports = IngressPorts()
    a.Endpoint.Ports = ports.allocate(a)
    b.Endpoint.Ports = ports.allocate(b)
    ports.release(a.ID)
    assert ports.holder(PortProtocol.TCP, 30000) is None
    assert ports.allocate(service("c", port(80)))[0].PublishedPort == 30002


def test_dynamic_range_wraps_round():
    top = service("top", port(80, 32767))
    ports = IngressPorts.from_services([top])
    assert ports.allocate(service("a", port(80)))[0].PublishedPort == 30000


def test_dynamic_range_exhausted():
    holders = [service(f"s{p}", port(80, p)) for p in range(30000, 32768)]
    ports = IngressPorts.from_services(holders)
    with pytest.raises(InvalidArgument, match="no free port"):
        ports.allocate(service("late", port(80)))
    # another protocol still has room
    assert ports.allocate(service("u", port(80, protocol="udp")))[0].PublishedPort == 30000


def test_dynamic_port_is_sticky_across_updates():
    x = service("x", port(80))
    x.Endpoint.Ports = [port(80, 30000)]
    svc = service("web", port(80), port(81))
    svc.Endpoint.Ports = IngressPorts.from_services([x]).allocate(svc)
    assert [p.PublishedPort for p in svc.Endpoint.Ports] == [30001, 30002]
    # the same spec again (an update of something else): same ports, though 30000 is free
    # and a higher one is taken now
    again = IngressPorts.from_services([service("y", port(80, 30003))])
    assert [p.PublishedPort for p in again.allocate(svc)] == [30001, 30002]


def test_from_services_reads_allocated_ports():
    svc = service("web", port(80))
    svc.Endpoint.Ports = [port(80, 30000)]
    ports = IngressPorts.from_services([svc])
    holder = ports.holder(PortProtocol.TCP, 30000)
    assert holder is not None and holder.service_name == "web"
    with pytest.raises(InvalidArgument):
        ports.allocate(service("other", port(80, 30000)))


# --- allocate_endpoint in a transaction ------------------------------------------------------


async def create(store, svc):
    def fn(tx):
        allocate_endpoint(tx, svc)
        tx.create(svc)

    await store.update(fn)
    return store.view().get(Service, svc.ID)


async def update(store, service_id, change):
    def fn(tx):
        svc = tx.get(Service, service_id).clone()
        change(svc)
        allocate_endpoint(tx, svc)
        tx.update(svc)

    await store.update(fn)
    return store.view().get(Service, service_id)


async def test_endpoint_shows_spec_and_ports(store):
    web = await create(store, service("web", port(80, 8080), port(443)))
    assert web.Endpoint.Spec == web.Spec.EndpointSpec
    assert web.Endpoint.Spec is not web.Spec.EndpointSpec
    assert published(web.Endpoint.Ports) == [
        ("tcp", 80, 8080, "ingress"),
        ("tcp", 443, 30000, "ingress"),
    ]
    # the spec keeps what the user asked for
    assert web.Spec.EndpointSpec.Ports[1].PublishedPort is None
    assert web.to_api()["Endpoint"]["Ports"][1] == {
        "Protocol": "tcp",
        "TargetPort": 443,
        "PublishedPort": 30000,
        "PublishMode": "ingress",
    }


async def test_service_without_ports(store):
    svc = await create(store, service("plain"))
    assert svc.Endpoint.Ports is None


async def test_conflict_leaves_nothing_behind(store):
    await create(store, service("web", port(80, 8080)))
    with pytest.raises(InvalidArgument):
        await create(store, service("dup", port(80, 8080)))
    assert store.view().service_by_name("dup") is None


async def test_ports_freed_when_service_deleted(store):
    web = await create(store, service("web", port(80, 8080), port(81)))
    await store.update(lambda tx: tx.delete(Service, web.ID))
    again = await create(store, service("again", port(80, 8080)))
    assert again.Endpoint.Ports[0].PublishedPort == 8080


async def test_ports_freed_when_spec_drops_them(store):
    web = await create(store, service("web", port(80, 8080)))

    def drop(svc):
        svc.Spec.EndpointSpec = None

    web = await update(store, web.ID, drop)
    assert web.Endpoint.Ports is None
    other = await create(store, service("other", port(80, 8080)))
    assert other.Endpoint.Ports[0].PublishedPort == 8080


async def test_update_keeps_own_ports_and_dynamic_allocation(store):
    web = await create(store, service("web", port(80, 8080), port(81)))
    dynamic = web.Endpoint.Ports[1].PublishedPort

    def relabel(svc):
        svc.Spec.Labels["x"] = "y"

    web = await update(store, web.ID, relabel)
    assert [p.PublishedPort for p in web.Endpoint.Ports] == [8080, dynamic]


async def test_update_to_a_taken_port_is_refused(store):
    pub = await create(store, service("pub", port(80, 8080)))
    env = await create(store, service("envlab"))

    def publish(svc):
        svc.Spec.EndpointSpec = EndpointSpec(Ports=[port(80, 8080)])

    with pytest.raises(InvalidArgument) as err:
        await update(store, env.ID, publish)
    assert str(err.value) == (
        "rpc error: code = InvalidArgument desc = port '8080' is already in use by service "
        f"'pub' ({pub.ID}) as an ingress port"
    )


async def test_rebuilt_from_the_store_after_a_restart(store):
    web = await create(store, service("web", port(80)))
    snapshot = store.snapshot()
    fresh = MemoryStore(clock=FakeClock())
    fresh.restore(snapshot)
    with pytest.raises(InvalidArgument, match=f"'web' \\({web.ID}\\)"):
        await create(fresh, service("other", port(80, 30000)))
    assert (await create(fresh, service("next", port(80)))).Endpoint.Ports[0].PublishedPort == (
        30001
    )
    fresh.close()


async def test_through_the_control_api(store):
    from shoal.manager.controlapi.control import ControlAPI

    control = ControlAPI(store, store.clock, allocate_endpoint=allocate_endpoint)
    await control.create_network({"Name": "ingress", "Ingress": True})  # the routing mesh's
    ports = {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}, {"TargetPort": 81}]}
    spec = {
        "Name": "pub",
        "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
        "EndpointSpec": ports,
    }
    pub = await control.create_service(spec)
    assert [p.PublishedPort for p in pub.Endpoint.Ports] == [8080, 30000]
    with pytest.raises(InvalidArgument, match="already in use by service 'pub'"):
        await control.create_service({**spec, "Name": "pubdup"})
    stored = control.get_service("pub")
    spec["EndpointSpec"] = {"Ports": [{"TargetPort": 81}]}
    updated = await control.update_service("pub", stored.Version.Index, spec)
    assert [p.PublishedPort for p in updated.Endpoint.Ports] == [30000]
    await control.create_service({**spec, "Name": "pubdup", "EndpointSpec": ports})
