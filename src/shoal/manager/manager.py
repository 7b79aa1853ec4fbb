"""A manager: the store replicated through raft, the node-to-node RPC server, the control
API, and the components that run while this manager leads (orchestrators, scheduler,
allocator, the dispatcher's loops, the role manager).

Leadership comes and goes with raft: leader-only components start when this manager's raft
node is leader with its store current, and are cancelled when it loses leadership (they are
built afresh each time, as they hold state). On a follower, control API writes and
certificate requests go to the leader, and agents are sent to the leader's dispatcher.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

import grpc.aio

from shoal.api.ids import new_id
from shoal.api.objects import (
    Cluster,
    JoinTokens,
    ManagerStatus,
    Network,
    Node,
    NodeDescription,
    NodeStatus,
    RootCA,
)
from shoal.api.specs import Driver, IPAMOptions, NetworkSpec, NodeSpec, SwarmSpec
from shoal.api.types import NodeAvailability, NodeRole, NodeState, Reachability
from shoal.ca import tokens
from shoal.ca.certificates import root_tls_info
from shoal.ca.rootca import RootCAMaterial
from shoal.clock import Clock
from shoal.errors import FailedPrecondition, NotFound, Unavailable, swarm_error
from shoal.manager.allocator import allocate_endpoint, allocate_network
from shoal.manager.allocator.networks import OVERLAY
from shoal.manager.autolock import AutolockFollower, same_key
from shoal.manager.component import Component
from shoal.manager.consensus.forwarding import ControlService, ForwardingNodeCA, RoutedControl
from shoal.manager.consensus.replica import DEFAULT_TICK, Replica
from shoal.manager.consensus.roles import RoleManager
from shoal.manager.consensus.service import RaftService
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.controlapi.unlock_keys import updated_unlock_keys
from shoal.manager.logbroker import LogBroker
from shoal.manager.logbroker.leader_logs import LeaderLogs
from shoal.manager.orchestrator import is_task_dirty
from shoal.rpc import Transport
from shoal.rpc.authz import WORKER, Authorizer, CertificatePeer
from shoal.store import MemoryStore, Tx

log = logging.getLogger(__name__)


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
    # Where overlay networks take their subnets (None: Swarm's default), and the UDP port of
    # their VXLAN traffic.
    default_addr_pool: list[str] | None = None
    subnet_size: int = 24
    data_path_port: int = 4789


@dataclass
class ManagerConfig:
    state_dir: Path  # the manager's own directory (log and snapshots)
    node_id: str
    listen_addr: str  # host:port for the RPC server
    advertise_addr: str  # host:port others use
    transport: Transport
    cluster_id: str = ""  # the cluster this manager's certificate names
    # Added by the components' packages; the manager itself knows none of them.
    components: list[ComponentFactory] = field(default_factory=list)
    servicers: list[ServicerFactory] = field(default_factory=list)
    # Managers to ask for a seat in raft when this manager has no raft state yet (it joined
    # with the manager token, or was promoted).
    join_addrs: list[str] = field(default_factory=list)
    raft_tick: float = DEFAULT_TICK
    # The unlock key (autolock's key-encryption key) that opens this manager's raft data keys
    # when they are sealed; None while autolock is off.
    raft_kek: bytes | None = None
    # Autolock: the unlock key the node's TLS key is sealed under now (None: plain), and how
    # every key this manager keeps is sealed under a new one (None: unsealed), the node's TLS
    # key with the raft data keys (the daemon's; alone, the manager reseals only the latter).
    node_kek: bytes | None = None
    reseal: Callable[[bytes | None], Awaitable[None]] | None = None
    # Writes (and raft entries) taking this many seconds or more are logged with where their
    # time went; None: off (see shoal.store.slow_writes).
    slow_writes: float | None = None


class Manager:
    def __init__(self, config: ManagerConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.store = MemoryStore(clock=clock)
        self.store.slow_writes = config.slow_writes
        self.replica = Replica(
            self.store,
            config.state_dir,
            config.node_id,
            config.advertise_addr,
            config.transport,
            clock,
            tick=config.raft_tick,
            kek=config.raft_kek,
        )
        self.replica.on_leadership = self._leadership_changed
        self.replica.on_removed = lambda: self.on_removed()
        # The control API itself (the leader runs it), and what the engine API uses: reads
        # here, writes on the leader.
        self.control_api = ControlAPI(
            self.store,
            clock,
            allocate_endpoint=allocate_endpoint,
            is_task_dirty=is_task_dirty,
            check_demotion=self._check_demotion,
        )
        # RoutedControl answers every ControlAPI call (reads here, writes on the leader).
        self.control = cast(ControlAPI, RoutedControl(self.control_api, self.replica, clock))
        self._server: grpc.aio.Server | None = None
        self._leader_tasks: list[asyncio.Task] = []
        self._started = False  # leader components wait for the store to be current
        self._closing: set[asyncio.Future] = set()
        self._settings_task: asyncio.Task | None = None
        self._autolock_task: asyncio.Task | None = None
        self.port = 0
        self.servicers: list[Servicer] = []
        # Set by the daemon: this manager was removed from raft (demoted).
        self.on_removed: Callable[[], None] = lambda: None

    @property
    def node_id(self) -> str:
        return self.config.node_id

    @property
    def is_leader(self) -> bool:
        return self.replica.is_leader

    def logs(self) -> "LogBroker | LeaderLogs":
        """Where task logs are read: the agents publish to the leader's broker, so a follower
        reads through the leader."""
        if not self.replica.is_leader:
            return LeaderLogs(self.replica)
        for servicer in self.servicers:
            if isinstance(servicer, LogBroker):
                return servicer
        raise Unavailable("this manager has no log broker")

    def leader_redirect(self) -> str | None:
        """None while this manager leads; else the leader's address ("" if none is known)."""
        if self.replica.is_leader:
            return None
        member = self.replica.leader_member()
        if member is None or member.raft_id == self.replica.raft_id:
            return ""
        return member.addr

    async def start(
        self, bootstrap: Bootstrap | None = None, force_new_cluster: bool = False
    ) -> None:
        """Start serving: a new swarm (``bootstrap``), a manager that was a raft member before
        (``force_new_cluster``: as the only member of a new raft cluster), or one joining."""
        # The RPC server first: a joining manager must hear the leader as soon as it is added.
        server = self.config.transport.server(
            Authorizer(lambda: self.config.cluster_id, self._may_call)
        )
        self.servicers = [
            ForwardingNodeCA(self.store, self.clock, self.replica),
            RaftService(self.replica),
            ControlService(self.control_api, self.replica),
        ]
        for factory in self.config.servicers:
            self.servicers.extend(factory(self))
        for servicer in self.servicers:
            servicer.add_to_server(server)
        self.port = self.config.transport.add_port(server, self.config.listen_addr)
        if self.port == 0:
            raise OSError(f"failed to listen on {self.config.listen_addr}")
        await server.start()
        self._server = server
        if bootstrap is not None:
            await self.replica.bootstrap()
            await self._bootstrap(bootstrap)
        elif force_new_cluster:
            await self.replica.force_new_cluster()
        elif self.replica.has_state():
            await self.replica.restart()
        elif self.config.join_addrs:
            await self.replica.join(self.config.join_addrs)
        else:
            raise RuntimeError(f"manager state in {self.config.state_dir} has no raft state")
        self._started = True
        self._settings_task = asyncio.create_task(self._follow_settings(), name="raft-settings")
        raft_kek = self.replica.raft_keys.kek if self.replica.raft_keys else self.replica.kek
        autolock = AutolockFollower(
            self.store,
            self.clock,
            raft_kek,
            self.config.reseal or self.replica.reseal_data_keys,
            settled=same_key(raft_kek, self.config.node_kek),
        )
        self._autolock_task = asyncio.create_task(autolock.run(), name="autolock")
        if self.replica.is_leader:
            self._start_leading()

    async def _follow_settings(self) -> None:
        """Keep raft's snapshot settings as the Cluster says, on every manager."""
        view, sub = self.store.view_and_watch(kinds={"cluster"})
        with sub:
            cluster = view.cluster()
            while True:
                if cluster is not None:
                    raft = cluster.Spec.Raft
                    self.replica.follow_settings(
                        raft.SnapshotInterval, raft.LogEntriesForSlowFollowers
                    )
                try:
                    ev = await sub.get()
                except StopAsyncIteration:
                    return  # the store closed
                if not ev.is_commit and isinstance(ev.obj, Cluster):
                    cluster = ev.obj

    async def _bootstrap(self, b: Bootstrap) -> None:
        ca = b.root_ca.cert_pem
        cluster = Cluster(
            ID=b.cluster_id,
            Spec=b.spec,
            TLSInfo=root_tls_info(ca),
            RootCA=RootCA(
                CACert=ca.decode(),
                CAKey=b.root_ca.key_pem.decode(),
                CACertHash=tokens.ca_digest(ca),
                JoinTokens=JoinTokens(Worker=tokens.generate(ca), Manager=tokens.generate(ca)),
            ),
            DefaultAddrPool=b.default_addr_pool,
            SubnetSize=b.subnet_size,
            DataPathPort=b.data_path_port,
            UnlockKeys=updated_unlock_keys([], b.spec.EncryptionConfig.AutoLockManagers),
        )
        # Every swarm has the routing mesh's network, as Swarm's has.
        ingress = Network(
            ID=new_id(),
            Spec=NetworkSpec(
                Name="ingress",
                Labels={},
                DriverConfiguration=Driver(Name=OVERLAY),
                Ingress=True,
                IPAMOptions=IPAMOptions(Driver=Driver(Name="default")),
                Scope="swarm",
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

        def fn(tx: Tx) -> None:
            tx.create(cluster)
            tx.create(node)
            allocate_network(tx, ingress)
            tx.create(ingress)

        await self.store.update(fn)

    def _leadership_changed(self, leading: bool) -> None:
        """Called by raft (in its loop) when this manager gains or loses leadership."""
        if leading:
            log.info("this manager is now the raft leader")
            self._start_leading()
        else:
            log.info("this manager is no longer the raft leader")
            self._stop_leading()

    def _start_leading(self) -> None:
        if self._leader_tasks or not self._started or not self.replica.is_leader:
            return
        # Services with loops of their own (the dispatcher's) run them while leading too.
        leading: list[Component] = [s for s in self.servicers if isinstance(s, Component)]
        leading.append(RoleManager(self.store, self.replica, self.clock))
        for factory in self.config.components:
            leading.extend(factory(self))
        for component in leading:
            name = type(component).__name__
            self._leader_tasks.append(
                asyncio.create_task(self._supervise(name, component), name=name)
            )

    def _stop_leading(self) -> None:
        for task in self._leader_tasks:
            task.cancel()
        self._leader_tasks.clear()
        # Agents' sessions were with this manager's dispatcher: end them, so they go to the
        # new leader.
        for servicer in self.servicers:
            close = getattr(servicer, "close", None)
            if close is not None:
                task = asyncio.ensure_future(close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    def _may_call(self, peer: CertificatePeer, roles: frozenset[str]) -> str | None:
        """Whether a node whose certificate passed the role check may still call: it must
        be in the swarm (``node rm`` revokes it) and, for manager-only calls, a manager now
        (a demoted manager's certificate still says manager until it is renewed)."""
        view = self.store.view()
        if view.cluster() is None:
            # This manager has joined but not yet received the store: raft and the leader's
            # calls must reach it. The certificate chains to this cluster's root and names a
            # manager (the role check passed).
            return None
        node = view.get(Node, peer.node_id)
        if node is None:
            return f"Permission denied: node {peer.node_id} is not a member of this swarm"
        if WORKER not in roles and node.Role != NodeRole.MANAGER:
            return f"Permission denied: node {peer.node_id} is not a manager"
        return None

    def _check_demotion(self, node_id: str) -> None:
        member = self.replica.log.member_by_node(node_id)
        if member is None:
            raise swarm_error(NotFound, "can't find manager in raft memberlist")
        if not self.replica.can_remove(member.raft_id):
            raise swarm_error(
                FailedPrecondition,
                "can't remove member from the raft: this would result in a loss of quorum",
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
        followers = [t for t in (self._settings_task, self._autolock_task) if t is not None]
        for task in followers:
            task.cancel()
        # Awaited, so that none acts after the manager stopped.
        await asyncio.gather(*followers, return_exceptions=True)
        tasks = list(self._leader_tasks)
        self._leader_tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for servicer in self.servicers:
            close = getattr(servicer, "close", None)
            if close is not None:
                await close()
        await self.replica.stop()
        if self._server is not None:
            await self._server.stop(grace=1.0)
            self._server = None
        self.store.close()
