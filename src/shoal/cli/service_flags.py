"""The flags of ``service create`` and ``service update``, parsed the way Docker's CLI parses
them (its messages, its defaults), and applied to a service spec in the Engine API's shape."""

from __future__ import annotations

import csv
import re
import shlex
from collections.abc import Callable
from typing import Any

import click

from shoal import golang
from shoal.cli.framework import BYTES, DURATION, FLOAT, INT64, NANO_CPUS, UINT64, GoValue

# --- values with their own syntax ---------------------------------------------------------


def parse_env(value: str) -> str:
    """opts.ValidateEnv: NAME=value, or NAME alone (kept as it is)."""
    name = value.split("=", 1)[0]
    if not name.strip():
        raise golang.GoError(f"invalid environment variable: {value}")
    return value


def _port_number(text: str, what: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise golang.GoError(f"invalid {what}: {text}") from None
    if not 0 <= number <= 65535:
        raise golang.GoError(f"invalid {what}: {text}")
    return number


def parse_publish(value: str) -> list[dict]:
    """opts.PortOpt: "8080:80", "80", "8080:80/udp", "8000-8001:80-81", or the long form
    "mode=host,target=80,published=8080,protocol=udp"."""
    if "=" in value:
        port: dict[str, Any] = {"Protocol": "tcp", "PublishMode": "ingress"}
        for field in value.split(","):
            key, _, val = field.partition("=")
            key = key.strip().lower()
            if not _:
                raise golang.GoError(f"invalid field {field} must be a key=value pair")
            if key == "mode":
                if val not in ("ingress", "host"):
                    raise golang.GoError(
                        f"invalid publish mode value ({val}): must be either 'ingress' or 'host'"
                    )
                port["PublishMode"] = val
            elif key == "target":
                port["TargetPort"] = _port_number(val, "target port")
            elif key == "published":
                port["PublishedPort"] = _port_number(val, "published port")
            elif key == "protocol":
                if val not in ("tcp", "udp", "sctp"):
                    raise golang.GoError(f"invalid protocol value '{val}'")
                port["Protocol"] = val
            else:
                raise golang.GoError(f"invalid field key {key}")
        if not port.get("TargetPort"):
            raise golang.GoError('missing mandatory field "target"')
        return [port]
    spec, _, proto = value.partition("/")
    proto = proto or "tcp"
    published, _, target = spec.rpartition(":")
    if ":" in published:
        published = published.rsplit(":", 1)[1]  # an IP in front: Swarm ignores it
    targets = _port_range(target, "containerPort")
    publisheds = _port_range(published, "hostPort") if published else []
    ports = []
    for i, t in enumerate(targets):
        port = {"Protocol": proto, "TargetPort": t, "PublishMode": "ingress"}
        if publisheds:
            port["PublishedPort"] = publisheds[i] if len(publisheds) > 1 else publisheds[0] + i
        ports.append(port)
    return ports


def _port_range(text: str, what: str) -> list[int]:
    start, _, end = text.partition("-")
    first = _port_number(start, what)
    if not end:
        return [first]
    last = _port_number(end, what)
    if last < first:
        raise golang.GoError(f"invalid range specified for {what}: {text}")
    return list(range(first, last + 1))


def parse_mount(value: str) -> dict:
    """opts.MountOpt: type=bind,source=/a,target=/b,readonly."""
    mount: dict[str, Any] = {"Type": "volume"}
    for field in value.split(","):
        key, eq, val = field.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro") and not eq:
            mount["ReadOnly"] = True
            continue
        if not eq:
            raise golang.GoError(f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            mount["Type"] = val.lower()
        elif key in ("source", "src"):
            mount["Source"] = val
        elif key in ("target", "dst", "destination"):
            mount["Target"] = val
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = golang.parse_bool(val)
        elif key == "tmpfs-size":
            mount.setdefault("TmpfsOptions", {})["SizeBytes"] = golang.parse_int(val)
        elif key == "volume-driver":
            mount.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})["Name"] = val
        else:
            raise golang.GoError(f"unexpected key '{key}' in '{field}'")
    if not mount.get("Target"):
        raise golang.GoError("target is required")
    return mount


_LONG_SYNTAX = re.compile(r"\w+=\w+(,\w+=\w+)*")


def parse_network(value: str) -> dict:
    """opts.NetworkOpt: a network's name or ID, or the long form
    "name=app,alias=web,driver-opt=k=v"."""
    if not _LONG_SYNTAX.search(value):
        return {"Target": value}
    attachment: dict[str, Any] = {"Target": ""}
    for field in next(csv.reader([value])):
        key, sep, val = field.partition("=")
        if not sep:
            raise golang.GoError(f"invalid field {field}")
        key = key.lower()
        if key == "name":
            attachment["Target"] = val
        elif key == "alias":
            attachment.setdefault("Aliases", []).append(val)
        elif key == "driver-opt":
            opt, opt_sep, opt_val = val.partition("=")
            if not opt_sep:
                raise golang.GoError(f"invalid key value pair format in driver options: {val}")
            attachment.setdefault("DriverOpts", {})[opt.strip().lower()] = opt_val.strip()
        else:
            raise golang.GoError(f"invalid field key {key}")
    if not attachment["Target"]:
        raise golang.GoError("network name/id is not specified")
    return attachment


def _parse_file_reference(value: str, kind: str) -> dict:
    """opts.SecretOpt and opts.ConfigOpt: a name ("db-pass"), or the long form
    "source=db-pass,target=pw,uid=0,gid=0,mode=0400". The target defaults to the name, the
    owner to root, the mode to 0444; the ID is looked up once every flag is read."""
    name_key = "SecretName" if kind == "secret" else "ConfigName"
    file: dict[str, Any] = {"Name": "", "UID": "0", "GID": "0", "Mode": 0o444}
    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration) as err:
        raise golang.GoError(str(err)) from None
    if len(fields) == 1 and "=" not in fields[0]:
        return {"File": dict(file, Name=fields[0]), name_key: fields[0]}
    source = ""
    for field in fields:
        key, sep, val = field.partition("=")
        if not sep or not key:
            raise golang.GoError(f"invalid field '{field}' must be a key=value pair")
        key = key.lower()
        if key in ("source", "src"):
            source = val
        elif key == "target":
            file["Name"] = val
        elif key == "uid":
            file["UID"] = val
        elif key == "gid":
            file["GID"] = val
        elif key == "mode":
            try:
                file["Mode"] = golang.parse_uint(val, 0, 32)
            except golang.GoError as err:
                raise golang.GoError(f"invalid mode specified: {err}") from None
        else:
            raise golang.GoError(f"invalid field in {kind} request: {key}")
    if not source:
        raise golang.GoError("source is required")
    if not file["Name"]:
        file["Name"] = source
    return {"File": file, name_key: source}


def parse_secret(value: str) -> dict:
    return _parse_file_reference(value, "secret")


def parse_config(value: str) -> dict:
    return _parse_file_reference(value, "config")


ENV = GoValue("env", parse_env)
SECRET = GoValue("secret", parse_secret)
CONFIG = GoValue("config", parse_config)
NETWORK = GoValue("network", parse_network)
PUBLISH = GoValue("port", parse_publish)
MOUNT = GoValue("mount", parse_mount)


# --- the flags -------------------------------------------------------------------------------

Option = Callable[[Callable], Callable]


def _options(*options: Option) -> Callable[[Callable], Callable]:
    def decorate(fn: Callable) -> Callable:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _update_config_options(prefix: str, what: str) -> list[Option]:
    return [
        click.option(
            f"--{prefix}-parallelism",
            type=UINT64,
            help=f"Maximum number of tasks {what} simultaneously (0 to {what} all at once)",
        ),
        click.option(
            f"--{prefix}-delay", type=DURATION, help=f"Delay between {what}s (ns|us|ms|s|m|h)"
        ),
        click.option(
            f"--{prefix}-failure-action",
            help='Action on failure ("pause", "continue"'
            + (', "rollback")' if prefix == "update" else ")"),
        ),
        click.option(
            f"--{prefix}-monitor",
            type=DURATION,
            help=f"Duration after each task {what} to monitor for failure (ns|us|ms|s|m|h)",
        ),
        click.option(
            f"--{prefix}-max-failure-ratio",
            type=FLOAT,
            help="Failure rate to tolerate during an update",
        ),
        click.option(f"--{prefix}-order", help='Update order ("start-first", "stop-first")'),
    ]


COMMON = _options(
    click.option(
        "-d",
        "--detach",
        is_flag=True,
        help="Exit immediately instead of waiting for the service to converge",
    ),
    click.option("-q", "--quiet", is_flag=True, help="Suppress progress output"),
    click.option("--replicas", type=UINT64, help="Number of tasks"),
    click.option(
        "--max-concurrent",
        type=UINT64,
        help="Number of job tasks to run concurrently (default equal to --replicas)",
    ),
    click.option(
        "--restart-condition", help='Restart when condition is met ("none", "on-failure", "any")'
    ),
    click.option(
        "--restart-delay", type=DURATION, help="Delay between restart attempts (ns|us|ms|s|m|h)"
    ),
    click.option(
        "--restart-max-attempts", type=UINT64, help="Maximum number of restarts before giving up"
    ),
    click.option(
        "--restart-window",
        type=DURATION,
        help="Window used to evaluate the restart policy (ns|us|ms|s|m|h)",
    ),
    click.option("--reserve-cpu", type=NANO_CPUS, help="Reserve CPUs"),
    click.option("--reserve-memory", type=BYTES, help="Reserve Memory"),
    click.option("--limit-cpu", type=NANO_CPUS, help="Limit CPUs"),
    click.option("--limit-memory", type=BYTES, help="Limit Memory"),
    click.option("--limit-pids", type=INT64, help="Limit maximum number of processes"),
    click.option(
        "--stop-grace-period",
        type=DURATION,
        help="Time to wait before force killing a container (ns|us|ms|s|m|h)",
    ),
    click.option("--stop-signal", help="Signal to stop the container"),
    click.option("--hostname", help="Container hostname"),
    click.option("-w", "--workdir", help="Working directory inside the container"),
    click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    click.option(
        "--init",
        "init",
        flag_value=True,
        default=None,
        help="Use an init inside each service container",
    ),
    click.option(
        "--read-only",
        "read_only",
        flag_value=True,
        default=None,
        help="Mount the container's root filesystem as read only",
    ),
    click.option("--health-cmd", help="Command to run to check health"),
    click.option(
        "--health-interval", type=DURATION, help="Time between running the check (ms|s|m|h)"
    ),
    click.option(
        "--health-retries", type=INT64, help="Consecutive failures needed to report unhealthy"
    ),
    click.option(
        "--health-timeout", type=DURATION, help="Maximum time to allow one check to run (ms|s|m|h)"
    ),
    click.option(
        "--health-start-period",
        type=DURATION,
        help="Start period for the container to initialize before counting retries towards unstable (ms|s|m|h)",
    ),
    click.option(
        "--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK"
    ),
    click.option(
        "--replicas-max-per-node",
        "max_replicas",
        type=UINT64,
        help="Maximum number of tasks per node (default 0 = unlimited)",
    ),
    click.option("--endpoint-mode", help="Endpoint mode (vip or dnsrr)"),
    click.option(
        "--no-resolve-image",
        is_flag=True,
        help="Do not query the registry to resolve image digest and supported platforms",
    ),
    click.option(
        "--with-registry-auth",
        is_flag=True,
        help="Send registry authentication details to swarm agents",
    ),
    *_update_config_options("update", "update"),
    *_update_config_options("rollback", "rollback"),
)

CREATE = _options(
    click.option("--name", default="", help="Service name"),
    click.option(
        "--mode",
        default="replicated",
        help='Service mode ("replicated", "global", "replicated-job", "global-job")',
    ),
    click.option(
        "--runtime",
        default=None,
        help='Where tasks run: "container" (an image, the default) or "process" (a command line on the node)',
    ),
    click.option("-e", "--env", "env", multiple=True, type=ENV, help="Set environment variables"),
    click.option("-l", "--label", "labels", multiple=True, help="Service labels"),
    click.option("--container-label", "container_labels", multiple=True, help="Container labels"),
    click.option("--constraint", "constraints", multiple=True, help="Placement constraints"),
    click.option(
        "-p",
        "--publish",
        "publish",
        multiple=True,
        type=PUBLISH,
        help="Publish a port as a node port",
    ),
    click.option(
        "--mount",
        "mounts",
        multiple=True,
        type=MOUNT,
        help="Attach a filesystem mount to the service",
    ),
    click.option("--entrypoint", help="Overwrite the default ENTRYPOINT of the image"),
    click.option("--network", "networks", multiple=True, type=NETWORK, help="Network attachments"),
    click.option(
        "--secret",
        "secrets",
        multiple=True,
        type=SECRET,
        help="Specify secrets to expose to the service",
    ),
    click.option(
        "--config",
        "configs",
        multiple=True,
        type=CONFIG,
        help="Specify configurations to expose to the service",
    ),
)

UPDATE = _options(
    click.option("--image", help="Service image tag"),
    click.option("--args", "args_", help="Service command args"),
    click.option(
        "--env-add", multiple=True, type=ENV, help="Add or update an environment variable"
    ),
    click.option("--env-rm", multiple=True, help="Remove an environment variable"),
    click.option("--label-add", multiple=True, help="Add or update a service label"),
    click.option("--label-rm", multiple=True, help="Remove a label by its key"),
    click.option("--container-label-add", multiple=True, help="Add or update a container label"),
    click.option("--container-label-rm", multiple=True, help="Remove a container label by its key"),
    click.option("--constraint-add", multiple=True, help="Add or update a placement constraint"),
    click.option("--constraint-rm", multiple=True, help="Remove a constraint"),
    click.option(
        "--publish-add", multiple=True, type=PUBLISH, help="Add or update a published port"
    ),
    click.option("--publish-rm", multiple=True, help="Remove a published port by its target port"),
    click.option(
        "--mount-add", multiple=True, type=MOUNT, help="Add or update a mount on a service"
    ),
    click.option("--mount-rm", multiple=True, help="Remove a mount by its target path"),
    click.option("--network-add", multiple=True, type=NETWORK, help="Add a network"),
    click.option("--network-rm", multiple=True, help="Remove a network"),
    click.option(
        "--secret-add", multiple=True, type=SECRET, help="Add or update a secret on a service"
    ),
    click.option("--secret-rm", multiple=True, help="Remove a secret"),
    click.option(
        "--config-add",
        multiple=True,
        type=CONFIG,
        help="Add or update a config file on a service",
    ),
    click.option("--config-rm", multiple=True, help="Remove a configuration file"),
    click.option("--force", is_flag=True, help="Force update even if no changes require it"),
    click.option("--rollback", is_flag=True, help="Rollback to previous specification"),
    click.option("--entrypoint", help="Overwrite the default ENTRYPOINT of the image"),
)


# --- applying them ---------------------------------------------------------------------------


def _labels(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _flatten(values: tuple) -> list:
    out: list = []
    for v in values:
        out.extend(v if isinstance(v, list) else [v])
    return out


def apply_common(spec: dict, f: dict[str, Any]) -> None:
    """The flags create and update share; only those the user gave change the spec."""
    task = spec.setdefault("TaskTemplate", {})
    cs = task.setdefault("ContainerSpec", {})
    restart_fields = {
        "restart_condition": "Condition",
        "restart_delay": "Delay",
        "restart_max_attempts": "MaxAttempts",
        "restart_window": "Window",
    }
    for flag, field in restart_fields.items():
        if f.get(flag) is not None:
            task.setdefault("RestartPolicy", {})[field] = f[flag]
    resources = {
        ("reserve_cpu", "Reservations", "NanoCPUs"),
        ("reserve_memory", "Reservations", "MemoryBytes"),
        ("limit_cpu", "Limits", "NanoCPUs"),
        ("limit_memory", "Limits", "MemoryBytes"),
        ("limit_pids", "Limits", "Pids"),
    }
    for flag, kind, field in sorted(resources):
        if f.get(flag) is not None:
            task.setdefault("Resources", {}).setdefault(kind, {})[field] = f[flag]
    simple = {
        "stop_grace_period": "StopGracePeriod",
        "stop_signal": "StopSignal",
        "hostname": "Hostname",
        "workdir": "Dir",
        "user": "User",
        "init": "Init",
        "read_only": "ReadOnly",
    }
    for flag, field in simple.items():
        if f.get(flag) is not None:
            cs[field] = f[flag]
    health = cs.get("Healthcheck") or {}
    if f.get("no_healthcheck"):
        health = {"Test": ["NONE"]}
    if f.get("health_cmd") is not None:
        health["Test"] = ["CMD-SHELL", f["health_cmd"]] if f["health_cmd"] else []
    for flag, field in (
        ("health_interval", "Interval"),
        ("health_timeout", "Timeout"),
        ("health_start_period", "StartPeriod"),
        ("health_retries", "Retries"),
    ):
        if f.get(flag) is not None:
            health[field] = f[flag]
    if health:
        cs["Healthcheck"] = health
    if f.get("max_replicas") is not None:
        task.setdefault("Placement", {})["MaxReplicas"] = f["max_replicas"]
    if f.get("endpoint_mode"):
        spec.setdefault("EndpointSpec", {})["Mode"] = f["endpoint_mode"]
    for prefix, key in (("update", "UpdateConfig"), ("rollback", "RollbackConfig")):
        for flag, field in (
            ("parallelism", "Parallelism"),
            ("delay", "Delay"),
            ("failure_action", "FailureAction"),
            ("monitor", "Monitor"),
            ("max_failure_ratio", "MaxFailureRatio"),
            ("order", "Order"),
        ):
            value = f.get(f"{prefix}_{flag}")
            if value is not None:
                spec.setdefault(key, {})[field] = value


def build_create_spec(f: dict[str, Any], argv: list[str]) -> dict:
    """`service create` flags and positional arguments to a ServiceSpec."""
    from shoal.cli.framework import CLIError

    mode = f["mode"]
    if mode not in ("replicated", "global", "replicated-job", "global-job"):
        raise CLIError(f"Unknown mode: {mode}, only replicated and global supported")
    if f.get("replicas") is not None and mode not in ("replicated", "replicated-job"):
        raise CLIError("replicas can only be used with replicated or replicated-job mode")
    if f.get("max_concurrent") is not None and mode != "replicated-job":
        raise CLIError("max-concurrent can only be used with replicated-job mode")
    if mode.endswith("-job") and any(
        f.get(f"{prefix}_{flag}") is not None
        for prefix in ("update", "rollback")
        for flag in (
            "parallelism",
            "delay",
            "failure_action",
            "monitor",
            "max_failure_ratio",
            "order",
        )
    ):
        raise CLIError("update and rollback configuration is not supported for jobs")
    spec: dict[str, Any] = {"Name": f["name"], "Labels": _labels(f["labels"])}
    cs: dict[str, Any] = {"Image": argv[0]}
    if len(argv) > 1:
        cs["Args"] = argv[1:]
    if f.get("entrypoint"):
        cs["Command"] = shlex.split(f["entrypoint"])
    if f["env"]:
        cs["Env"] = list(f["env"])
    if f["container_labels"]:
        cs["Labels"] = _labels(f["container_labels"])
    if f["mounts"]:
        cs["Mounts"] = list(f["mounts"])
    task: dict[str, Any] = {"ContainerSpec": cs, "ForceUpdate": 0}
    if f.get("runtime"):
        task["Runtime"] = f["runtime"]
    if f["constraints"]:
        task["Placement"] = {"Constraints": list(f["constraints"])}
    spec["TaskTemplate"] = task
    if mode == "global":
        spec["Mode"] = {"Global": {}}
    elif mode == "replicated-job":
        # As Docker's CLI: MaxConcurrent defaults to --replicas; what is left unset (0) the
        # daemon fills (MaxConcurrent 1, TotalCompletions = MaxConcurrent).
        replicas = f.get("replicas")
        concurrent = f.get("max_concurrent")
        spec["Mode"] = {
            "ReplicatedJob": {
                "MaxConcurrent": concurrent if concurrent is not None else (replicas or 0),
                "TotalCompletions": replicas or 0,
            }
        }
    elif mode == "global-job":
        spec["Mode"] = {"GlobalJob": {}}
    else:
        replicas = f.get("replicas")
        spec["Mode"] = {"Replicated": {"Replicas": 1 if replicas is None else replicas}}
    # Docker's CLI always sends these two, so services look the same whichever CLI made them.
    cs["Init"] = bool(f.get("init"))
    spec["EndpointSpec"] = {"Mode": (f.get("endpoint_mode") or "vip").lower()}
    ports = _flatten(f["publish"])
    if ports:
        spec["EndpointSpec"]["Ports"] = ports
    apply_common(spec, f)
    return spec


def _env_key(entry: str) -> str:
    return entry.split("=", 1)[0]


def apply_update(spec: dict, f: dict[str, Any]) -> None:
    """`service update` flags to an existing spec (in place)."""
    from shoal.cli.framework import CLIError

    task = spec.setdefault("TaskTemplate", {})
    cs = task.setdefault("ContainerSpec", {})
    mode = spec.get("Mode") or {}
    if f.get("replicas") is not None:
        if "Replicated" in mode:
            mode["Replicated"]["Replicas"] = f["replicas"]
        elif "ReplicatedJob" in mode:
            mode["ReplicatedJob"]["TotalCompletions"] = f["replicas"]
        else:
            raise CLIError("replicas can only be used with replicated mode")
    # Docker's CLI ignores --max-concurrent on a service that is not a replicated job.
    if f.get("max_concurrent") is not None and "ReplicatedJob" in mode:
        mode["ReplicatedJob"]["MaxConcurrent"] = f["max_concurrent"]
    if f.get("image"):
        cs["Image"] = f["image"]
    if f.get("args_") is not None:
        cs["Args"] = shlex.split(f["args_"])
    if f.get("entrypoint") is not None:
        cs["Command"] = shlex.split(f["entrypoint"])
    if f["env_add"] or f["env_rm"]:
        env = list(cs.get("Env") or [])
        remove = set(f["env_rm"]) | {_env_key(e) for e in f["env_add"]}
        env = [e for e in env if _env_key(e) not in remove]
        env += list(f["env_add"])
        cs["Env"] = sorted(env)
    if f["label_add"] or f["label_rm"]:
        labels = dict(spec.get("Labels") or {})
        for key in f["label_rm"]:
            labels.pop(key, None)
        labels.update(_labels(f["label_add"]))
        spec["Labels"] = labels
    if f["container_label_add"] or f["container_label_rm"]:
        labels = dict(cs.get("Labels") or {})
        for key in f["container_label_rm"]:
            labels.pop(key, None)
        labels.update(_labels(f["container_label_add"]))
        cs["Labels"] = labels
    if f["constraint_add"] or f["constraint_rm"]:
        placement = task.setdefault("Placement", {})
        constraints = [c for c in placement.get("Constraints") or [] if c not in f["constraint_rm"]]
        for c in f["constraint_add"]:
            if c not in constraints:
                constraints.append(c)
        placement["Constraints"] = sorted(constraints)
    if f["publish_add"] or f["publish_rm"]:
        endpoint = spec.setdefault("EndpointSpec", {"Mode": "vip"})
        ports = list(endpoint.get("Ports") or [])
        for text in f["publish_rm"]:
            number, _, proto = text.partition("/")
            ports = [
                p
                for p in ports
                if not (str(p.get("TargetPort")) == number or str(p.get("PublishedPort")) == number)
                or (proto and p.get("Protocol", "tcp") != proto)
            ]
        for port in _flatten(f["publish_add"]):
            ports = [
                p
                for p in ports
                if not (
                    port.get("PublishedPort")
                    and p.get("PublishedPort") == port.get("PublishedPort")
                    and p.get("Protocol", "tcp") == port["Protocol"]
                )
            ]
            ports.append(port)
        endpoint["Ports"] = ports
    if f["mount_add"] or f["mount_rm"]:
        mounts = [m for m in cs.get("Mounts") or [] if m.get("Target") not in f["mount_rm"]]
        for mount in f["mount_add"]:
            mounts = [m for m in mounts if m.get("Target") != mount["Target"]]
            mounts.append(mount)
        cs["Mounts"] = mounts
    if f.get("force"):
        task["ForceUpdate"] = int(task.get("ForceUpdate") or 0) + 1
    apply_common(spec, f)
