"""A manager: the store and its log, the node-to-node RPC server, the control API, and the
components that run while this manager leads (orchestrators, scheduler, allocator...)."""

import asyncio
import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shoal.api.objects import (
    Cluster,
    JoinTokens,
    ManagerStatus,
    Node,
    NodeDescription,
    NodeStatus,
    RootCA,
    TLSInfo,
)
from shoal.api.specs import NodeSpec, SwarmSpec
from shoal.api.types import NodeAvailability, NodeRole, NodeState, Reachability
from shoal.ca import tokens
from shoal.ca.rootca import RootCAMaterial
from shoal.ca.server import NodeCAServicer
from shoal.clock import Clock
from shoal.manager.allocator import allocate_endpoint
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.orchestrator import is_task_dirty
from shoal.rpc import Transport
from shoal.store import MemoryStore
from shoal.store.local_log import LocalLog

log = logging.getLogger(__name__)


class Component(Protocol):
    """A reconcile loop that runs while this manager leads."""

    async def run(self) -> None: ...


class Servicer(Protocol):
    def add_to_server(self, server: object) -> None: ...


ComponentFactory = Callable[["Manager"], list[Component]]
ServicerFactory = Callable[["Manager"], list[Servicer]]


@dataclass
class Bootstrap:
    """What ``swarm init`` decides: the new cluster and this node, its first manager."""

    cluster_id: str
    node_id: str
    description: NodeDescription
    advertise_addr: str  # host:port other nodes reach this manager at
    spec: SwarmSpec
    root_ca: RootCAMaterial
    availability: NodeAvailability = NodeAvailability.ACTIVE


def tls_info(ca_cert_pem: bytes) -> TLSInfo:
    cert = x509.load_pem_x509_certificate(ca_cert_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TLSInfo(
        TrustRoot=ca_cert_pem.decode(),
        CertIssuerSubject=base64.b64encode(cert.subject.public_bytes()).decode(),
        CertIssuerPublicKey=base64.b64encode(spki).decode(),
    )


@dataclass
class ManagerConfig:
    state_dir: Path  # the manager's own directory (log and snapshots)
    node_id: str
    listen_addr: str  # host:port for the RPC server
    advertise_addr: str  # host:port others use
    transport: Transport
    # Added by the components' packages; the manager itself knows none of them.
    components: list[ComponentFactory] = field(default_factory=list)
    servicers: list[ServicerFactory] = field(default_factory=list)


class Manager:
    def __init__(self, config: ManagerConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.store = MemoryStore(clock=clock)
        self._log = LocalLog(self.store, config.state_dir)
        self.store.proposer = self._log
        self.control = ControlAPI(
            self.store, clock, allocate_endpoint=allocate_endpoint, is_task_dirty=is_task_dirty
        )
        self._server = None
        self._leader_tasks: list[asyncio.Task] = []
        self.port = 0
        self.servicers: list[Servicer] = []

    @property
    def node_id(self) -> str:
        return self.config.node_id

    async def start(self, bootstrap: Bootstrap | None = None) -> None:
        await asyncio.to_thread(self._log.load)
        if bootstrap is not None:
            await self._bootstrap(bootstrap)
        elif self.store.view().cluster() is None:
            raise RuntimeError(f"manager state in {self.config.state_dir} has no cluster")
        server = self.config.transport.server()
        self.servicers = [NodeCAServicer(self.store, self.clock)]
        for factory in self.config.servicers:
            self.servicers.extend(factory(self))
        for servicer in self.servicers:
            servicer.add_to_server(server)
        self.port = self.config.transport.add_port(server, self.config.listen_addr)
        if self.port == 0:
            raise OSError(f"failed to listen on {self.config.listen_addr}")
        await server.start()
        self._server = server
        # A single manager is always the leader (Raft makes this a decision later).
        await self._become_leader()

    async def _bootstrap(self, b: Bootstrap) -> None:
        ca = b.root_ca.cert_pem
        cluster = Cluster(
            ID=b.cluster_id,
            Spec=b.spec,
            TLSInfo=tls_info(ca),
            RootCA=RootCA(
                CACert=ca.decode(),
                CAKey=b.root_ca.key_pem.decode(),
                CACertHash=tokens.ca_digest(ca),
                JoinTokens=JoinTokens(Worker=tokens.generate(ca), Manager=tokens.generate(ca)),
            ),
        )
        node = Node(
            ID=b.node_id,
            Spec=NodeSpec(Role=NodeRole.MANAGER, Availability=b.availability),
            Role=NodeRole.MANAGER,
            Description=b.description,
            Status=NodeStatus(State=NodeState.UNKNOWN, Addr=b.advertise_addr.rsplit(":", 1)[0]),
            ManagerStatus=ManagerStatus(
                Leader=True, Reachability=Reachability.REACHABLE, Addr=b.advertise_addr
            ),
        )
        await self.store.update(lambda tx: (tx.create(cluster), tx.create(node)))

    async def _become_leader(self) -> None:
        # Services with loops of their own (the dispatcher's) run them while leading too.
        leading: list[Component] = [s for s in self.servicers if hasattr(s, "run")]  # type: ignore[misc]
        for factory in self.config.components:
            leading.extend(factory(self))
        for component in leading:
            name = type(component).__name__
            self._leader_tasks.append(
                asyncio.create_task(self._supervise(name, component), name=name)
            )

    async def _supervise(self, name: str, component: Component) -> None:
        """Run a component; if it fails, log it and start it again, so one bug does not
        silently stop the cluster from reconciling."""
        while True:
            try:
                await component.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("manager component %s failed; restarting it", name)
                await self.clock.sleep(1.0)

    async def stop(self) -> None:
        for task in self._leader_tasks:
            task.cancel()
        await asyncio.gather(*self._leader_tasks, return_exceptions=True)
        self._leader_tasks.clear()
        for servicer in self.servicers:
            close = getattr(servicer, "close", None)
            if close is not None:
                await close()
        if self._server is not None:
            await self._server.stop(grace=1.0)
            self._server = None
        self.store.close()
        self._log.close()
