"""Later compose files over earlier ones, as Docker merges them: a service is merged key by
key (mappings such as environment and labels key by key, ports, volumes, secrets and configs
item by item, other lists appended, scalars and commands replaced); a network, volume, secret
or config of the same name is replaced whole."""

from __future__ import annotations

from typing import Any

from shoal.compose.project import Project

# Lists whose items an override file replaces one by one, by these keys.
_KEYED_LISTS = {
    "ports": lambda p: (p.get("published"), p.get("target"), p.get("protocol")),
    "volumes": lambda v: v.get("target"),
    "secrets": lambda s: s.get("source"),
    "configs": lambda c: c.get("source"),
}
# Values replaced whole even though they are lists or mappings.
_REPLACED = {"command", "entrypoint", "test", "logging", "image", "build"}


def _merge_value(key: str, base: Any, override: Any) -> Any:
    if key in _REPLACED:
        return override
    if key in _KEYED_LISTS and isinstance(base, list) and isinstance(override, list):
        identify = _KEYED_LISTS[key]
        merged = {identify(item): item for item in base}
        for item in override:
            merged[identify(item)] = item
        return list(merged.values())
    if isinstance(base, dict) and isinstance(override, dict):
        result = dict(base)
        for k, v in override.items():
            result[k] = _merge_value(k, base[k], v) if k in base else v
        return result
    if isinstance(base, list) and isinstance(override, list):
        return base + [item for item in override if item not in base]
    return override


def merge_service(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        if key in base and value in (None, [], {}):
            continue  # a key the override file did not give
        result[key] = _merge_value(key, base[key], value) if key in base else value
    return result


def merge_projects(projects: list[Project]) -> Project:
    merged = projects[0]
    for project in projects[1:]:
        for name, service in project.services.items():
            if name in merged.services:
                merged.services[name] = merge_service(merged.services[name], service)
            else:
                merged.services[name] = service
        merged.networks.update(project.networks)
        merged.volumes.update(project.volumes)
        merged.secrets.update(project.secrets)
        merged.configs.update(project.configs)
        merged.extensions.update(project.extensions)
    merged.services = dict(sorted(merged.services.items()))
    return merged
