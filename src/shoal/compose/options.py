"""Service keys that Docker's ``stack deploy`` refuses, ignores with a warning, or calls
deprecated, with Docker's words for each."""

from typing import Any

from shoal.compose.errors import ComposeError

# Refused before anything else is read.
FORBIDDEN = {
    "extends": "Support for `extends` is not implemented yet.",
    "volume_driver": (
        "Instead of setting the volume driver on the service, define a volume using the "
        "top-level `volumes` option and specify the driver there."
    ),
    "volumes_from": (
        "To share a volume between services, define it using the top-level `volumes` option "
        "and reference it from each service that shares it using the service-level `volumes` "
        "option."
    ),
    "cpu_quota": "Set resource limits using deploy.resources",
    "cpu_shares": "Set resource limits using deploy.resources",
    "cpuset": "Set resource limits using deploy.resources",
    "mem_limit": "Set resource limits using deploy.resources",
    "memswap_limit": "Set resource limits using deploy.resources",
}

# Accepted by the schema, but a swarm service has no such thing.
UNSUPPORTED = (
    "build",
    "cgroupns_mode",
    "cgroup_parent",
    "devices",
    "domainname",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "restart",
    "security_opt",
    "shm_size",
    "userns_mode",
)

DEPRECATED = {
    "container_name": "Setting the container name is not supported.",
    "expose": (
        "Exposing ports is unnecessary - services on the same network can access each "
        "other's containers on any port."
    ),
}


def _services(config: dict[str, Any]) -> list[dict[str, Any]]:
    services = config.get("services")
    if not isinstance(services, dict):
        return []
    return [s for s in services.values() if isinstance(s, dict)]


def check_forbidden(config: dict[str, Any]) -> None:
    found = sorted({key for s in _services(config) for key in s if key in FORBIDDEN})
    if found:
        lines = "".join(f"{key}: {FORBIDDEN[key]}\n" for key in found)
        raise ComposeError(f"Compose file contains unsupported options:\n\n{lines}")


def warnings(configs: list[dict[str, Any]]) -> list[str]:
    """Docker's two warnings, each as it writes it on stderr (its own line ends included)
    after the files load."""
    keys = {key for config in configs for s in _services(config) for key in s}
    result = []
    unsupported = sorted(keys & set(UNSUPPORTED))
    if unsupported:
        result.append(f"Ignoring unsupported options: {', '.join(unsupported)}\n\n")
    deprecated = sorted(keys & set(DEPRECATED))
    if deprecated:
        lines = "".join(f"{key}: {DEPRECATED[key]}\n\n" for key in deprecated)
        result.append(f"Ignoring deprecated options:\n\n{lines}")
    return result
