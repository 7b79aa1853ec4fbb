"""The network map each node is sent (see shoal.network.netmap): for every overlay network
the node has tasks on, the tasks elsewhere (to reach them over VXLAN), and every service on
the network with its VIP and running tasks (the VIP's backends, the DNS answers)."""

from collections.abc import Callable

from shoal.api.objects import Cluster, Network, Node, Service, Task
from shoal.api.types import EndpointMode, TaskState
from shoal.manager.allocator.addresses import DEFAULT_DATA_PATH_PORT, address_of
from shoal.manager.allocator.networks import address_space, is_dead, vni_of
from shoal.network.netmap import (
    MappedNetwork,
    NetworkMap,
    NetworkService,
    PeerTask,
    ServiceTask,
)
from shoal.store.memory import ReadTx

NodeLookup = Callable[[str], Node | None]


def data_path_port(node: Node | None, cluster: Cluster | None) -> int:
    """The UDP port a node's VXLAN devices listen on: its own where its daemon was given one
    (nodes sharing a host need one each), else the cluster's (``--data-path-port``)."""
    own = node.Description.DataPathPort if node is not None and node.Description else None
    return own or (cluster.DataPathPort if cluster is not None else DEFAULT_DATA_PATH_PORT)


def _live(task: Task) -> bool:
    return (
        not is_dead(task)
        and task.DesiredState <= TaskState.COMPLETE  # complete: a job task meant to run
        and task.Status.State >= TaskState.ASSIGNED
    )


def network_map(view: ReadTx, node_id: str) -> NetworkMap:
    cluster = view.cluster()
    network_ids: dict[str, None] = {}
    for task in view.tasks_on_node(node_id):
        # The attachments first: most tasks of a large cluster have none, and a change to
        # any node or service has every session work its map out again (900 sessions of 100
        # tasks each held a 1,000-node leader's loop 0.5-0.75 s in ``_live``; issue 15).
        attachments = task.NetworksAttachments
        if attachments and _live(task):
            for attachment in attachments:
                network_ids[attachment.Network.ID] = None
    nodes: dict[str, Node | None] = {}

    def node_of(nid: str) -> Node | None:
        if nid not in nodes:
            nodes[nid] = view.get(Node, nid)
        return nodes[nid]

    networks = []
    for network_id in network_ids:
        network = view.get(Network, network_id)
        mapped = _map_network(view, network, node_id, node_of, cluster) if network else None
        if mapped is not None:
            networks.append(mapped)
    return NetworkMap(
        data_path_port=data_path_port(node_of(node_id), cluster),
        networks=tuple(sorted(networks, key=lambda n: n.id)),
    )


def _map_network(
    view: ReadTx,
    network: Network,
    node_id: str,
    node_of: NodeLookup,
    cluster: Cluster | None,
) -> MappedNetwork | None:
    space = address_space(network)
    vni = vni_of(network)
    if space is None or vni is None:
        return None
    peers = []
    running: dict[str, list[ServiceTask]] = {}
    for task in view.find(Task, "network", network.ID):
        cidr = task.address_on(network.ID)
        if cidr is None or not task.NodeID or not _live(task):
            continue
        addr = str(address_of(cidr))
        if task.NodeID != node_id:
            node = node_of(task.NodeID)
            if node is not None and node.Status.Addr:
                peers.append(PeerTask(addr, node.Status.Addr, data_path_port(node, cluster)))
        if task.Status.State == TaskState.RUNNING and task.DesiredState == TaskState.RUNNING:
            running.setdefault(task.ServiceID, []).append(ServiceTask(task.full_name, addr))
    services = []
    for svc in view.find(Service, "network", network.ID):
        if svc.PendingDelete:
            continue
        spec = svc.Spec.EndpointSpec
        mode = (
            EndpointMode.DNSRR
            if spec is not None and spec.Mode == EndpointMode.DNSRR
            else EndpointMode.VIP
        )
        vip = next(
            (
                str(address_of(v.Addr))
                for v in svc.Endpoint.VirtualIPs or ()
                if v.NetworkID == network.ID and v.Addr
            ),
            None,
        )
        aliases = [
            alias
            for n in svc.Spec.TaskTemplate.Networks or ()
            if n.Target == network.ID
            for alias in n.Aliases or ()
        ]
        services.append(
            NetworkService(
                name=svc.Spec.Name,
                id=svc.ID,
                mode=mode.value,
                vip=vip if mode == EndpointMode.VIP else None,
                aliases=tuple(aliases),
                tasks=tuple(sorted(running.get(svc.ID, []))),
            )
        )
    return MappedNetwork(
        id=network.ID,
        name=network.Spec.Name,
        subnet=str(space.subnet),
        gateway=str(space.gateway),
        vni=vni,
        internal=bool(network.Spec.Internal),
        peers=tuple(sorted(set(peers))),
        services=tuple(sorted(services, key=lambda s: s.name)),
    )
