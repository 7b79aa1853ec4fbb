"""The plan of a ``stack deploy``: the changes Docker's CLI would send, in its order (remove
the services pruned; create the missing networks; create or update secrets and configs;
create or update the services), made together in one sandbox, so each service's plan sees
the others' (a network the stack creates, room another service takes)."""

import copy
from dataclasses import dataclass, field
from typing import Any

from shoal.clock import Clock
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.plan.outcome import CREATE
from shoal.manager.plan.planner import Plan, ServiceChange, plan_changes
from shoal.store import MemoryStore

REMOVE = "remove"
UPDATE = "update"


@dataclass
class Versioned:
    """An object to create (``id`` empty) or to update at ``version``."""

    spec: dict[str, Any]
    id: str = ""
    version: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Versioned":
        return cls(
            dict(data.get("Spec") or {}), str(data.get("ID") or ""), int(data.get("Version") or 0)
        )


@dataclass
class StackChanges:
    remove: list[str] = field(default_factory=list)  # services, by ID
    networks: list[dict[str, Any]] = field(default_factory=list)  # NetworkSpecs to create
    secrets: list[Versioned] = field(default_factory=list)
    configs: list[Versioned] = field(default_factory=list)
    services: list[Versioned] = field(default_factory=list)


def with_reference_ids(control: ControlAPI, spec: dict[str, Any]) -> dict[str, Any]:
    """The CLI names secrets and configs the stack creates by name only (they have no ID
    before they are made): give those references the IDs they got in the sandbox (in a
    copy of ``spec``)."""
    spec = copy.deepcopy(spec)
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    for field_name, id_key, name_key, get in (
        ("Secrets", "SecretID", "SecretName", control.get_secret),
        ("Configs", "ConfigID", "ConfigName", control.get_config),
    ):
        for ref in container.get(field_name) or []:
            if isinstance(ref, dict) and not ref.get(id_key) and ref.get(name_key):
                ref[id_key] = get(ref[name_key]).ID
    return spec


async def plan_stack(store: MemoryStore, clock: Clock, stack: StackChanges) -> Plan:
    async def prepare(control: ControlAPI) -> None:
        for network in stack.networks:
            await control.create_network(network)
        for secret in stack.secrets:
            if secret.id:
                await control.update_secret(secret.id, secret.version, secret.spec)
            else:
                await control.create_secret(secret.spec)
        for config in stack.configs:
            if config.id:
                await control.update_config(config.id, config.version, config.spec)
            else:
                await control.create_config(config.spec)

    changes: list[ServiceChange] = []
    for service_id in stack.remove:

        async def remove(control: ControlAPI, service_id: str = service_id) -> str:
            await control.remove_service(service_id)
            return service_id

        changes.append(ServiceChange(REMOVE, remove, ref=service_id))
    for service in stack.services:
        if service.id:

            async def update(control: ControlAPI, s: Versioned = service) -> str:
                spec = with_reference_ids(control, s.spec)
                return (await control.update_service(s.id, s.version, spec)).ID

            changes.append(ServiceChange(UPDATE, update, ref=service.id))
        else:

            async def create(control: ControlAPI, s: Versioned = service) -> str:
                return (await control.create_service(with_reference_ids(control, s.spec))).ID

            changes.append(ServiceChange(CREATE, create))
    return await plan_changes(store, clock, changes, prepare)
