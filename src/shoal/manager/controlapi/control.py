"""The control API: what users may read and change in the cluster, on the leader's store.

Mirrors swarmkit's control server plus the object lookup Docker's daemon adds in front of it
(a reference may be an ID, a name or an ID prefix). The HTTP layer turns Docker Engine API
requests into these calls; a follower manager forwards them to the leader.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shoal.api.ids import new_id
from shoal.api.objects import Cluster, JobStatus, Node, Service, Task
from shoal.api.service_defaults import fill_daemon_defaults
from shoal.api.specs import NodeSpec, ServiceSpec, SwarmSpec
from shoal.api.types import (
    NodeRole,
    NodeState,
    TaskState,
)
from shoal.ca import tokens
from shoal.ca.renewal import check_node_cert_expiry
from shoal.ca.rootca import create_root_ca
from shoal.clock import Clock, LoopTurns
from shoal.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfSequence,
    ShoalError,
    Unavailable,
    Unimplemented,
    swarm_error,
)
from shoal.manager.controlapi import resolve
from shoal.manager.controlapi.defaults import with_defaults
from shoal.manager.controlapi.filters import Filters
from shoal.manager.controlapi.jobs import (
    fill_job_defaults,
    next_job_iteration,
)
from shoal.manager.controlapi.names import random_name
from shoal.manager.controlapi.networks import (
    NetworkControl,
    check_ingress_present,
    resolve_service_networks,
)
from shoal.manager.controlapi.secrets import SecretControl, check_references_exist
from shoal.manager.controlapi.service_counts import ServiceCounts
from shoal.manager.controlapi.service_status import with_status
from shoal.manager.controlapi.sliced_read import sliced_read
from shoal.manager.controlapi.unlock_keys import updated_unlock_keys
from shoal.manager.controlapi.validate import validate_service_spec
from shoal.manager.controlapi.validate_secrets import check_config_targets_set
from shoal.manager.nodeca.rotation import begin_rotation, rotation_requested
from shoal.manager.orchestrator import apply_spec_update, begin_rollback, new_service_spec_version
from shoal.store import MemoryStore, ReadTx, Tx

# Hooks other components plug in (the port allocator, the updater's dirtiness check, raft
# membership); each defaults to doing nothing so the control API stands on its own in tests.
EndpointAllocator = Callable[[Tx, Service], None]
DirtyCheck = Callable[[Service, Task, Node | None], bool]
# Raises (with swarmkit's message) when demoting this node must not go ahead: it is no raft
# member, or removing it would lose the raft quorum.
DemotionCheck = Callable[[str], None]


M = TypeVar("M", bound=BaseModel)

TASK_STEP = 500  # tasks ``list_tasks_sliced`` matches between two looks at the clock

# Docker's daemon names a bad enum value after the Go type it failed to convert to.
_ENUM_NAMES = {
    "Condition": "RestartCondition",
    "Role": "Role",
    "Availability": "Availability",
    "Type": "MountType",
}


def _parse(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = str(first["loc"][-1]) if first["loc"] else ""
        if first["type"] == "enum" and field in _ENUM_NAMES:
            raise InvalidArgument(f'invalid {_ENUM_NAMES[field]}: "{first["input"]}"') from None
        if first["type"] == "enum" and field == "Mode":
            raise InvalidArgument(f'invalid resolution mode: "{first["input"]}"') from None
        loc = ".".join(str(p) for p in first["loc"])
        raise InvalidArgument(f"invalid {what}: {loc}: {first['msg']}") from None


def _store_errors(err: ShoalError) -> ShoalError:
    """Word store errors as Docker's daemon passes them on from swarmkit."""
    if isinstance(err, OutOfSequence):
        return swarm_error(OutOfSequence, "update out of sequence")
    return err


def _check_daemon_conversion(spec: ServiceSpec) -> None:
    """What Docker's daemon refuses, and what it fills in, as it converts a service spec
    for swarmkit."""
    container = spec.TaskTemplate.ContainerSpec
    if container is not None:
        check_config_targets_set(container.Configs)
    fill_daemon_defaults(spec)


class ControlAPI(NetworkControl, SecretControl):
    def __init__(
        self,
        store: MemoryStore,
        clock: Clock,
        allocate_endpoint: EndpointAllocator | None = None,
        is_task_dirty: DirtyCheck | None = None,
        check_demotion: DemotionCheck | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.allocate_endpoint = allocate_endpoint or (lambda tx, svc: None)
        self.is_task_dirty = is_task_dirty or (lambda svc, task, node: False)
        self.check_demotion = check_demotion or (lambda node_id: None)
        # Each service's task counts, kept as the store changes (`service ls`: issue 15).
        self.service_counts = ServiceCounts(store)

    async def _update(self, fn: Callable[[Tx], Any]) -> Any:
        try:
            # A user's write: let in before the orchestrators' batches waiting (write_lock).
            return await self.store.update(fn, urgent=True)
        except (OutOfSequence, Conflict) as err:
            raise _store_errors(err) from None

    # --- cluster ----------------------------------------------------------------------------

    def get_cluster(self) -> Cluster:
        cluster = self.store.view().cluster()
        if cluster is None:
            raise Unavailable("cluster not found")
        return cluster

    def get_unlock_key(self) -> bytes | None:
        """The managers' unlock key; None with autolock off (Docker shows no key then)."""
        return self.get_cluster().manager_unlock_key()

    async def update_cluster(
        self,
        version: int,
        spec: dict[str, Any],
        rotate_worker_token: bool = False,
        rotate_manager_token: bool = False,
        rotate_manager_unlock_key: bool = False,
    ) -> None:
        new_spec: SwarmSpec = _parse(SwarmSpec, spec, "swarm spec")
        check_node_cert_expiry(new_spec.CAConfig.NodeCertExpiry)
        if new_spec.Dispatcher.HeartbeatPeriod < 0:
            raise swarm_error(
                InvalidArgument, "heartbeat time period cannot be a negative duration"
            )
        limit = new_spec.Orchestration.TaskHistoryRetentionLimit
        if limit is not None and limit < 0:
            raise swarm_error(InvalidArgument, "task history retention limit cannot be negative")

        def fn(tx: Tx) -> None:
            current = tx.cluster()
            if current is None:
                raise Unavailable("cluster not found")
            if new_spec.Name != current.Spec.Name:
                raise swarm_error(InvalidArgument, "modification of cluster name is not allowed")
            cluster = current.clone()
            cluster.Version.Index = version
            cluster.Spec = new_spec
            ca = cluster.RootCA.CACert.encode()
            if rotate_worker_token:
                cluster.RootCA.JoinTokens.Worker = tokens.generate(ca)
            if rotate_manager_token:
                cluster.RootCA.JoinTokens.Manager = tokens.generate(ca)
            cluster.UnlockKeys = updated_unlock_keys(
                cluster.UnlockKeys,
                new_spec.EncryptionConfig.AutoLockManagers,
                rotate=rotate_manager_unlock_key,
            )
            if rotation_requested(cluster):
                # Begun here, as Swarm does, so that the caller sees it under way at once.
                cluster = begin_rotation(cluster, create_root_ca(self.clock.now()))
            tx.update(cluster)

        await self._update(fn)

    # --- nodes ------------------------------------------------------------------------------

    def list_nodes(self, filters: Filters | None = None) -> list[Node]:
        f = filters or Filters()
        f.validate({"name", "id", "label", "role", "membership", "node.label"})
        for role in f.get("role"):
            if role not in ("worker", "manager"):
                raise InvalidArgument(f"Invalid role filter: '{role}'")
        for membership in f.get("membership"):
            if membership not in ("accepted", "pending"):
                raise InvalidArgument(f"Invalid membership filter: '{membership}'")
        result = []
        for node in self.store.view().nodes():
            engine_labels = (node.Description.Engine.Labels if node.Description else None) or {}
            if not (
                f.match_prefix("name", node.name)
                and f.match_prefix("id", node.ID)
                and f.match_labels("label", engine_labels)
                and f.match_labels("node.label", node.Spec.Labels)
                and f.match_exact("role", node.Spec.Role.value)
                and f.match_exact("membership", "accepted")
            ):
                continue
            result.append(node)
        return result

    def get_node(self, ref: str) -> Node:
        return resolve.resolve_node(self.store.view(), ref)

    async def update_node(self, ref: str, version: int, spec: dict[str, Any]) -> Node:
        new_spec: NodeSpec = _parse(NodeSpec, spec, "node spec")
        node_id = self.get_node(ref).ID

        def fn(tx: Tx) -> Node:
            current = tx.get(Node, node_id)
            if current is None:
                raise swarm_error(NotFound, f"node {node_id} not found")
            if current.Spec.Role == NodeRole.MANAGER and new_spec.Role == NodeRole.WORKER:
                managers = [
                    n for n in tx.list(Node) if n.Spec.Role == NodeRole.MANAGER and n.ID != node_id
                ]
                if not managers:
                    raise swarm_error(
                        FailedPrecondition, "attempting to demote the last manager of the swarm"
                    )
                self.check_demotion(node_id)
            node = current.clone()
            node.Version.Index = version
            node.Spec = new_spec
            tx.update(node)
            return node

        return await self._update(fn)

    async def remove_node(self, ref: str, force: bool = False) -> None:
        node_id = self.get_node(ref).ID

        def fn(tx: Tx) -> None:
            node = tx.get(Node, node_id)
            if node is None:
                raise swarm_error(NotFound, f"node {node_id} not found")
            if node.Spec.Role == NodeRole.MANAGER or node.Role == NodeRole.MANAGER:
                raise swarm_error(
                    FailedPrecondition,
                    f"node {node_id} is a cluster manager and is a member of the raft cluster. "
                    "It must be demoted to worker before removal",
                )
            if not force and node.Status.State == NodeState.READY:
                raise swarm_error(
                    FailedPrecondition, f"node {node_id} is not down and can't be removed"
                )
            tx.delete(Node, node_id)

        await self._update(fn)

    # --- services ---------------------------------------------------------------------------

    async def create_service(self, spec: dict[str, Any]) -> Service:
        new_spec: ServiceSpec = _parse(ServiceSpec, spec, "service spec")
        if not new_spec.Name:
            new_spec.Name = random_name()
        if new_spec.TaskTemplate.Runtime is None:
            new_spec.TaskTemplate.Runtime = "container"
        _check_daemon_conversion(new_spec)
        fill_job_defaults(new_spec)
        validate_service_spec(new_spec)
        service = new_service_spec_version(Service(ID=new_id(), Spec=new_spec))
        if new_spec.Mode.is_job:
            service.JobStatus = JobStatus(LastExecution=self.clock.now())

        def fn(tx: Tx) -> Service:
            check_references_exist(tx, new_spec)
            if tx.service_by_name(new_spec.Name) is not None:
                raise swarm_error(
                    Conflict,
                    "name conflicts with an existing object: "
                    f"service {new_spec.Name} already exists",
                )
            resolve_service_networks(tx, service.Spec)
            check_ingress_present(tx, service.Spec)
            self.allocate_endpoint(tx, service)
            return tx.create(service)

        return await self._update(fn)

    def list_services(self, filters: Filters | None = None, status: bool = False) -> list[Service]:
        view = self.store.view()
        services = self._matching_services(view, filters)
        if not status:
            return services
        # The counts are kept as the store applies each change: read with no await since
        # the services were, they are of the same moment.
        counts = self.service_counts
        return [with_status(svc, counts.status(svc)) for svc in services]

    def list_services_if_counted(self, filters: Filters | None = None) -> list[Service] | None:
        """``list_services(filters, status=True)`` if the counts need not be taken from the
        tables first (None if they must: ``list_services_with_status``). It changes nothing,
        so the API's read lane calls it from its own thread."""
        services = self._matching_services(self.store.view(), filters)
        counts = self.service_counts
        result = []
        for svc in services:
            status = counts.status_if_counted(svc)
            if status is None:
                return None
            result.append(with_status(svc, status))
        return result

    @sliced_read
    async def list_services_with_status(self, filters: Filters | None = None) -> list[Service]:
        """``list_services(filters, status=True)``: what `GET /services?status=true` calls.
        The counts are kept per service as the store changes; when they must be taken from the
        tables (the first time, after a restore) the tasks are counted a step at a time, the
        event loop running in between."""
        await self.service_counts.ready()
        return self.list_services(filters, status=True)  # no await since: ready

    @staticmethod
    def _matching_services(view: ReadTx, filters: Filters | None) -> list[Service]:
        f = filters or Filters()
        f.validate({"name", "id", "label", "mode", "runtime"})
        result = []
        for svc in view.services():
            mode = svc.Spec.Mode.name
            if (
                f.match_prefix("name", svc.Spec.Name)
                and f.match_prefix("id", svc.ID)
                and f.match_labels("label", svc.Spec.Labels)
                and f.match_exact("mode", mode)
                and f.match_exact("runtime", svc.Spec.TaskTemplate.runtime)
            ):
                result.append(svc)
        return result

    def get_service(self, ref: str, insert_defaults: bool = False) -> Service:
        svc = resolve.resolve_service(self.store.view(), ref)
        return with_defaults(svc) if insert_defaults else svc

    async def update_service(
        self, ref: str, version: int, spec: dict[str, Any] | None, rollback: bool = False
    ) -> Service:
        service_id = self.get_service(ref).ID
        new_spec: ServiceSpec | None = None
        if not rollback:
            new_spec = _parse(ServiceSpec, spec or {}, "service spec")
            if new_spec.TaskTemplate.Runtime is None:
                new_spec.TaskTemplate.Runtime = "container"
            _check_daemon_conversion(new_spec)
            fill_job_defaults(new_spec)
            validate_service_spec(new_spec)

        def fn(tx: Tx) -> Service:
            current = tx.get(Service, service_id)
            if current is None:
                raise swarm_error(NotFound, f"service {service_id} not found")
            if rollback:
                try:
                    svc = begin_rollback(current, self.clock.now())
                except FailedPrecondition as err:
                    raise swarm_error(FailedPrecondition, err.message) from None
            else:
                assert new_spec is not None
                check_references_exist(tx, new_spec)
                if current.Spec.Mode.kind != new_spec.Mode.kind:
                    raise swarm_error(Unimplemented, "service mode change is not allowed")
                if current.Spec.Name != new_spec.Name:
                    raise swarm_error(Unimplemented, "renaming services is not supported")
                resolve_service_networks(tx, new_spec)
                check_ingress_present(tx, new_spec)
                svc = apply_spec_update(current, new_spec)
                if svc.Spec.Mode.is_job:
                    svc.JobStatus = next_job_iteration(svc.JobStatus, self.clock.now())
            # The client's version decides whether this write is in sequence.
            svc.Version.Index = version
            self.allocate_endpoint(tx, svc)
            tx.update(svc)
            return svc

        return await self._update(fn)

    async def remove_service(self, ref: str) -> None:
        service_id = self.get_service(ref).ID

        def fn(tx: Tx) -> None:
            if tx.get(Service, service_id) is None:
                raise swarm_error(NotFound, f"service {service_id} not found")
            tx.delete(Service, service_id)

        await self._update(fn)

    # --- tasks ------------------------------------------------------------------------------

    def list_tasks(self, filters: Filters | None = None) -> list[Task]:
        candidates, matches = self._task_query(filters)
        return [t for t in candidates if matches(t)]

    @sliced_read
    async def list_tasks_sliced(self, filters: Filters | None = None) -> list[Task]:
        """``list_tasks``, letting the event loop run every ``LOOP_SLICE`` of matching: over
        100,000 tasks it held a leader's loop 0.5-1 s under load (issue 15: the 1,000-node
        fleet's `GET /tasks`, among what cost that leader its leadership). The candidates are
        one moment's list, whose objects the store never changes (with ``_up-to-date``, a
        task's service and node are read as the matching reaches it)."""
        candidates, matches = self._task_query(filters)
        result: list[Task] = []
        turns = LoopTurns()
        for first in range(0, len(candidates), TASK_STEP):
            result.extend(t for t in candidates[first : first + TASK_STEP] if matches(t))
            await turns.between()
        return result

    def _task_query(self, filters: Filters | None) -> tuple[list[Task], Callable[[Task], bool]]:
        """The tasks ``filters`` may select (as Docker resolves services and nodes named), and
        the test each must pass; bad filters raise as Docker's do."""
        f = filters or Filters()
        f.validate(
            {"name", "id", "label", "service", "node", "desired-state", "_up-to-date", "runtime"}
        )
        view = self.store.view()
        # Services and nodes may be named by name or ID prefix, as Docker resolves them.
        service_ids = [resolve.resolve_service(view, s).ID for s in f.get("service")]
        node_ids = [resolve.resolve_node(view, n).ID for n in f.get("node")]
        desired = f.get("desired-state")
        for state in desired:
            if state not in TaskState._value2member_map_:
                raise InvalidArgument(f"Invalid desired-state filter: '{state}'")
        up_to_date = "_up-to-date" in f

        if service_ids:
            candidates = [t for sid in service_ids for t in view.tasks_of_service(sid)]
        elif node_ids:
            candidates = [t for nid in node_ids for t in view.tasks_on_node(nid)]
        else:
            candidates = view.list(Task)

        def matches(task: Task) -> bool:
            if not (
                f.match_prefix("name", task.name)
                and f.match_prefix("id", task.ID)
                # as in swarmkit: a task's labels filter matches its service's labels too
                # (``docker stack ps`` finds a stack's tasks by its namespace label)
                and f.match_labels("label", {**task.ServiceAnnotations.Labels, **task.Labels})
                and (not node_ids or task.NodeID in node_ids)
                and f.match_exact("desired-state", task.DesiredState.value)
                and f.match_exact("runtime", task.Spec.runtime)
            ):
                return False
            if up_to_date:
                svc = view.get(Service, task.ServiceID)
                if svc is None:
                    return False
                node = view.get(Node, task.NodeID) if task.NodeID else None
                if self.is_task_dirty(svc, task, node):
                    return False
            return True

        return candidates, matches

    def get_task(self, ref: str) -> Task:
        return resolve.resolve_task(self.store.view(), ref)
