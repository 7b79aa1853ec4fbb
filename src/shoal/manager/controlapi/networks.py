"""The control API's networks: create, read, remove and prune swarm networks, and resolve the
networks a service names, with swarmkit's (and Docker's daemon's) checks and words."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shoal.api.ids import new_id
from shoal.api.objects import Network, Node, Service, Task
from shoal.api.specs import NetworkSpec, ServiceSpec
from shoal.api.types import TaskState
from shoal.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, swarm_error
from shoal.manager.allocator.networks import OVERLAY, allocate_network, is_dead
from shoal.manager.controlapi.timestamps import parse_until
from shoal.manager.controlapi.validate import validate_name
from shoal.store import MemoryStore, ReadTx, Tx

INGRESS = "ingress"


@dataclass(frozen=True)
class NetworkUsage:
    services: list[Service]
    tasks: list[tuple[Task, Node | None]]


def network_not_found(ref: str) -> NotFound:
    return NotFound(f"network {ref} not found")


def resolve_network(view: ReadTx, ref: str) -> Network:
    """A network by full ID, then name, then ID prefix, as Docker's daemon looks one up."""
    if not ref:
        raise network_not_found(ref)
    network = view.get(Network, ref)
    if network is not None:
        return network
    by_name = [n for n in view.find(Network, "name", ref.lower()) if n.Spec.Name == ref]
    if by_name:
        return by_name[0]
    by_prefix = view.find_by_prefix(Network, ref)
    if len(by_prefix) == 1:
        return by_prefix[0]
    if len(by_prefix) > 1:
        raise InvalidArgument(f"network {ref} is ambiguous ({len(by_prefix)} matches found)")
    raise network_not_found(ref)


def validate_network_spec(spec: NetworkSpec) -> None:
    if not spec.Name:
        raise InvalidArgument("invalid name: name is empty")
    validate_name(spec.Name)
    driver = spec.DriverConfiguration.Name if spec.DriverConfiguration else ""
    if driver not in ("", OVERLAY):
        raise InvalidArgument(f'plugin "{driver}" not found')
    if spec.Scope not in (None, "", "swarm", "global"):
        if spec.Scope == "local":
            raise InvalidArgument("cannot downgrade network scope for overlay networks")
    if spec.Ingress and spec.Attachable:
        raise swarm_error(InvalidArgument, "ingress network cannot be attachable")
    if spec.IPv6Enabled:
        raise InvalidArgument("shoal's overlay networks are IPv4 only: --ipv6 is not supported")


def resolve_service_networks(view: ReadTx, spec: ServiceSpec) -> None:
    """Put the networks a service names where Docker's daemon puts them (the task template,
    not the deprecated Spec.Networks), each by its ID, as Docker's daemon does before the
    spec reaches swarmkit; refuse ingress, which is the routing mesh's alone."""
    if spec.Networks and not spec.TaskTemplate.Networks:
        spec.TaskTemplate.Networks = spec.Networks
    spec.Networks = None
    for attachment in spec.TaskTemplate.Networks or ():
        network = resolve_network(view, attachment.Target)
        if network.is_ingress:
            raise swarm_error(
                InvalidArgument,
                "Service cannot be explicitly attached to the ingress network "
                f'"{network.Spec.Name}"',
            )
        attachment.Target = network.ID


def check_ingress_present(view: ReadTx, spec: ServiceSpec) -> None:
    """A service that publishes ports through the routing mesh needs the ingress network."""
    ports = spec.EndpointSpec.Ports if spec.EndpointSpec else None
    if not any(p.PublishMode == "ingress" for p in ports or ()):
        return
    if not any(n.is_ingress for n in view.networks()):
        raise swarm_error(
            FailedPrecondition, "service needs ingress network, but no ingress network is present"
        )


class NetworkControl:
    """Mixed into ControlAPI: its store and write path."""

    store: MemoryStore
    _update: Callable[[Callable[[Tx], Any]], Awaitable[Any]]

    async def create_network(self, spec: dict[str, Any]) -> Network:
        new_spec = NetworkSpec.model_validate(spec)
        validate_network_spec(new_spec)
        new_spec.DriverConfiguration = new_spec.DriverConfiguration or None
        if new_spec.DriverConfiguration is not None and not new_spec.DriverConfiguration.Name:
            new_spec.DriverConfiguration.Name = OVERLAY
        network = Network(ID=new_id(), Spec=new_spec)

        def fn(tx: Tx) -> Network:
            if any(
                n.Spec.Name == new_spec.Name
                for n in tx.find(Network, "name", new_spec.Name.lower())
            ):
                raise Conflict(f"network with name {new_spec.Name} already exists")
            if new_spec.Ingress:
                present = next((n for n in tx.networks() if n.is_ingress), None)
                if present is not None:
                    raise swarm_error(
                        Conflict, f"ingress network ({present.ID}) is already present"
                    )
            allocate_network(tx, network)
            return tx.create(network)

        result: Network = await self._update(fn)
        return result

    def list_networks(self) -> list[Network]:
        return self.store.view().networks()

    def get_network(self, ref: str) -> Network:
        return resolve_network(self.store.view(), ref)

    def network_usage(self, network_id: str) -> NetworkUsage:
        """Who is on a network now: the services attached to it, and the live tasks with an
        address on it, each with the node it is on (what `network inspect` shows)."""
        view = self.store.view()
        services = sorted(view.find(Service, "network", network_id), key=lambda s: s.Spec.Name)
        tasks = []
        for task in view.find(Task, "network", network_id):
            if is_dead(task) or not task.NodeID:
                continue
            tasks.append((task, view.get(Node, task.NodeID)))
        return NetworkUsage(services, sorted(tasks, key=lambda tn: tn[0].ID))

    async def remove_network(self, ref: str) -> None:
        network_id = self.get_network(ref).ID

        def fn(tx: Tx) -> None:
            network = tx.get(Network, network_id)
            if network is None:
                raise network_not_found(network_id)
            _check_unused(tx, network)
            tx.delete(Network, network_id)

        await self._update(fn)

    async def prune_networks(self, filters: dict[str, list[str]]) -> list[str]:
        """Remove every swarm network but ingress that no service or task uses and that the
        filters (``label``, ``label!``, ``until``) select; returns their names."""
        prune = PruneFilters(filters)
        removed: list[str] = []

        def fn(tx: Tx) -> None:
            for network in tx.networks():
                if network.is_ingress or not prune.selects(network):
                    continue
                try:
                    _check_unused(tx, network)
                except FailedPrecondition:
                    continue
                tx.delete(Network, network.ID)
                removed.append(network.Spec.Name)

        await self._update(fn)
        return sorted(removed)


class PruneFilters:
    """Docker's prune filters: ``label=k[=v]`` (all must hold), ``label!=k[=v]`` (none may),
    ``until=<timestamp or duration>`` (created before)."""

    def __init__(self, filters: dict[str, list[str]]) -> None:
        for key in filters:
            if key not in ("label", "label!", "until"):
                raise InvalidArgument(f"Invalid filter '{key}'")
        self.with_labels = filters.get("label", [])
        self.without_labels = filters.get("label!", [])
        self.until = [parse_until(u) for u in filters.get("until", [])]

    def selects(self, network: Network) -> bool:
        labels = network.Spec.Labels or {}
        if not all(_has_label(labels, item) for item in self.with_labels):
            return False
        if any(_has_label(labels, item) for item in self.without_labels):
            return False
        return all(network.CreatedAt < until for until in self.until)


def _has_label(labels: dict[str, str], item: str) -> bool:
    name, sep, value = item.partition("=")
    return name in labels and (not sep or labels[name] == value)


def _check_unused(tx: ReadTx, network: Network) -> None:
    """Refuse, in swarmkit's words, to remove a network that services or tasks use."""
    if network.is_ingress:
        for svc in tx.services():
            ports = svc.Endpoint.Ports or ()
            if any(p.PublishMode == "ingress" for p in ports):
                raise swarm_error(
                    FailedPrecondition,
                    f"ingress network cannot be removed because service {svc.ID} depends on it",
                )
        return
    for svc in tx.find(Service, "network", network.ID):
        raise swarm_error(FailedPrecondition, f"network {network.ID} is in use by service {svc.ID}")
    for task in tx.find(Task, "network", network.ID):
        # swarmkit's rule: only a task meant to run that has not yet stopped holds the network,
        # so that ``stack rm`` can remove a stack's networks right after its services, while
        # their tasks are still being shut down
        if task.DesiredState <= TaskState.COMPLETE and task.Status.State <= TaskState.RUNNING:
            raise swarm_error(
                FailedPrecondition, f"network {network.ID} is in use by task {task.ID}"
            )
