"""A loaded compose project as the Engine API objects ``stack deploy`` sends, as Docker's CLI
converts it: everything named ``<stack>_<name>`` (unless it is external or given a ``name``)
and labelled ``com.docker.stack.namespace``; services that name no network on
``<stack>_default``; the service's name an alias on each of its networks.

shoal's own addition: a service (or the whole file) with ``x-shoal-runtime: process`` runs on
the process runtime, its ``image`` the program and ``command`` its arguments, as
``service create --runtime process PROGRAM ARG...`` does."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from shoal import golang
from shoal.api.types import Runtime
from shoal.compose.errors import ComposeError
from shoal.compose.project import Project
from shoal.compose.units import nano_cpus, ram_in_bytes

NAMESPACE_LABEL = "com.docker.stack.namespace"
IMAGE_LABEL = "com.docker.stack.image"
RUNTIME_KEY = "x-shoal-runtime"
RUNTIMES = {r.value for r in Runtime}
DEFAULT_NETWORK = "default"


@dataclass
class Stack:
    """What to make the cluster hold for one stack."""

    networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> create body
    external_networks: list[str] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)
    configs: list[dict[str, Any]] = field(default_factory=list)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> ServiceSpec


def scope(namespace: str, name: str) -> str:
    return f"{namespace}_{name}"


def stack_labels(namespace: str, labels: dict[str, str] | None) -> dict[str, str]:
    return {**(labels or {}), NAMESPACE_LABEL: namespace}


def _duration(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return golang.parse_duration(str(value))
    except (golang.GoError, ValueError) as error:
        raise ComposeError(str(error)) from None


def service_networks(service: dict[str, Any]) -> list[str]:
    return list(service.get("networks") or {}) or [DEFAULT_NETWORK]


def convert_networks(namespace: str, project: Project) -> tuple[dict[str, dict], list[str]]:
    used = sorted({n for s in project.services.values() for n in service_networks(s)})
    created: dict[str, dict] = {}
    external: list[str] = []
    for key in used:
        network = project.networks.get(key) or {}
        if network.get("external"):
            external.append(network.get("name") or key)
            continue
        body: dict[str, Any] = {
            "Labels": stack_labels(namespace, network.get("labels")),
            "Driver": network.get("driver") or "overlay",
        }
        if network.get("driver_opts"):
            body["Options"] = {k: str(v) for k, v in network["driver_opts"].items()}
        if network.get("internal"):
            body["Internal"] = True
        if network.get("attachable"):
            body["Attachable"] = True
        ipam = network.get("ipam") or {}
        if ipam.get("driver") or ipam.get("config"):
            body["IPAM"] = {
                "Driver": ipam.get("driver") or "default",
                "Config": [{"Subnet": c.get("subnet", "")} for c in ipam.get("config") or []],
            }
        name = network.get("name") or scope(namespace, key)
        created[name] = {"Name": name, **body}
    return created, external


def _file_objects(
    namespace: str, objects: dict[str, dict[str, Any]], kind: str, read_file: Any
) -> list[dict[str, Any]]:
    result = []
    for key, obj in sorted(objects.items()):
        if obj.get("external"):
            continue
        name = obj.get("name") or scope(namespace, key)
        spec: dict[str, Any] = {"Name": name, "Labels": stack_labels(namespace, obj.get("labels"))}
        if kind == "secret" and obj.get("driver"):
            spec["Data"] = ""
            spec["Driver"] = {"Name": obj["driver"], "Options": obj.get("driver_opts")}
        else:
            path = obj.get("file")
            if not path:
                raise ComposeError("open : no such file or directory")
            try:
                data = read_file(path)
            except OSError as error:
                reason = (error.strerror or str(error)).lower()
                raise ComposeError(f"open {path}: {reason}") from None
            spec["Data"] = base64.b64encode(data).decode()
        if obj.get("template_driver"):
            spec["Templating"] = {"Name": obj["template_driver"]}
        result.append(spec)
    return result


def _references(
    namespace: str, refs: list[dict[str, Any]], objects: dict[str, dict[str, Any]], kind: str
) -> list[dict[str, Any]]:
    result: list[tuple[str, dict[str, Any]]] = []
    for ref in refs:
        source = ref.get("source", "")
        if source not in objects:
            raise ComposeError(f'undefined {kind} "{source}"')
        obj = objects[source]
        name = obj.get("name") or scope(namespace, source)
        mode = ref.get("mode")
        file = {
            "Name": ref.get("target") or source,
            "UID": ref.get("uid") or "0",
            "GID": ref.get("gid") or "0",
            "Mode": 0o444 if mode is None else int(mode),
        }
        result.append((name, {"File": file, f"{kind.capitalize()}Name": name}))
    # sorted by name so that the same file gives the same spec (no needless update)
    return [ref for _, ref in sorted(result, key=lambda r: r[0])]


def _mounts(namespace: str, service: dict[str, Any], project: Project) -> list[dict[str, Any]]:
    mounts = []
    for volume in service.get("volumes") or []:
        kind = volume.get("type", "volume")
        source = volume.get("source") or ""
        mount: dict[str, Any] = {"Type": kind, "Target": volume.get("target", "")}
        if kind == "tmpfs":
            if source:
                raise ComposeError("invalid tmpfs source, source must be empty")
            size = (volume.get("tmpfs") or {}).get("size")
            if size:
                mount["TmpfsOptions"] = {"SizeBytes": int(size)}
        elif kind == "bind":
            if not source:
                raise ComposeError("invalid bind source, source cannot be empty")
            mount["Source"] = source
            propagation = (volume.get("bind") or {}).get("propagation")
            if propagation:
                mount["BindOptions"] = {"Propagation": propagation}
        elif kind == "volume":
            options: dict[str, Any] = {}
            if (volume.get("volume") or {}).get("nocopy"):
                options["NoCopy"] = True
            if source:
                if source not in project.volumes:
                    raise ComposeError(f'undefined volume "{source}"')
                declared = project.volumes[source]
                if declared.get("external"):
                    mount["Source"] = declared.get("name") or source
                else:
                    mount["Source"] = declared.get("name") or scope(namespace, source)
                    options["Labels"] = stack_labels(namespace, declared.get("labels"))
                    if declared.get("driver"):
                        options["DriverConfig"] = {
                            "Name": declared["driver"],
                            "Options": {
                                k: str(v) for k, v in (declared.get("driver_opts") or {}).items()
                            },
                        }
            if options:
                mount["VolumeOptions"] = options
        else:
            raise ComposeError("volume type must be volume, bind, or tmpfs")
        if volume.get("read_only"):
            mount["ReadOnly"] = True
        if volume.get("consistency"):
            mount["Consistency"] = volume["consistency"]
        mounts.append(mount)
    return mounts


def _healthcheck(health: dict[str, Any] | None) -> dict[str, Any] | None:
    if health is None:
        return None
    if health.get("disable"):
        if health.get("test"):
            raise ComposeError("test and disable can't be set at the same time")
        return {"Test": ["NONE"]}
    result: dict[str, Any] = {}
    if health.get("test"):
        result["Test"] = list(health["test"])
    for key, field_name in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
    ):
        value = _duration(health.get(key))
        if value:
            result[field_name] = value
    if health.get("retries"):
        result["Retries"] = int(health["retries"])
    return result


def _restart_policy(service: dict[str, Any]) -> dict[str, Any] | None:
    policy = (service.get("deploy") or {}).get("restart_policy")
    if policy is not None:
        result: dict[str, Any] = {}
        if policy.get("condition"):
            result["Condition"] = policy["condition"]
        for key, name in (("delay", "Delay"), ("window", "Window")):
            if policy.get(key) is not None:
                result[name] = _duration(policy[key])
        if policy.get("max_attempts") is not None:
            result["MaxAttempts"] = policy["max_attempts"]
        return result
    restart = service.get("restart") or ""
    name, _, count = restart.partition(":")
    attempts = int(count) if count.isdigit() and int(count) > 0 else None
    if name in ("", "no"):
        return None
    if name in ("always", "unless-stopped"):
        condition = "any"
    elif name == "on-failure":
        condition = "on-failure"
    else:
        raise ComposeError(f"invalid restart policy: unknown policy '{name}'")
    return {"Condition": condition, **({"MaxAttempts": attempts} if attempts else {})}


def _update_config(source: dict[str, Any] | None) -> dict[str, Any] | None:
    if source is None:
        return None
    result: dict[str, Any] = {"Parallelism": source.get("parallelism", 1)}
    if source.get("delay") is not None:
        result["Delay"] = _duration(source["delay"])
    if source.get("failure_action"):
        result["FailureAction"] = source["failure_action"]
    if source.get("monitor") is not None:
        result["Monitor"] = _duration(source["monitor"])
    result["MaxFailureRatio"] = source.get("max_failure_ratio", 0)
    if source.get("order"):
        result["Order"] = source["order"]
    return result


def _resources(deploy: dict[str, Any]) -> dict[str, Any]:
    source = deploy.get("resources") or {}
    result: dict[str, Any] = {}
    for key, name in (("limits", "Limits"), ("reservations", "Reservations")):
        part = source.get(key)
        if part is None:
            continue
        converted: dict[str, Any] = {}
        if part.get("cpus"):
            converted["NanoCPUs"] = nano_cpus(part["cpus"])
        if part.get("memory"):
            converted["MemoryBytes"] = ram_in_bytes(part["memory"])
        if part.get("pids"):
            converted["Pids"] = part["pids"]
        generic = [
            {
                "DiscreteResourceSpec": {
                    "Kind": (g.get("discrete_resource_spec") or {}).get("kind", ""),
                    "Value": (g.get("discrete_resource_spec") or {}).get("value", 0),
                }
            }
            for g in part.get("generic_resources") or []
        ]
        if generic:
            converted["GenericResources"] = generic
        result[name] = converted
    return result


def _mode(deploy: dict[str, Any]) -> dict[str, Any]:
    mode = deploy.get("mode") or "replicated"
    replicas = deploy.get("replicas")
    if mode in ("global", "global-job") and replicas is not None:
        raise ComposeError("replicas can only be used with replicated or replicated-job mode")
    if mode == "global":
        return {"Global": {}}
    if mode == "global-job":
        return {"GlobalJob": {}}
    if mode == "replicated-job":
        count = 1 if replicas is None else replicas
        return {"ReplicatedJob": {"MaxConcurrent": count, "TotalCompletions": count}}
    if mode == "replicated":
        return {"Replicated": {"Replicas": 1 if replicas is None else replicas}}
    raise ComposeError(f"Unknown mode: {mode}")


def _capabilities(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    result = []
    for value in values:
        upper = value.upper()
        result.append(upper if upper == "ALL" or upper.startswith("CAP_") else f"CAP_{upper}")
    return result


def convert_service(
    namespace: str, service: dict[str, Any], project: Project, runtime: str | None
) -> dict[str, Any]:
    name = service["name"]
    deploy = service.get("deploy") or {}
    image = service.get("image") or ""
    container: dict[str, Any] = {
        "Image": image,
        "Labels": stack_labels(namespace, service.get("labels")),
    }
    optional = {
        "Command": service.get("entrypoint"),
        "Args": service.get("command"),
        "Hostname": service.get("hostname"),
        "Env": sorted(
            k if v is None else f"{k}={v}" for k, v in (service.get("environment") or {}).items()
        ),
        "Dir": service.get("working_dir"),
        "User": service.get("user"),
        "Mounts": _mounts(namespace, service, project),
        "StopGracePeriod": _duration(service.get("stop_grace_period")),
        "StopSignal": service.get("stop_signal"),
        "Healthcheck": _healthcheck(service.get("healthcheck")),
        "Hosts": [
            f"{ip} {host}"
            for host, sep, ip in (h.partition(":") for h in service.get("extra_hosts") or [])
            if sep
        ],
        "TTY": service.get("tty"),
        "OpenStdin": service.get("stdin_open"),
        "ReadOnly": service.get("read_only"),
        "Init": service.get("init"),
        "Isolation": service.get("isolation"),
        "Sysctls": service.get("sysctls"),
        "CapabilityAdd": _capabilities(service.get("cap_add")),
        "CapabilityDrop": _capabilities(service.get("cap_drop")),
        "Secrets": _references(namespace, service.get("secrets") or [], project.secrets, "secret"),
        "Configs": _references(namespace, service.get("configs") or [], project.configs, "config"),
    }
    if service.get("dns") or service.get("dns_search"):
        optional["DNSConfig"] = {
            k: v
            for k, v in (("Nameservers", service.get("dns")), ("Search", service.get("dns_search")))
            if v
        }
    ulimits = service.get("ulimits") or {}
    if ulimits:
        optional["Ulimits"] = [
            {
                "Name": key,
                "Hard": value if isinstance(value, int) else value["hard"],
                "Soft": value if isinstance(value, int) else value["soft"],
            }
            for key, value in sorted(ulimits.items())
        ]
    for key, value in optional.items():
        if value is not None and value != [] and value != {}:
            container[key] = value
    task: dict[str, Any] = {"ContainerSpec": container, "Resources": _resources(deploy)}
    restart = _restart_policy(service)
    if restart is not None:
        task["RestartPolicy"] = restart
    placement_source = deploy.get("placement") or {}
    placement: dict[str, Any] = {}
    if placement_source.get("constraints"):
        placement["Constraints"] = list(placement_source["constraints"])
    if placement_source.get("preferences"):
        placement["Preferences"] = [
            {"Spread": {"SpreadDescriptor": p.get("spread", "")}}
            for p in placement_source["preferences"]
        ]
    if placement_source.get("max_replicas_per_node"):
        placement["MaxReplicas"] = placement_source["max_replicas_per_node"]
    task["Placement"] = placement
    networks = []
    for key in service_networks(service):
        declared = project.networks.get(key)
        if declared is None and key != DEFAULT_NETWORK:
            raise ComposeError(f'undefined network "{key}"')
        attachment = (service.get("networks") or {}).get(key) or {}
        target = (declared or {}).get("name") or scope(namespace, key)
        aliases = [*list(attachment.get("aliases") or []), name]
        networks.append({"Target": target, "Aliases": aliases})
    task["Networks"] = sorted(networks, key=lambda n: n["Target"])
    if service.get("logging"):
        logging = service["logging"]
        task["LogDriver"] = {"Name": logging.get("driver", "")}
        if logging.get("options"):
            task["LogDriver"]["Options"] = {k: str(v) for k, v in logging["options"].items()}
    if runtime:
        task["Runtime"] = runtime
    spec: dict[str, Any] = {
        "Name": scope(namespace, name),
        "Labels": {**stack_labels(namespace, deploy.get("labels")), IMAGE_LABEL: image},
        "TaskTemplate": task,
        "Mode": _mode(deploy),
    }
    update = _update_config(deploy.get("update_config"))
    if update is not None:
        spec["UpdateConfig"] = update
    rollback = _update_config(deploy.get("rollback_config"))
    if rollback is not None:
        spec["RollbackConfig"] = rollback
    # Docker's CLI leaves the mode out when the file does not say it (the daemon's default)
    endpoint: dict[str, Any] = {}
    if deploy.get("endpoint_mode"):
        endpoint["Mode"] = deploy["endpoint_mode"].lower()
    ports = []
    for p in service.get("ports") or []:
        port = {"Protocol": p["protocol"], "TargetPort": p["target"]}
        if p["published"]:
            port["PublishedPort"] = p["published"]
        port["PublishMode"] = p["mode"]
        ports.append(port)
    # by published port, as Docker 20.10's CLI sorts them (those without one first)
    ports.sort(key=lambda port: port.get("PublishedPort", 0))
    if ports:
        endpoint["Ports"] = ports
    spec["EndpointSpec"] = endpoint
    return spec


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def check_images(project: Project) -> None:
    for name, service in project.services.items():
        if not service.get("image"):
            raise ComposeError(f"invalid image reference for service {name}: no image specified")


def convert(namespace: str, project: Project, read_file: Any = _read_bytes) -> Stack:
    """The whole stack; a file read for a secret or config goes through ``read_file``. A
    top-level ``x-shoal-runtime`` is the default of every service."""
    check_images(project)
    default_runtime = project.extensions.get(RUNTIME_KEY)
    stack = Stack()
    stack.networks, stack.external_networks = convert_networks(namespace, project)
    stack.secrets = _file_objects(namespace, project.secrets, "secret", read_file)
    stack.configs = _file_objects(namespace, project.configs, "config", read_file)
    for name, service in project.services.items():
        runtime = service.get(RUNTIME_KEY) or default_runtime
        if runtime is not None and runtime not in RUNTIMES:
            # shoal's own key, so shoal's words; found before anything is sent
            raise ComposeError(
                f'service {name}: {RUNTIME_KEY} must be "container" or "process", not {runtime!r}'
            )
        try:
            stack.services[name] = convert_service(namespace, service, project, runtime)
        except ComposeError as error:
            raise ComposeError(f"service {name}: {error}") from None
    return stack
