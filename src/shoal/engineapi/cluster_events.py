"""The cluster's events, as Docker's daemon makes them from its manager's store watch since
17.06 (daemon/events.go): a message of type node, service, network, secret or config, scope
"swarm", action create, update or remove; the actor's name and, on an update, what changed
(``replicas.old``/``replicas.new``...). Its time is the object's CreatedAt on a create, its
UpdatedAt on an update, and now on a remove (the store keeps no time for that).

Every manager's store applies the whole log, so each manager sees every change; a worker has
no store and so no cluster events (Docker's daemon watches only its own manager).
"""

import datetime as dt
import logging

from shoal.api.objects import Config, Network, Node, Secret, Service, StoredObject
from shoal.engineapi.event_log import EventLog, Message, event_message, unix_nano
from shoal.store import MemoryStore
from shoal.store.proposal import Action
from shoal.store.watch import Event

log = logging.getLogger(__name__)

SCOPE = "swarm"
# What Docker's daemon asks its manager to watch.
KINDS = frozenset({"node", "service", "network", "secret", "config"})


def _node_attributes(node: Node, old: Node | None) -> dict[str, str]:
    attributes = {"name": node.name}
    if old is None:
        return attributes
    if node.Spec.Availability != old.Spec.Availability:
        attributes["availability.old"] = old.Spec.Availability.value
        attributes["availability.new"] = node.Spec.Availability.value
    if node.Role != old.Role:
        attributes["role.old"] = old.Role.value
        attributes["role.new"] = node.Role.value
    if node.Status.State != old.Status.State:
        attributes["state.old"] = old.Status.State.value
        attributes["state.new"] = node.Status.State.value
    if node.ManagerStatus is not None and old.ManagerStatus is not None:
        leader, was_leader = bool(node.ManagerStatus.Leader), bool(old.ManagerStatus.Leader)
        if leader != was_leader:
            attributes["leader.old"] = str(was_leader).lower()
            attributes["leader.new"] = str(leader).lower()
        if node.ManagerStatus.Reachability != old.ManagerStatus.Reachability:
            attributes["reachability.old"] = old.ManagerStatus.Reachability.value
            attributes["reachability.new"] = node.ManagerStatus.Reachability.value
    return attributes


def _service_attributes(service: Service, old: Service | None) -> dict[str, str]:
    attributes = {"name": service.Spec.Name}
    if old is None:
        return attributes
    new_cs, old_cs = service.Spec.TaskTemplate.ContainerSpec, old.Spec.TaskTemplate.ContainerSpec
    if new_cs is not None and old_cs is not None and new_cs.Image != old_cs.Image:
        attributes["image.old"] = old_cs.Image
        attributes["image.new"] = new_cs.Image
    new_rep, old_rep = service.Spec.Mode.Replicated, old.Spec.Mode.Replicated
    if new_rep is not None and old_rep is not None and new_rep.Replicas != old_rep.Replicas:
        attributes["replicas.old"] = str(old_rep.Replicas)
        attributes["replicas.new"] = str(new_rep.Replicas)
    if service.UpdateStatus is not None:
        state = _update_state(service)
        if old.UpdateStatus is None:
            attributes["updatestate.new"] = state
        elif state != _update_state(old):
            attributes["updatestate.old"] = _update_state(old)
            attributes["updatestate.new"] = state
    return attributes


def _update_state(service: Service) -> str:
    state = service.UpdateStatus.State if service.UpdateStatus is not None else None
    return state.value if state is not None else "unknown"


def _name_only(obj: Network | Secret | Config) -> dict[str, str]:
    return {"name": obj.Spec.Name}


def cluster_message(event: Event, now: dt.datetime) -> Message | None:
    """The message Docker's daemon publishes for one change of the store, or None for one
    it does not (tasks, the cluster object, commit markers)."""
    obj = event.obj
    if event.action is None or obj is None or obj.KIND not in KINDS:
        return None
    old = event.old if event.action is Action.UPDATE else None
    attributes = _attributes(obj, old)
    if event.action is Action.CREATE:
        when = obj.CreatedAt
    elif event.action is Action.UPDATE:
        when = obj.UpdatedAt
    else:
        when = now
    return event_message(obj.KIND, event.action.value, obj.ID, attributes, SCOPE, unix_nano(when))


def _attributes(obj: StoredObject, old: StoredObject | None) -> dict[str, str]:
    if isinstance(obj, Node):
        return _node_attributes(obj, old if isinstance(old, Node) else None)
    if isinstance(obj, Service):
        return _service_attributes(obj, old if isinstance(old, Service) else None)
    assert isinstance(obj, Network | Secret | Config)
    return _name_only(obj)


async def follow_store(store: MemoryStore, events: EventLog) -> None:
    """Publish the cluster's events from ``store`` until cancelled (while this node is a
    manager)."""
    with store.watch(kinds=KINDS) as sub:
        async for event in sub:
            message = cluster_message(event, store.clock.now())
            if message is not None:
                events.publish(message)
