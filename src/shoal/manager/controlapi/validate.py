"""Checks on a service spec before it is stored, with swarmkit's messages."""

import re

from shoal.api.specs import ServiceSpec
from shoal.api.types import PublishMode, Runtime
from shoal.errors import InvalidArgument, ShoalError, Unimplemented, swarm_error
from shoal.manager import constraint
from shoal.manager.controlapi.validate_secrets import validate_config_refs, validate_secret_refs

_DNS_NAME = re.compile(r"^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$")
# A reference is [registry/]name[:tag][@digest]; Docker's parser is stricter, this catches
# what users actually mistype (spaces, upper case in the name, empty parts).
_IMAGE_REF = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?"
    r"(?:@[a-z0-9]+:[a-fA-F0-9]{32,})?$"
)
KNOWN_RUNTIMES = {Runtime.CONTAINER.value, Runtime.PROCESS.value}
MIN_HEALTH_DURATION_NS = 1_000_000  # 1ms


def _bad(desc: str) -> InvalidArgument:
    return swarm_error(InvalidArgument, desc)


def validate_name(name: str) -> None:
    if not name:
        raise _bad("meta: name must be provided")
    if not _DNS_NAME.match(name):
        raise _bad("name must be valid as a DNS name component")
    if len(name) > 63:
        raise _bad("name must be 63 characters or fewer")


def validate_service_spec(spec: ServiceSpec) -> None:
    validate_name(spec.Name)
    task = spec.TaskTemplate
    runtime = task.runtime
    if runtime not in KNOWN_RUNTIMES:
        raise swarm_error(Unimplemented, "RuntimeSpec: unimplemented runtime in service spec")
    cs = task.ContainerSpec
    if cs is None:
        raise _bad("TaskSpec: missing runtime")
    if runtime == Runtime.CONTAINER:
        if not cs.Image:
            raise _bad("ContainerSpec: image reference must be provided")
        if not _IMAGE_REF.match(cs.Image):
            raise _bad(f'ContainerSpec: "{cs.Image}" is not a valid repository/tag')
    elif not cs.Image and not cs.Command:
        raise _bad("ContainerSpec: a command to run must be provided")

    mounts = [m.Target for m in cs.Mounts or []]
    for target in mounts:
        if mounts.count(target) > 1:
            raise _bad(f"ContainerSpec: duplicate mount point: {target}")

    if cs.Healthcheck is not None:
        hc = cs.Healthcheck
        for field in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
            value = getattr(hc, field)
            if value and value < MIN_HEALTH_DURATION_NS:
                raise _bad(f"ContainerSpec: {field} in HealthConfig cannot be less than 1ms")
        if hc.Retries is not None and hc.Retries < 0:
            raise _bad("ContainerSpec: Retries in HealthConfig cannot be negative")

    res = task.Resources.Reservations
    if res.NanoCPUs is not None and 0 < res.NanoCPUs < 1_000_000:
        raise _bad(f"invalid cpu value {res.NanoCPUs / 1e9:g}: Must be at least 0.001")
    if res.MemoryBytes is not None and 0 < res.MemoryBytes < 4 * 1024 * 1024:
        raise _bad(f"invalid memory value {res.MemoryBytes}: Must be at least 4MiB")
    lim = task.Resources.Limits
    if lim.NanoCPUs is not None and 0 < lim.NanoCPUs < 1_000_000:
        raise _bad(f"invalid cpu value {lim.NanoCPUs / 1e9:g}: Must be at least 0.001")
    if lim.MemoryBytes is not None and 0 < lim.MemoryBytes < 4 * 1024 * 1024:
        raise _bad(f"invalid memory value {lim.MemoryBytes}: Must be at least 4MiB")

    rp = task.RestartPolicy
    if rp is not None:
        if rp.Delay is not None and rp.Delay < 0:
            raise _bad("TaskSpec: restart-delay cannot be negative")
        if rp.Window is not None and rp.Window < 0:
            raise _bad("TaskSpec: restart-window cannot be negative")

    try:
        constraint.parse(task.Placement.Constraints)
    except constraint.ConstraintError as err:
        # swarmkit passes the parser's error on unwrapped, so Docker shows code Unknown.
        raise swarm_error(ShoalError, str(err)) from None

    validate_secret_refs(cs)
    validate_config_refs(cs)

    for uc in (spec.UpdateConfig, spec.RollbackConfig):
        if uc is None:
            continue
        if uc.Delay is not None and uc.Delay < 0:
            raise _bad("TaskSpec: update-delay cannot be negative")
        if uc.Monitor is not None and uc.Monitor < 0:
            raise _bad("TaskSpec: update-monitor cannot be negative")
        if not 0 <= uc.MaxFailureRatio <= 1:
            raise _bad("TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1")

    mode = spec.Mode
    if not mode.kind:
        raise _bad("Unrecognized service mode")
    job = mode.ReplicatedJob
    if job is not None and job.MaxConcurrent < 0:
        raise _bad("Maximum concurrent jobs must not be negative")
    if job is not None and job.TotalCompletions < 0:
        raise _bad("Total completed jobs must not be negative")
    if mode.is_job and spec.UpdateConfig is not None:
        raise _bad("Jobs may not have an update config")
    if mode.Replicated is not None and mode.Replicated.Replicas < 0:
        raise _bad("Number of replicas must be non-negative")

    ep = spec.EndpointSpec
    if ep is not None and ep.Ports:
        if ep.Mode == "dnsrr" and any(p.PublishMode == PublishMode.INGRESS for p in ep.Ports):
            raise _bad(
                "EndpointSpec: port published with ingress mode can't be used with dnsrr mode"
            )
        seen = set()
        for p in ep.Ports:
            if not p.PublishedPort:
                continue
            key = (p.PublishedPort, p.Protocol, p.PublishMode)
            if key in seen:
                raise _bad("EndpointSpec: duplicate published ports provided")
            seen.add(key)
