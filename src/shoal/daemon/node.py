"""The node: swarm membership (init, join, leave), and the manager and agent it runs."""

import asyncio
import contextlib
import dataclasses
import logging
import platform
import shutil
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from shoal import paths
from shoal.agent.agent import Agent, AgentConfig
from shoal.agent.describe import describe_node
from shoal.agent.exec.engine import Engine, EngineError, engine_host
from shoal.agent.exec.engine_monitor import EngineMonitor
from shoal.agent.exec.files_root import FilesUnavailable, TaskFilesRoot
from shoal.api.ids import new_id
from shoal.api.objects import Node, NodeDescription
from shoal.api.specs import SwarmSpec
from shoal.api.types import NodeAvailability, NodeRole, Reachability
from shoal.ca import tokens
from shoal.ca.certificates import new_node_key, sign_node_certificate
from shoal.ca.join_ca import JOIN_SERVER_NAME, join_material
from shoal.ca.renewal import check_node_cert_expiry
from shoal.ca.rootca import create_root_ca
from shoal.ca.sealed_key import WrongKEK
from shoal.ca.unlock_key import parse_human_readable
from shoal.clock import Clock, SystemClock
from shoal.daemon.addresses import join_host_port, resolve_advertise_addr, resolve_listen_addr
from shoal.daemon.agent import build_executor, node_context
from shoal.daemon.certificates import NodeCertificates
from shoal.daemon.config import DaemonConfig
from shoal.daemon.join import request_certificate
from shoal.daemon.manager import manager_components, manager_servicers
from shoal.daemon.mesh import NodeMesh
from shoal.daemon.old_generation import pause_costs_leadership
from shoal.daemon.overlay import overlay_prefix
from shoal.daemon.swarm_state import SwarmDir, SwarmState
from shoal.engineapi.backend import LogSource, ManagerAddr, NodeSettings, SwarmStatus
from shoal.engineapi.cluster_events import follow_store
from shoal.engineapi.event_log import EventLog
from shoal.errors import (
    INVALID_UNLOCK_KEY,
    NO_SWARM,
    NOT_A_MANAGER,
    NOT_IN_SWARM,
    NOT_LOCKED,
    SWARM_EXISTS,
    SWARM_LOCKED,
    SWARM_LOCKED_LEAVE,
    Conflict,
    InvalidArgument,
    ShoalError,
    Unauthenticated,
    Unavailable,
)
from shoal.manager.allocator.addresses import (
    DEFAULT_DATA_PATH_PORT,
    check_data_path_port,
    check_default_addr_pool,
)
from shoal.manager.consensus.raft_keys import FILE_NAME as RAFT_KEYS_FILE
from shoal.manager.consensus.raft_keys import InvalidUnlockKey, RaftKeys
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.manager import Bootstrap, Manager, ManagerConfig
from shoal.network.datapath import MeshConfig
from shoal.network.netmap import NetworkMap
from shoal.network.overlay.docker_driver import DockerNetworkDriver
from shoal.network.overlay.node import NodeOverlay, overlay_support
from shoal.rpc import Transport, pb
from shoal.store.slow_writes import slow_write_threshold

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 20.0


def _machine() -> str:
    # Docker reports the kernel's name for the architecture (x86_64, aarch64).
    return platform.machine() or "unknown"


class NodeDaemon:
    def __init__(self, config: DaemonConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.swarm_dir = SwarmDir(config.state_dir)
        self.state: SwarmState | None = None
        self.manager: Manager | None = None
        self.agent: Agent | None = None
        self._agent_task: asyncio.Task | None = None
        self._files: TaskFilesRoot | None = None  # the tmpfs of its tasks' secrets and configs
        self._membership = asyncio.Lock()
        self._role_tasks: set[asyncio.Task] = set()
        self.error = ""
        # The Docker Engine this node runs container tasks on, while it answers.
        self.engine_monitor: EngineMonitor | None = None
        self.mesh: NodeMesh | None = None
        # The node's overlay networks, where it can build them (overlay_unavailable: why
        # not, else "").
        self.overlay: NodeOverlay | None = None
        self.overlay_unavailable = ""
        # How the node's containers join overlay networks (where it has both).
        self.docker_driver: DockerNetworkDriver | None = None
        # This node's certificates and the transport that serves them (while in a swarm).
        self.certs: NodeCertificates | None = None
        self._certs_task: asyncio.Task | None = None
        # Autolock: a manager that restarted with its keys sealed waits, locked, for the
        # unlock key. ``kek``: the key-encryption key (an unlock key's bytes) its TLS key is
        # sealed under, ``raft_kek`` the one its raft data keys are (None: kept plain).
        self.locked = False
        self.kek: bytes | None = None
        self.raft_kek: bytes | None = None
        # The node's events (GET /events); its manager's store feeds it the cluster's.
        self.events = EventLog()
        self._cluster_events: asyncio.Task | None = None

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.config.uses_engine:
            self.engine_monitor = EngineMonitor(Engine(self.config.engine_host), self.clock)
            await self.engine_monitor.start()
        self.state = self.swarm_dir.load()
        if self.state is not None:
            try:
                if await asyncio.to_thread(self._keys_sealed):
                    # As Docker's: nothing of the swarm runs until `swarm unlock`.
                    log.warning("this manager's keys are sealed: swarm locked until unlocked")
                    self.locked = True
                    return
                await self._run_swarm(bootstrap=None)
            except Exception as err:  # keep serving the API so the user can see and leave
                log.exception("could not resume swarm membership")
                self.error = str(err)

    async def stop(self) -> None:
        if self.agent is not None:
            # The daemon stops on purpose: its tasks run on, and it will be back.
            await self.agent.announce_restart()
        await self._stop_swarm()
        if self.engine_monitor is not None:
            await self.engine_monitor.stop()
            self.engine_monitor = None

    # --- what the API shows -----------------------------------------------------------------

    @property
    def local_node_state(self) -> str:
        if self.state is None:
            return "inactive"
        if self.locked:
            return "locked"
        if self.error:
            return "error"
        return "active"

    @property
    def is_manager(self) -> bool:
        return self.manager is not None

    def pause_costs_leadership(self) -> bool:
        """Whether holding the event loop for a second or two (a full garbage collection of a
        large store) would cost this node the raft leadership."""
        if self.manager is None:
            return False
        replica = self.manager.replica
        return pause_costs_leadership(replica.raft_id, replica.leader_id, len(replica.log.members))

    def _manager_or_refuse(self) -> Manager:
        """This node's manager, or Docker's error for a node that is not a manager."""
        if self.state is None:
            raise Unavailable(NOT_IN_SWARM)
        if self.locked:
            raise Unavailable(SWARM_LOCKED)
        if self.manager is None:
            raise Unavailable(NOT_A_MANAGER)
        return self.manager

    def control(self) -> ControlAPI:
        return self._manager_or_refuse().control

    def logs(self) -> LogSource:
        return self._manager_or_refuse().logs()

    @property
    def settings(self) -> NodeSettings:
        cfg = self.config
        return NodeSettings(
            hostname=cfg.hostname,
            state_dir=cfg.state_dir,
            runtimes=list(cfg.runtimes),
            labels=dict(cfg.labels),
        )

    def swarm_status(self) -> SwarmStatus:
        state = self.state
        if state is None:
            return SwarmStatus(local_node_state=self.local_node_state, error=self.error)
        if self.locked:
            # Docker's locked node shows no ID and no managers: its swarm node is not running.
            return SwarmStatus(
                local_node_state="locked",
                node_addr=state.AdvertiseAddr.rsplit(":", 1)[0].strip("[]"),
                error=SWARM_LOCKED,
            )
        status = SwarmStatus(
            local_node_state=self.local_node_state,
            node_id=state.NodeID,
            node_addr=state.AdvertiseAddr.rsplit(":", 1)[0].strip("[]"),
            error=self.error,
            remote_managers=[ManagerAddr("", addr) for addr in state.RemoteManagers],
        )
        if self.manager is None:
            return status
        view = self.manager.store.view()
        nodes = view.nodes()
        managers = [n for n in nodes if n.Role == NodeRole.MANAGER]
        return dataclasses.replace(
            status,
            is_manager=True,
            remote_managers=[
                ManagerAddr(n.ID, n.ManagerStatus.Addr)
                for n in managers
                if n.ManagerStatus is not None
            ],
            nodes=len(nodes),
            managers=len(managers),
            cluster=view.cluster(),
        )

    def description(self) -> NodeDescription:
        labels = dict(self.config.labels)
        if self.mesh is not None and self.mesh.name:
            # Which routing-mesh data path serves this node's published ports.
            labels["com.shoal.mesh.datapath"] = self.mesh.name
        if self.overlay_unavailable:
            labels["com.shoal.overlay"] = self.overlay_unavailable
        description = describe_node(
            self.config.hostname,
            labels,
            self.config.runtimes,
            self.engine_monitor.info if self.engine_monitor is not None else None,
            overlay=self.overlay is not None,
        )
        description.DataPathPort = self.config.data_path_port
        if self.certs is not None and self.certs.transport.tls is not None:
            description.TLSInfo = self.certs.tls_info()
        return description

    # --- init / join / leave ----------------------------------------------------------------

    def _requested_listen_addr(self, req: dict[str, Any]) -> str:
        """The address to serve the swarm on. Docker's CLI always sends 0.0.0.0:2377 when the
        user gave no --listen-addr; the daemon's own --listen-addr is the better default then,
        since several shoal daemons on one machine each have their own."""
        requested = req.get("ListenAddr") or ""
        if requested in ("", f"0.0.0.0:{paths.DEFAULT_PORT}"):
            return self.config.listen_addr
        return requested

    async def init(self, req: dict[str, Any]) -> str:
        async with self._membership:
            if self.state is not None:
                if req.get("ForceNewCluster"):
                    return await self._force_new_cluster()
                raise Unavailable(SWARM_EXISTS)
            listen_host, listen_port = resolve_listen_addr(self._requested_listen_addr(req))
            default_host = resolve_listen_addr(self.config.listen_addr)[0]
            adv_host, adv_port = resolve_advertise_addr(
                req.get("AdvertiseAddr") or "",
                listen_host if listen_host not in ("0.0.0.0", "::") else default_host,
                listen_port,
            )
            spec = SwarmSpec.model_validate(req.get("Spec") or {})
            # Docker's CLI asks for autolock in both places; other clients may use either.
            if req.get("AutoLockManagers"):
                spec.EncryptionConfig.AutoLockManagers = True
            # Fields a client leaves at zero mean "Swarm's default".
            defaults = SwarmSpec()
            if not spec.Dispatcher.HeartbeatPeriod:
                spec.Dispatcher.HeartbeatPeriod = defaults.Dispatcher.HeartbeatPeriod
            if not spec.CAConfig.NodeCertExpiry:
                spec.CAConfig.NodeCertExpiry = defaults.CAConfig.NodeCertExpiry
            check_node_cert_expiry(spec.CAConfig.NodeCertExpiry)
            if not spec.Raft.SnapshotInterval:
                spec.Raft.SnapshotInterval = defaults.Raft.SnapshotInterval
            if not spec.Raft.ElectionTick:
                spec.Raft.ElectionTick = defaults.Raft.ElectionTick
            if not spec.Raft.HeartbeatTick:
                spec.Raft.HeartbeatTick = defaults.Raft.HeartbeatTick
            if not spec.Raft.LogEntriesForSlowFollowers:
                spec.Raft.LogEntriesForSlowFollowers = defaults.Raft.LogEntriesForSlowFollowers
            if spec.Orchestration.TaskHistoryRetentionLimit is None:
                spec.Orchestration.TaskHistoryRetentionLimit = 5
            availability = NodeAvailability(req.get("Availability") or "active")
            pools = list(req.get("DefaultAddrPool") or []) or None
            subnet_size = int(req.get("SubnetSize") or 24)
            check_default_addr_pool(pools, subnet_size)
            data_path_port = int(req.get("DataPathPort") or DEFAULT_DATA_PATH_PORT)
            check_data_path_port(data_path_port)

            node_id = new_id()
            cluster_id = new_id()
            root_ca = await asyncio.to_thread(create_root_ca, self.clock.now())
            key = await asyncio.to_thread(new_node_key)
            cert = sign_node_certificate(
                key.csr_pem,
                root_ca.cert_pem,
                root_ca.key_pem,
                node_id=node_id,
                role=NodeRole.MANAGER,
                cluster_id=cluster_id,
                expiry=spec.CAConfig.node_cert_lifetime(),
                now=self.clock.now(),
            )
            self.swarm_dir.save_certificates(key.key_pem, cert, root_ca.cert_pem)
            advertise = join_host_port(adv_host, adv_port)
            self.state = SwarmState(
                NodeID=node_id,
                ClusterID=cluster_id,
                Role=NodeRole.MANAGER,
                ListenAddr=join_host_port(listen_host, listen_port),
                AdvertiseAddr=advertise,
                RemoteManagers=[advertise],
            )
            bootstrap = Bootstrap(
                cluster_id=cluster_id,
                node_id=node_id,
                description=self.description(),
                advertise_addr=advertise,
                spec=spec,
                root_ca=root_ca,
                availability=availability,
                default_addr_pool=pools,
                subnet_size=subnet_size,
                data_path_port=data_path_port,
            )
            try:
                await self._run_swarm(bootstrap=bootstrap)
            except BaseException:
                await self._stop_swarm()
                self.swarm_dir.clear()
                self.state = None
                raise
            self.swarm_dir.save(self.state)
            # As Docker's init does (it waits for its node to be ready), answer once the
            # node's agent is in session: the node is Ready in the store then, and a client
            # that reads it and updates it at once is not out of sequence with that write.
            assert self.agent is not None  # started by _run_swarm
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.agent.connected.wait(), JOIN_TIMEOUT)
            return node_id

    async def _force_new_cluster(self) -> str:
        """``swarm init --force-new-cluster`` on a manager: restart it as the only manager of
        its swarm, with all the swarm's state (a swarm that lost its raft quorum comes back
        from one surviving manager). Workers stay; the other managers are out of raft."""
        assert self.state is not None
        # A locked manager is no manager until unlocked (Docker's answer too).
        if self.state.Role != NodeRole.MANAGER or self.locked:
            raise Unavailable(NOT_A_MANAGER)
        await self._stop_swarm()
        self.error = ""
        self.state.RemoteManagers = [self.state.AdvertiseAddr]
        self.swarm_dir.save(self.state)
        try:
            self._start_certificates()
            await self._start_manager(None, force_new_cluster=True)
            await self._start_mesh()
            await self._start_agent()
        except Exception as err:
            log.exception("could not force a new cluster")
            self.error = str(err)
            raise
        return self.state.NodeID

    async def join(self, req: dict[str, Any]) -> None:
        async with self._membership:
            if self.state is not None:
                raise Unavailable(SWARM_EXISTS)
            token = req.get("JoinToken") or ""
            remotes = req.get("RemoteAddrs") or []
            if not remotes:
                raise InvalidArgument("at least 1 RemoteAddr is required to join")
            try:
                parsed = tokens.parse(token)
            except ValueError:
                raise InvalidArgument(tokens.INVALID_TOKEN) from None
            listen_host, listen_port = resolve_listen_addr(self._requested_listen_addr(req))
            default_host = resolve_listen_addr(self.config.listen_addr)[0]
            adv_host, adv_port = resolve_advertise_addr(
                req.get("AdvertiseAddr") or "",
                listen_host if listen_host not in ("0.0.0.0", "::") else default_host,
                listen_port,
            )
            advertise = join_host_port(adv_host, adv_port)
            remote = remotes[0]
            if ":" not in remote:
                remote = join_host_port(remote, 2377)
            key = await asyncio.to_thread(new_node_key)
            resp = await self._request_certificate(
                remote, parsed.ca_digest, token, key.csr_pem, advertise, req
            )
            role = NodeRole(resp.role)
            self.swarm_dir.save_certificates(key.key_pem, resp.certificate, resp.root_ca)
            self.state = SwarmState(
                NodeID=resp.node_id,
                ClusterID=resp.cluster_id,
                Role=role,
                ListenAddr=join_host_port(listen_host, listen_port),
                AdvertiseAddr=advertise,
                RemoteManagers=[m.addr for m in resp.managers] or [remote],
            )
            self.swarm_dir.save(self.state)
            try:
                await self._run_swarm(bootstrap=None)
            except BaseException:
                await self._stop_swarm()
                self.swarm_dir.clear()
                self.state = None
                raise
            # As Docker's join does, answer once the node is in session with a manager (it
            # shows Ready from then on); a slow first session is no failure of the join.
            assert self.agent is not None  # started by _run_swarm
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.agent.connected.wait(), JOIN_TIMEOUT)

    async def _request_certificate(
        self,
        remote: str,
        ca_digest: str,
        token: str,
        csr: bytes,
        advertise: str,
        req: dict[str, Any],
    ) -> pb.IssueNodeCertificateResponse:
        join = await asyncio.to_thread(join_material, "shoal-joining-node", self.clock.now())
        return await request_certificate(
            remote,
            join,
            ca_digest,
            token,
            csr,
            advertise,
            req.get("Availability") or "active",
            self.description().model_dump_json().encode(),
            JOIN_TIMEOUT,
        )

    async def leave(self, force: bool) -> None:
        async with self._membership:
            if self.state is None:
                raise Unavailable(NO_SWARM)
            if self.locked and not force:
                raise Unavailable(SWARM_LOCKED_LEAVE)
            if self.locked:
                await self._retire_tasks_while_locked()
            if self.manager is not None and not force:
                raise Unavailable(self._manager_leave_warning())
            if self.agent is not None:
                try:
                    await self.agent.leave()
                except Exception:
                    log.exception("agent did not shut its tasks down cleanly")
            if self.overlay is not None:
                try:
                    await self._forget_docker_networks()
                    await self.overlay.leave()
                except Exception:
                    log.exception("overlay networks were not all removed")
            await self._stop_swarm()
            self.swarm_dir.clear()
            self.state = None
            self.error = ""
            self.locked = False
            self.kek = self.raft_kek = None

    # --- autolock ---------------------------------------------------------------------------

    async def unlock(self, unlock_key: str) -> None:
        """``swarm unlock``: with the key its keys are sealed under, a locked manager starts
        and rejoins its swarm. A wrong key changes nothing."""
        async with self._membership:
            if not self.locked:
                self._manager_or_refuse()  # Docker's error for a node that is no manager
                raise Conflict(NOT_LOCKED)
            try:
                kek = parse_human_readable(unlock_key)
            except ValueError as err:
                raise InvalidArgument(str(err)) from None
            opened = await asyncio.to_thread(self._keys_open_with, kek)
            if opened is None:
                raise Unauthenticated(INVALID_UNLOCK_KEY)
            self.locked = False
            self.kek, self.raft_kek = opened
            self.error = ""
            try:
                await self._run_swarm(bootstrap=None)
            except Exception as err:
                log.exception("could not start the swarm after unlocking")
                self.error = str(err)
                raise ShoalError(f"swarm component could not be started: {err}") from None
            log.info("swarm unlocked")

    def _raft_keys_file(self) -> Path:
        return self.swarm_dir.manager_dir / RAFT_KEYS_FILE

    def _keys_sealed(self) -> bool:
        """Whether this node keeps keys sealed under an unlock key (it is a locked manager
        until given it). Blocking: reads files."""
        return self.swarm_dir.node_key_sealed() or RaftKeys.is_sealed(self._raft_keys_file())

    def _keys_open_with(self, kek: bytes) -> tuple[bytes | None, bytes | None] | None:
        """The KEKs that open the node key and the raft data keys (None: kept plain), given
        the unlock key ``kek``; None when it does not open them. The node key opens with
        ``kek`` only; the raft keys may still be under the previous unlock key, which ``kek``
        opens, if the manager stopped while it moved them (``_reseal``). Blocking."""
        node_kek: bytes | None = None
        if self.swarm_dir.node_key_sealed():
            try:
                self.swarm_dir.load_certificates(kek)
            except WrongKEK:
                return None
            node_kek = kek
        raft_keys = self._raft_keys_file()
        if not RaftKeys.is_sealed(raft_keys):
            return node_kek, None
        previous = self.swarm_dir.load_previous_kek(kek)
        for candidate in (kek, previous):
            if candidate is None:
                continue
            try:
                RaftKeys.load(raft_keys, candidate)
            except InvalidUnlockKey:
                continue
            return node_kek, candidate
        return None

    async def _reseal(self, kek: bytes | None) -> None:
        """Seal this manager's keys under the unlock key ``kek`` (None: unseal them) and
        rotate its raft data key. Two files, so in an order that a stop at any point leaves
        openable with the key the cluster asks for: sealing, the node key first (the previous
        KEK kept under the new one until the raft keys follow); unsealing, the raft keys
        first (the node key, still under the old KEK, then opens both)."""
        manager, certs = self.manager, self.certs
        if manager is None or certs is None:
            raise Unavailable("this node runs no manager")
        replica = manager.replica
        if kek is not None:
            if self.raft_kek is not None:
                await asyncio.to_thread(self.swarm_dir.save_previous_kek, self.raft_kek, kek)
            certs.reseal(kek)  # in the loop: a renewal's install must not interleave
            self.kek = kek
            await replica.reseal_data_keys(kek)
            self.raft_kek = kek
            await asyncio.to_thread(self.swarm_dir.forget_previous_kek)
        else:
            await replica.reseal_data_keys(None)
            self.raft_kek = None
            certs.reseal(None)
            self.kek = None
            await asyncio.to_thread(self.swarm_dir.forget_previous_kek)

    def _unseal_worker_key(self) -> None:
        """Workers are not locked: a worker's key is kept plain."""
        if self.certs is not None:
            self.certs.reseal(None)
        self.kek = self.raft_kek = None
        self.swarm_dir.forget_previous_kek()

    def _manager_leave_warning(self) -> str:
        """Docker's refusal to let a manager leave without --force, with its quorum sums."""
        assert self.manager is not None
        msg = "You are attempting to leave the swarm on a node that is participating as a manager. "
        if self.manager.replica.leader_member() is not None:
            reachable = unreachable = 0
            for n in self.manager.store.view().nodes():
                if n.ManagerStatus is None:
                    continue
                if n.ManagerStatus.Reachability == Reachability.REACHABLE:
                    reachable += 1
                elif n.ManagerStatus.Reachability == Reachability.UNREACHABLE:
                    unreachable += 1
            if reachable - 2 <= unreachable:  # removing this manager loses the quorum
                if reachable == 1 and unreachable == 0:
                    return msg + (
                        "Removing the last manager erases all current state of the swarm. "
                        "Use `--force` to ignore this message. "
                    )
                msg += (
                    f"Removing this node leaves {reachable - 1} managers out of "
                    f"{reachable + unreachable}. Without a Raft quorum your swarm will be "
                    "inaccessible. "
                )
        else:
            msg += "Doing so may lose the consensus of your cluster. "
        return msg + (
            "The only way to restore a swarm that has lost consensus is to reinitialize it with "
            "`--force-new-cluster`. Use `--force` to suppress this message."
        )

    # --- promotion and demotion -------------------------------------------------------------

    def node_changed(self, node: Node) -> None:
        """The managers' view of this node (from the agent's session): start a manager when
        it was promoted, stop ours when it was demoted."""
        if self.state is None or node.ID != self.state.NodeID:
            return
        if node.Role == NodeRole.MANAGER and self.manager is None:
            self._spawn(self._promoted(), "promotion")
        elif node.Role == NodeRole.WORKER and self.manager is not None:
            # The leader sets the role only once raft has removed the member, and a removed
            # member may never hear that its removal committed (it is no longer sent the
            # log): this is how it learns, also when it was down while it happened.
            self._spawn(self._demoted(), "demotion")

    def _manager_removed(self) -> None:
        self._spawn(self._demoted(), "demotion")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._role_tasks.add(task)
        task.add_done_callback(self._role_tasks.discard)

    async def _promoted(self) -> None:
        async with self._membership:
            if self.state is None or self.manager is not None:
                return
            log.info("promoted: starting a manager")
            # Raft and the other managers accept only a manager certificate.
            try:
                await asyncio.wait_for(self._certificate_for_role(NodeRole.MANAGER), 60.0)
            except TimeoutError:
                log.error("promoted, but no manager certificate came: not starting a manager")
                return
            self.state.Role = NodeRole.MANAGER
            try:
                await self._start_manager(None)
            except Exception:
                log.exception("could not start the manager after promotion")
                await self._stop_manager()
                self.state.Role = NodeRole.WORKER
                return
            self.swarm_dir.save(self.state)

    async def _demoted(self) -> None:
        async with self._membership:
            if self.state is None or self.manager is None:
                return
            log.info("demoted: stopping the manager")
            manager, self.manager = self.manager, None
            await manager.stop()
            await self._stop_cluster_events()
            await asyncio.to_thread(shutil.rmtree, self.swarm_dir.manager_dir, True)
            self.state.Role = NodeRole.WORKER
            self.swarm_dir.save(self.state)
            self._unseal_worker_key()
            # Its manager certificate opens nothing now; a worker's replaces it.
            if self.certs is not None:
                self.certs.wake()

    # --- running the swarm parts ------------------------------------------------------------

    async def _run_swarm(self, bootstrap: Bootstrap | None) -> None:
        assert self.state is not None
        self._start_certificates()
        if self.state.Role == NodeRole.WORKER and self.kek is not None:
            # Demoted, but stopped before its key was unsealed: workers are not locked.
            self._unseal_worker_key()
        if self.state.Role == NodeRole.MANAGER:
            await self._start_manager(bootstrap)
        await self._start_mesh()
        await self._start_overlay()
        await self._start_agent()

    async def _start_manager(
        self, bootstrap: Bootstrap | None, force_new_cluster: bool = False
    ) -> None:
        assert self.state is not None
        self.manager = Manager(
            ManagerConfig(
                state_dir=self.swarm_dir.manager_dir,
                node_id=self.state.NodeID,
                listen_addr=self.state.ListenAddr,
                advertise_addr=self.state.AdvertiseAddr,
                transport=self.transport,
                cluster_id=self.state.ClusterID,
                components=manager_components(),
                servicers=manager_servicers(self.config.reconnect_grace),
                # Without raft state yet (joined with the manager token, or promoted), it
                # asks these managers for a seat.
                join_addrs=[a for a in self.state.RemoteManagers if a != self.state.AdvertiseAddr],
                raft_kek=self.raft_kek,
                node_kek=self.kek,
                reseal=self._reseal,
                slow_writes=slow_write_threshold(),
            ),
            self.clock,
        )
        self.manager.on_removed = self._manager_removed
        # Watching from before the manager starts, so that no change it makes is missed.
        self._cluster_events = asyncio.create_task(
            follow_store(self.manager.store, self.events), name="cluster events"
        )
        await self.manager.start(bootstrap, force_new_cluster=force_new_cluster)

    @property
    def transport(self) -> Transport:
        assert self.certs is not None
        return self.certs.transport

    def _start_certificates(self) -> None:
        """Serve the node's saved certificates and keep them renewed."""
        assert self.state is not None
        state = self.state
        transport = Transport(
            node_id=state.NodeID,
            # Managers let joining nodes through the handshake to reach the NodeCA service.
            join=join_material(JOIN_SERVER_NAME, self.clock.now()),
        )
        self.certs = NodeCertificates(
            self.swarm_dir,
            transport,
            self.clock,
            managers=lambda: list(dict.fromkeys([*self._manager_addrs(), *state.RemoteManagers])),
        )
        self.certs.kek = self.kek
        self.certs.load()
        self.certs.on_changed = self._certificates_changed
        self._certs_task = asyncio.create_task(self.certs.run(), name="certificate-renewal")

    def _manager_addrs(self) -> list[str]:
        """This node's own manager first, when it is one (signing needs no leader)."""
        if self.manager is not None and self.state is not None:
            return [self.state.AdvertiseAddr]
        return []

    def _certificates_changed(self) -> None:
        if self.agent is not None:
            self.agent.description_changed()  # its TLSInfo changed

    def roots_changed(self, roots: bytes) -> None:
        """The managers' trust bundle, from the session."""
        if self.certs is not None:
            self.certs.trust(roots)

    async def _certificate_for_role(self, role: NodeRole) -> None:
        """Renew until the certificate names ``role`` (the managers change the role first,
        then sign for it)."""
        assert self.certs is not None
        delay = 0.2
        while self.certs.role != role:
            try:
                await self.certs.renew()
            except Exception as err:
                log.info("waiting for a %s certificate: %s", role.value, err)
            if self.certs.role != role:
                await self.clock.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _start_mesh(self) -> None:
        assert self.state is not None
        addresses = self.config.mesh_addresses
        if addresses is None:
            host = resolve_listen_addr(self.state.ListenAddr)[0]
            if host not in ("0.0.0.0", "::"):
                addresses = [host]
        self.mesh = NodeMesh(
            MeshConfig(data_path=self.config.mesh_data_path, addresses=addresses),
            self.state.NodeID,
            self.clock,
        )
        try:
            await self.mesh.start()
        except Exception:
            log.exception("routing mesh did not start; published ports answer only on task nodes")
            self.mesh = None

    async def _start_overlay(self) -> None:
        state = self.state
        assert state is not None
        why = (
            overlay_support()
            if self.config.overlay
            else "overlay networks are turned off on this node (shoal daemon --no-overlay)"
        )
        if why:
            self.overlay_unavailable = why
            log.info("no overlay networks on this node: %s", why)
            return
        overlay = NodeOverlay(
            overlay_prefix(state.NodeID),
            local_addr=state.AdvertiseAddr.rsplit(":", 1)[0].strip("[]"),
            data_path_port=self.config.data_path_port,
        )
        try:
            await overlay.start()
        except Exception as err:
            log.exception("overlay networks did not start")
            self.overlay_unavailable = f"overlay networks did not start: {err}"
            return
        self.overlay = overlay
        self.overlay_unavailable = ""
        if self.engine_monitor is not None:
            driver = DockerNetworkDriver(
                overlay, self.swarm_dir.worker_dir / "docker-networks.json"
            )
            try:
                await driver.start()
            except OSError:
                log.exception("no docker network driver: container tasks stay off overlay networks")
            else:
                self.docker_driver = driver

    async def _forget_docker_networks(self) -> None:
        """Leaving: our Docker networks on the engine go (their containers went first)."""
        if self.docker_driver is None or self.engine_monitor is None:
            return
        engine = self.engine_monitor.engine
        prefix = f"shoal_{self.docker_driver.overlay.names.prefix}_"
        with contextlib.suppress(EngineError):
            for net in await engine.networks({"name": [prefix]}):
                if str(net.get("Name", "")).startswith(prefix):
                    with contextlib.suppress(EngineError):
                        await engine.remove_network(net["Id"])

    @property
    def engine_host(self) -> str | None:
        # The engine is the node's even where its tasks do not run there (--runtime process).
        if (self.config.engine_host or "").lower() == "none":
            return None
        return engine_host(self.config.engine_host)

    async def local_networks(self) -> list[dict[str, Any]]:
        """The engine's networks, but those that stand for our overlay networks on this node
        (the swarm's networks are listed as themselves)."""
        if self.engine_monitor is not None:
            engine, own = self.engine_monitor.engine, False
        elif self.engine_host is not None:
            engine, own = Engine(self.engine_host), True
        else:
            return []
        try:
            networks = await engine.networks({})
        except EngineError:
            return []
        finally:
            if own:
                await engine.close()
        return [n for n in networks if not str(n.get("Driver", "")).startswith("shoal-")]

    def networks_changed(self, netmap_json: dict) -> None:
        if self.overlay is None:
            return
        try:
            self.overlay.offer(NetworkMap.from_json(netmap_json))
        except (KeyError, TypeError, ValueError):
            log.exception("overlay: unreadable network map")

    def routes_changed(self, table_json: list) -> None:
        if self.mesh is not None:
            self.mesh.offer(table_json)

    async def _start_agent(self) -> None:
        self.agent = await self._build_agent(self.transport)
        self._agent_task = asyncio.create_task(self.agent.run(), name="agent")

    async def _build_agent(self, transport: Transport) -> Agent:
        state = self.state
        assert state is not None
        engine = self.engine_monitor.engine if self.engine_monitor is not None else None
        node = node_context(self.config, state)
        node.networking = self.overlay
        if self.overlay_unavailable:
            node.no_networking = self.overlay_unavailable
        try:
            # Where its tasks' secrets and configs are written: a tmpfs, never the disk.
            node.files = await asyncio.to_thread(TaskFilesRoot.open, state.NodeID)
        except (OSError, FilesUnavailable) as err:
            log.warning("secrets and configs unavailable on this node: %s", err)
        self._files = node.files
        executor = build_executor(
            node, self.swarm_dir.worker_dir / "tasks", engine, self.clock, self.docker_driver
        )
        return Agent(
            AgentConfig(
                node_id=state.NodeID,
                advertise_addr=state.AdvertiseAddr,
                managers=list(state.RemoteManagers) or [state.AdvertiseAddr],
                state_dir=self.swarm_dir.worker_dir,
                transport=transport,
                description=self.description,
                on_managers=self.remember_managers,
                on_node=self.node_changed,
                on_routes=self.routes_changed,
                on_networks=self.networks_changed,
                on_root_ca=self.roots_changed,
            ),
            executor,
            self.clock,
            node.dependencies,
        )

    async def _retire_tasks_while_locked(self) -> None:
        """``swarm leave --force`` on a locked manager: its tasks go, as on any leave
        (Docker removes a locked node's containers too), though its agent never ran: one
        is made for this alone, with no transport (it talks to no manager)."""
        agent = await self._build_agent(Transport(node_id=self.state.NodeID if self.state else ""))
        try:
            await agent.retire_saved_tasks()
        except Exception:
            log.exception("agent did not shut its tasks down cleanly")

    def remember_managers(self, addrs: list[str]) -> None:
        """The agent learnt the current manager list: keep it for the next start."""
        if self.state is not None and addrs and addrs != self.state.RemoteManagers:
            self.state.RemoteManagers = list(addrs)
            self.swarm_dir.save(self.state)

    async def _stop_swarm(self) -> None:
        if self._certs_task is not None:
            self._certs_task.cancel()
            await asyncio.gather(self._certs_task, return_exceptions=True)
            self._certs_task = None
        if self._agent_task is not None:
            self._agent_task.cancel()
            await asyncio.gather(self._agent_task, return_exceptions=True)
            self._agent_task = None
        self.agent = None
        files, self._files = self._files, None
        if files is not None:
            await asyncio.to_thread(files.close)
        if self.mesh is not None:
            await self.mesh.stop()
            self.mesh = None
        if self.docker_driver is not None:
            await self.docker_driver.stop()
            self.docker_driver = None
        if self.overlay is not None:
            await self.overlay.stop()
            self.overlay = None
        await self._stop_manager()
        self.certs = None

    async def _stop_manager(self) -> None:
        manager, self.manager = self.manager, None
        if manager is not None:
            await manager.stop()
        await self._stop_cluster_events()

    async def _stop_cluster_events(self) -> None:
        task, self._cluster_events = self._cluster_events, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


__all__ = ["NodeDaemon", "ShoalError"]
