"""Cluster-wide published ports: an ingress port belongs to one service on every node, so no
two services may publish the same one (per protocol); an ingress port left out gets one from
Swarm's dynamic range.

``IngressPorts`` is the pure bookkeeping; ``allocate_ports(tx, service)`` is what the
control API calls (through ``allocate_endpoint``) inside the transaction that creates or
updates a service. It reads the other
services from that transaction, so a deleted service's ports are free at once, a failed
transaction leaves nothing behind, and nothing has to be rebuilt after a restart or a change
of leader.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from shoal.api.objects import Service
from shoal.api.specs import EndpointPortConfig
from shoal.api.types import PortProtocol, PublishMode
from shoal.errors import InvalidArgument, swarm_error
from shoal.store import ReadTx

DYNAMIC_PORT_START = 30000
DYNAMIC_PORT_END = 32767

PortKey = tuple[PortProtocol, int]


@dataclass(frozen=True, slots=True)
class Holder:
    """A service holding a port, and how it publishes it."""

    service_id: str
    service_name: str
    mode: PublishMode


def _published(ports: Iterable[EndpointPortConfig] | None) -> Iterable[EndpointPortConfig]:
    return (p for p in ports or () if p.PublishedPort)


def _spec_ports(service: Service) -> list[EndpointPortConfig]:
    ep = service.Spec.EndpointSpec
    return list(ep.Ports or ()) if ep is not None else []


class IngressPorts:
    """Which service holds which published port, cluster-wide."""

    def __init__(self) -> None:
        self._held: dict[PortKey, Holder] = {}

    @classmethod
    def from_services(cls, services: Iterable[Service], exclude: str = "") -> "IngressPorts":
        """The ports the services hold (their spec's and their allocated ones), leaving out
        the service ``exclude`` (the one being allocated)."""
        ports = cls()
        for svc in services:
            if svc.ID != exclude:
                ports.hold(svc)
        return ports

    def hold(self, service: Service) -> None:
        """Record the ports ``service`` publishes (no checks: it is already stored)."""
        for p in (*_published(_spec_ports(service)), *_published(service.Endpoint.Ports)):
            key = (p.Protocol, p.PublishedPort or 0)
            # An ingress holding wins over a host one: it is the stronger claim.
            current = self._held.get(key)
            if current is None or current.mode == PublishMode.HOST:
                self._held[key] = Holder(service.ID, service.Spec.Name, p.PublishMode)

    def release(self, service_id: str) -> None:
        self._held = {k: h for k, h in self._held.items() if h.service_id != service_id}

    def holder(self, protocol: PortProtocol, port: int) -> Holder | None:
        return self._held.get((protocol, port))

    def _check(self, port: EndpointPortConfig) -> None:
        """Refuse a published port another service holds, in Swarm's words: an ingress port
        is the cluster's; a host-mode port may be shared among host-mode publishers (the
        scheduler keeps them on different nodes) but not with an ingress one."""
        assert port.PublishedPort
        held = self._held.get((port.Protocol, port.PublishedPort))
        if held is None:
            return
        if held.mode == PublishMode.INGRESS:
            how = "as an ingress port"
        elif port.PublishMode == PublishMode.INGRESS:
            how = "as a host-published port"
        else:
            return
        raise swarm_error(
            InvalidArgument,
            f"port '{port.PublishedPort}' is already in use by service "
            f"'{held.service_name}' ({held.service_id}) {how}",
        )

    def _free_dynamic(self, protocol: PortProtocol, taken: set[PortKey]) -> int:
        # Like Swarm's serial allocation: after the highest dynamic port in use, wrapping
        # round to the lowest free one, so a port just given up is not handed out again at
        # once.
        used = {
            port
            for proto, port in (*self._held, *taken)
            if proto == protocol and DYNAMIC_PORT_START <= port <= DYNAMIC_PORT_END
        }
        start = max(used) + 1 if used else DYNAMIC_PORT_START
        for port in (*range(start, DYNAMIC_PORT_END + 1), *range(DYNAMIC_PORT_START, start)):
            if port not in used:
                return port
        raise swarm_error(
            InvalidArgument,
            f"no free port left in the dynamic range {DYNAMIC_PORT_START}-{DYNAMIC_PORT_END} "
            f"for protocol {protocol.value}",
        )

    def allocate(self, service: Service) -> list[EndpointPortConfig]:
        """The ports ``service`` will hold (what Docker shows as Endpoint.Ports): its spec's
        ports, with a published port chosen for each ingress port that has none. A port it
        held before under the same name, protocol and target is kept, as in Swarm. Raises
        InvalidArgument if a published port is taken. Records the result."""
        spec_ports = _spec_ports(service)
        previous: dict[tuple, list[int]] = {}
        for p in service.Endpoint.Ports or ():
            if p.PublishMode == PublishMode.INGRESS and p.PublishedPort:
                previous.setdefault((p.Name, p.Protocol, p.TargetPort), []).append(p.PublishedPort)

        for p in _published(spec_ports):
            self._check(p)
        # Ports asked for by number are settled first, so a dynamic one never takes them.
        taken: set[PortKey] = {
            (p.Protocol, p.PublishedPort or 0)
            for p in _published(spec_ports)
            if p.PublishMode == PublishMode.INGRESS
        }
        result: list[EndpointPortConfig] = []
        for p in spec_ports:
            port = p.model_copy()
            if port.PublishMode == PublishMode.INGRESS and not port.PublishedPort:
                port.PublishedPort = self._sticky_or_new(port, previous, taken)
                taken.add((port.Protocol, port.PublishedPort))
            result.append(port)
        for port in result:
            if port.PublishedPort:
                key = (port.Protocol, port.PublishedPort)
                if key not in self._held or port.PublishMode == PublishMode.INGRESS:
                    self._held[key] = Holder(service.ID, service.Spec.Name, port.PublishMode)
        return result

    def _sticky_or_new(
        self, port: EndpointPortConfig, previous: dict[tuple, list[int]], taken: set[PortKey]
    ) -> int:
        for candidate in previous.get((port.Name, port.Protocol, port.TargetPort), []):
            key = (port.Protocol, candidate)
            if key not in taken and key not in self._held:
                previous[(port.Name, port.Protocol, port.TargetPort)].remove(candidate)
                return candidate
        return self._free_dynamic(port.Protocol, taken)


def allocate_ports(tx: ReadTx, service: Service) -> list[EndpointPortConfig]:
    """The published ports of ``service`` (what Docker shows as Endpoint.Ports), checked and
    allocated against every other service in the transaction. Raises InvalidArgument
    (Docker's wording) if a published port is taken."""
    ports = IngressPorts.from_services(tx.list(Service), exclude=service.ID)
    return ports.allocate(service)
