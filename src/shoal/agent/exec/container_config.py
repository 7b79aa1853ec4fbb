"""How a task becomes a Docker container, as Swarm makes it: the container's name and
labels, the body of the engine's create call, and what an inspect says back (container and
port status). Pure: no engine calls here."""

import ipaddress
from typing import Any

from shoal.agent.exec.base import NodeContext, TaskFailed
from shoal.agent.exec.template import expand, expand_env
from shoal.api.objects import ContainerStatus, Task
from shoal.api.specs import ContainerSpec, EndpointPortConfig, Mount
from shoal.api.types import PortProtocol, PublishMode
from shoal.errors import InvalidArgument

LABEL_PREFIX = "com.docker.swarm"
TASK_ID_LABEL = f"{LABEL_PREFIX}.task.id"
NODE_ID_LABEL = f"{LABEL_PREFIX}.node.id"

# Swarm's own errors (dockerexec), word for word.
IMAGE_REQUIRED = "dockerexec: image required"
CONTAINER_DESTROYED = "dockerexec: container destroyed"
CONTAINER_UNHEALTHY = "dockerexec: unhealthy container"

_DEFAULT_REGISTRY_PREFIXES = ("docker.io/library/", "index.docker.io/library/")
_DEFAULT_REGISTRY_HOSTS = ("docker.io/", "index.docker.io/")


def container_name(task: Task) -> str:
    """``<service>.<slot>.<task id>``, or ``<service>.<node id>.<task id>`` for global."""
    return task.full_name


def normalize_image(raw: str) -> str:
    """The image as Docker names it to the engine: the familiar name, with ``:latest``
    when no tag or digest is given (``busybox`` -> ``busybox:latest``)."""
    ref = raw.strip()
    if not ref or any(c.isspace() for c in ref):
        return raw
    for prefix in _DEFAULT_REGISTRY_PREFIXES:
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    else:
        for prefix in _DEFAULT_REGISTRY_HOSTS:
            if ref.startswith(prefix):
                ref = ref[len(prefix) :]
                break
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else ref + ":latest"


def system_labels(task: Task) -> dict[str, str]:
    return {
        f"{LABEL_PREFIX}.task": "",
        TASK_ID_LABEL: task.ID,
        f"{LABEL_PREFIX}.task.name": container_name(task),
        NODE_ID_LABEL: task.NodeID or "",
        f"{LABEL_PREFIX}.service.id": task.ServiceID,
        f"{LABEL_PREFIX}.service.name": task.ServiceAnnotations.Name,
    }


def container_labels(task: Task, spec: ContainerSpec) -> dict[str, str]:
    """The spec's labels, then the task's, then Swarm's own, which override all others."""
    labels = dict(spec.Labels or {})
    labels.update(task.Labels or {})
    labels.update(system_labels(task))
    return labels


def expand_spec(task: Task, node: NodeContext) -> ContainerSpec:
    """The task's container spec with its placeholders expanded, as swarmkit's
    ExpandContainerSpec: the environment's values, mount sources and targets, the hostname."""
    spec = task.Spec.ContainerSpec
    if spec is None or not spec.Image:
        raise TaskFailed(IMAGE_REQUIRED)
    spec = spec.clone()
    try:
        spec.Env = expand_env(list(spec.Env or []), task, node) if spec.Env else spec.Env
    except InvalidArgument as err:
        raise TaskFailed(f"expanding env failed: {err.message}") from None
    try:
        mounts = []
        for m in spec.Mounts or []:
            mounts.append(
                m.model_copy(
                    update={
                        "Source": expand(m.Source, task, node),
                        "Target": expand(m.Target, task, node),
                    }
                )
            )
        if spec.Mounts is not None:
            spec.Mounts = mounts
    except InvalidArgument as err:
        raise TaskFailed(f"expanding mounts failed: {err.message}") from None
    try:
        if spec.Hostname:
            spec.Hostname = expand(spec.Hostname, task, node)
    except InvalidArgument as err:
        raise TaskFailed(f"expanding hostname failed: {err.message}") from None
    return spec


def _host_ports(task: Task) -> list[EndpointPortConfig]:
    """The ports to bind on the node: host-mode ports on their published port, as Swarm does,
    and each ingress port on a free host port of the engine's choosing, for the routing mesh
    to send connections to (shoal's mesh reaches tasks through node addresses, not an
    overlay network)."""
    ports = (task.Endpoint.Ports if task.Endpoint is not None else None) or []
    out = []
    for p in ports:
        if p.TargetPort > 65535 or PortProtocol(p.Protocol) == PortProtocol.SCTP:
            continue
        if p.PublishMode == PublishMode.HOST:
            out.append(p)
        elif not any(  # an ingress port, unless also published in host mode
            q.PublishMode == PublishMode.HOST and _port_key(q) == _port_key(p) for q in ports
        ):
            out.append(p.model_copy(update={"PublishedPort": None}))
    return out


def _port_key(p: EndpointPortConfig) -> str:
    return f"{p.TargetPort}/{PortProtocol(p.Protocol).value}"


def bind_address(node_addr: str) -> str:
    """The host address published ports bind to: all of the host's, as Docker does, unless
    the node has a loopback address of its own (several nodes on one machine, each on its
    127.0.0.x): then only that one, so each node's ports are its own."""
    try:
        ip = ipaddress.ip_address(node_addr)
    except ValueError:
        return ""
    return node_addr if ip.is_loopback else ""


def _mount(m: Mount) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": m.Type, "Source": m.Source, "Target": m.Target}
    if m.ReadOnly:
        out["ReadOnly"] = True
    if m.Consistency:
        out["Consistency"] = m.Consistency
    if m.BindOptions:
        out["BindOptions"] = m.BindOptions
    if m.VolumeOptions:
        out["VolumeOptions"] = m.VolumeOptions
    if m.TmpfsOptions:
        out["TmpfsOptions"] = m.TmpfsOptions
    return out


def volume_create_requests(spec: ContainerSpec) -> list[dict[str, Any]]:
    """Volumes to create before the container: those of mounts naming a volume driver."""
    out = []
    for m in spec.Mounts or []:
        opts = m.VolumeOptions or {}
        driver = opts.get("DriverConfig")
        if m.Type != "volume" or not driver:
            continue
        out.append(
            {
                "Name": m.Source,
                "Driver": driver.get("Name") or "",
                "DriverOpts": driver.get("Options") or {},
                "Labels": opts.get("Labels") or {},
            }
        )
    return out


def _healthcheck(spec: ContainerSpec) -> dict[str, Any] | None:
    hc = spec.Healthcheck
    if hc is None:
        return None
    out: dict[str, Any] = {"Test": list(hc.Test or [])}
    for field in ("Interval", "Timeout", "Retries", "StartPeriod", "StartInterval"):
        value = getattr(hc, field)
        if value:
            out[field] = value
    return out


def _extra_hosts(hosts: list[str] | None) -> list[str]:
    # Swarm's Hosts are /etc/hosts lines ("IP name [aliases]"); the engine wants "name:IP".
    out = []
    for entry in hosts or []:
        parts = entry.split()
        if len(parts) > 1:
            out.append(f"{parts[1]}:{parts[0]}")
    return out


def create_body(
    task: Task,
    spec: ContainerSpec,
    host_ip: str = "",
    file_binds: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The body of ``POST /containers/create`` for the task (spec already expanded).
    ``file_binds``: its secret and config files, (path on the node, path in the container),
    each bound read-only as Docker mounts them."""
    config: dict[str, Any] = {
        "Image": normalize_image(spec.Image),
        "Labels": container_labels(task, spec),
        "Env": list(spec.Env or []),
    }
    if spec.Command:
        # Command replaces the image's entrypoint; Args are its arguments.
        config["Entrypoint"] = list(spec.Command)
        config["Cmd"] = list(spec.Args or [])
    elif spec.Args:
        config["Cmd"] = list(spec.Args)
    for key, value in (
        ("Hostname", spec.Hostname),
        ("WorkingDir", spec.Dir),
        ("User", spec.User),
        ("StopSignal", spec.StopSignal),
    ):
        if value:
            config[key] = value
    if spec.TTY:
        config["Tty"] = True
    if spec.OpenStdin:
        config["OpenStdin"] = True
    health = _healthcheck(spec)
    if health is not None:
        config["Healthcheck"] = health

    host_ports = _host_ports(task)
    if host_ports:
        config["ExposedPorts"] = {_port_key(p): {} for p in host_ports}

    limits = task.Spec.Resources.Limits
    host: dict[str, Any] = {"NetworkMode": "bridge"}
    if limits.MemoryBytes:
        host["Memory"] = limits.MemoryBytes
    if limits.NanoCPUs:
        host["NanoCpus"] = limits.NanoCPUs
    if limits.Pids:
        host["PidsLimit"] = limits.Pids
    if host_ports:
        bindings: dict[str, list[dict[str, str]]] = {}
        for p in host_ports:
            binding = {"HostIp": host_ip, "HostPort": str(p.PublishedPort or "")}
            bindings[_port_key(p)] = [binding]
        host["PortBindings"] = bindings
    mounts = [_mount(m) for m in spec.Mounts or []]
    mounts += [
        {"Type": "bind", "Source": source, "Target": target, "ReadOnly": True}
        for source, target in file_binds or []
    ]
    if mounts:
        host["Mounts"] = mounts
    if spec.ReadOnly:
        host["ReadonlyRootfs"] = True
    if spec.Init is not None:
        host["Init"] = spec.Init
    if spec.Groups:
        host["GroupAdd"] = list(spec.Groups)
    extra_hosts = _extra_hosts(spec.Hosts)
    if extra_hosts:
        host["ExtraHosts"] = extra_hosts
    if spec.Isolation and spec.Isolation != "default":
        host["Isolation"] = spec.Isolation
    log_driver = task.Spec.LogDriver
    if log_driver and log_driver.get("Name"):
        host["LogConfig"] = {
            "Type": log_driver["Name"],
            "Config": log_driver.get("Options") or {},
        }
    config["HostConfig"] = host
    return config


def stop_timeout(spec: ContainerSpec | None) -> int | None:
    """Seconds the engine waits after the stop signal before killing (None: its default)."""
    if spec is None or spec.StopGracePeriod is None:
        return None
    return spec.StopGracePeriod // 1_000_000_000


def has_healthcheck(inspect: dict[str, Any]) -> bool:
    test = ((inspect.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


def health_status(inspect: dict[str, Any]) -> str:
    """ "starting", "healthy", "unhealthy", or "" for a container without a healthcheck."""
    return ((inspect.get("State") or {}).get("Health") or {}).get("Status") or ""


def container_status(inspect: dict[str, Any] | None) -> ContainerStatus:
    if inspect is None:
        return ContainerStatus(ContainerID="", PID=0, ExitCode=0)
    state = inspect.get("State") or {}
    return ContainerStatus(
        ContainerID=inspect.get("Id", ""),
        PID=int(state.get("Pid") or 0),
        ExitCode=int(state.get("ExitCode") or 0),
    )


def port_status(inspect: dict[str, Any] | None) -> list[EndpointPortConfig]:
    """Every binding of every published port, as Swarm lists them (one entry per host
    address the engine bound: an IPv4 and an IPv6 binding make two)."""
    if inspect is None:
        return []
    ports = (inspect.get("NetworkSettings") or {}).get("Ports") or {}
    out = []
    for key, bindings in ports.items():
        number, _, proto = key.partition("/")
        for b in bindings or []:
            try:
                published = int(b.get("HostPort") or "")
            except ValueError:
                continue
            out.append(
                EndpointPortConfig(
                    Protocol=PortProtocol(proto or "tcp"),
                    TargetPort=int(number),
                    PublishedPort=published,
                    PublishMode=PublishMode.HOST,
                )
            )
    return out


def join_networks(
    body: dict[str, Any], networks: list[tuple[str, dict[str, str]]], dns: str
) -> None:
    """Put a container on our Docker networks (name and endpoint driver options, in the
    task's order) instead of Docker's default bridge; its embedded DNS forwards to ``dns``,
    the node's resolver. Only the first can be given at create on every API version (1.44
    takes several): the others are connected before the container starts."""
    name, options = networks[0]
    body["HostConfig"]["NetworkMode"] = name
    body["HostConfig"]["Dns"] = [dns]
    body["NetworkingConfig"] = {"EndpointsConfig": {name: {"DriverOpts": options}}}
