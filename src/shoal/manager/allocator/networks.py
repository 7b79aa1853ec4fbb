"""What the managers allocate for overlay networks, inside the transaction that needs it: a
network's subnet, gateway and VXLAN ID when it is created, a service's virtual IP on each of
its networks when it is created or updated, and a task's address on each of its networks
before it is scheduled.

Everything is read from the same transaction (what is taken is what the store holds), so an
address is never handed out twice, a failed transaction leaves nothing behind, and a new
leader carries on from the store alone. An address is free again once the task holding it is
dead (its desired and actual states both past running, as in Swarm) or gone, and a VIP once
its service leaves the network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from shoal.api.objects import (
    DEFAULT_ADDR_POOL,
    VXLAN_ID_OPTION,
    EndpointVirtualIP,
    Network,
    NetworkAttachment,
    Service,
    Task,
)
from shoal.api.specs import Driver, EndpointSpec, IPAMConfig, IPAMOptions
from shoal.api.types import EndpointMode, TaskState
from shoal.errors import InvalidArgument
from shoal.manager.allocator.addresses import (
    VNI_LAST,
    AddressSpace,
    IPv4Addr,
    IPv4Net,
    address_of,
    next_subnet,
    next_vni,
    parse_subnet,
)
from shoal.store import ReadTx

OVERLAY = "overlay"
VXLAN_OPTION = VXLAN_ID_OPTION
# libnetwork's words for a subnet that overlaps another network's.
OVERLAPS = "Pool overlaps with other one on this address space"


# --- networks --------------------------------------------------------------------------------


def subnet_of(network: Network) -> IPv4Net | None:
    config = network.ipam_config
    return ipaddress.IPv4Network(config.Subnet) if config is not None and config.Subnet else None


def vni_of(network: Network) -> int | None:
    return network.vxlan_id


def address_space(network: Network) -> AddressSpace | None:
    config = network.ipam_config
    if config is None or not config.Subnet:
        return None
    return AddressSpace.of(config.Subnet, config.Gateway, config.Range)


def allocate_network(tx: ReadTx, network: Network) -> None:
    """Give a new network its subnet and gateway (IPAMOptions) and VXLAN ID (DriverState):
    those the user asked for, checked against the other networks, or the next free ones from
    the cluster's default address pool. Raises InvalidArgument in Docker's words."""
    others = [n for n in tx.list(Network) if n.ID != network.ID]
    taken = [s for s in (subnet_of(n) for n in others) if s is not None]
    asked = network.Spec.IPAMOptions.Configs if network.Spec.IPAMOptions else None
    config = asked[0] if asked else IPAMConfig()
    if config.Subnet:
        subnet = parse_subnet(config.Subnet)
        if any(subnet.overlaps(t) for t in taken):
            raise InvalidArgument(OVERLAPS)
    else:
        cluster = tx.cluster()
        pools = [
            ipaddress.IPv4Network(p)
            for p in ((cluster.DefaultAddrPool if cluster else None) or DEFAULT_ADDR_POOL)
        ]
        subnet = next_subnet(pools, cluster.SubnetSize if cluster else 24, taken)
    gateway = _within(subnet, config.Gateway, "gateway") if config.Gateway else None
    ip_range = config.Range
    if ip_range:
        sub_range = parse_subnet(ip_range)
        if not sub_range.subnet_of(subnet):
            raise InvalidArgument(f"no matching subnet for range {ip_range}")
    space = AddressSpace.of(str(subnet), gateway, ip_range)
    network.IPAMOptions = IPAMOptions(
        Driver=Driver(Name="default"),
        Configs=[
            IPAMConfig(Subnet=str(subnet), Range=ip_range or None, Gateway=str(space.gateway))
        ],
    )
    options = dict((network.Spec.DriverConfiguration or Driver()).Options or {})
    vnis = [v for v in (vni_of(n) for n in others) if v is not None]
    if options.get(VXLAN_OPTION):
        vni = _asked_vni(options[VXLAN_OPTION], vnis)
    else:
        vni = next_vni(vnis)
    options[VXLAN_OPTION] = str(vni)
    network.DriverState = Driver(Name=OVERLAY, Options=options)


def _within(subnet: IPv4Net, text: str, what: str) -> str:
    try:
        addr = ipaddress.IPv4Address(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what} address: {text}") from None
    if addr not in subnet:
        raise InvalidArgument(f"no matching subnet for {what} {text}")
    return str(addr)


def _asked_vni(text: str, taken: list[int]) -> int:
    first = text.split(",")[0].strip()
    if not first.isdigit() or not 1 <= int(first) <= VNI_LAST:
        raise InvalidArgument(f"invalid VXLAN ID {first!r}: must be 1-{VNI_LAST}")
    vni = int(first)
    if vni in taken:
        raise InvalidArgument(f"VXLAN ID {vni} is already in use by another network")
    return vni


# --- what is taken on a network --------------------------------------------------------------


def is_dead(task: Task) -> bool:
    """A task whose addresses are free again (swarmkit's taskDead)."""
    return task.DesiredState > TaskState.RUNNING and task.Status.State > TaskState.RUNNING


def taken_addresses(
    tx: ReadTx, network: Network, space: AddressSpace, except_service: str = ""
) -> set[IPv4Addr]:
    """Every address of the network held now: the services' VIPs (but ``except_service``'s,
    whose VIPs are being worked out) and the live tasks' addresses."""
    taken: set[IPv4Addr] = {space.gateway}
    for svc in tx.find(Service, "network", network.ID):
        if svc.ID == except_service:
            continue
        for vip in svc.Endpoint.VirtualIPs or ():
            if vip.NetworkID == network.ID and vip.Addr:
                taken.add(address_of(vip.Addr))
    for task in tx.find(Task, "network", network.ID):
        if is_dead(task):
            continue
        for attachment in task.NetworksAttachments or ():
            if attachment.Network.ID == network.ID:
                taken.update(address_of(a) for a in attachment.Addresses)
    return taken


# --- services: virtual IPs -------------------------------------------------------------------


def service_network_ids(service: Service) -> list[str]:
    """The networks a service's tasks join, in the order given (each once)."""
    return list(dict.fromkeys(n.Target for n in service.Spec.TaskTemplate.Networks or ()))


def allocate_vips(tx: ReadTx, service: Service) -> list[EndpointVirtualIP] | None:
    """The service's VIPs (Endpoint.VirtualIPs): under endpoint mode vip one on each of its
    networks, keeping those it had; none under dnsrr. Raises InvalidArgument when a network
    has no address left."""
    spec = service.Spec.EndpointSpec or EndpointSpec()
    if spec.Mode == EndpointMode.DNSRR:
        return None
    had = {v.NetworkID: v for v in service.Endpoint.VirtualIPs or () if v.Addr}
    vips = []
    for network_id in service_network_ids(service):
        network = tx.get(Network, network_id)
        space = address_space(network) if network is not None else None
        if network is None or space is None:
            continue
        if network_id in had:
            vips.append(had[network_id])
            continue
        addr = space.next_free(taken_addresses(tx, network, space, except_service=service.ID))
        vips.append(EndpointVirtualIP(NetworkID=network_id, Addr=space.cidr(addr)))
    return vips or None


# --- tasks: addresses ------------------------------------------------------------------------


def attach_task(tx: ReadTx, task: Task) -> str:
    """Give ``task`` an address on each network of its spec (Task.NetworksAttachments, each
    with the network as it is now). Returns "" when done, else why it cannot be done yet
    (a network is gone, or has no free address)."""
    wanted = list(dict.fromkeys(n.Target for n in task.Spec.Networks or ()))
    have = {a.Network.ID: a for a in task.NetworksAttachments or () if a.Addresses}
    attachments: list[NetworkAttachment] = []
    for network_id in wanted:
        if network_id in have:
            attachments.append(have[network_id])
            continue
        network = tx.get(Network, network_id)
        space = address_space(network) if network is not None else None
        if network is None or space is None:
            return f"network {network_id} not found"
        try:
            addr = space.next_free(taken_addresses(tx, network, space))
        except InvalidArgument as err:
            return err.message
        attachments.append(NetworkAttachment(Network=network, Addresses=[space.cidr(addr)]))
    task.NetworksAttachments = attachments or None
    return ""


def network_ids_of_task(task: Task) -> Iterable[str]:
    return (a.Network.ID for a in task.NetworksAttachments or ())
