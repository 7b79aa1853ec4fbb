"""``service inspect --pretty``: Docker's human-readable service report, field for field."""

import time

from shoal.cli.framework import out
from shoal.cli.humanize import bytes_size, human_duration
from shoal.golang import GoTime, format_duration, format_float64


def _update_config(lines: list[str], title: str, order_label: str, config: dict | None) -> None:
    if config is None:
        return
    lines.append(f"{title}:")
    lines.append(f" Parallelism:\t{config.get('Parallelism', 0)}")
    if config.get("Delay"):
        lines.append(f" Delay:\t\t{format_duration(config['Delay'])}")
    lines.append(f" On failure:\t{config.get('FailureAction', '')}")
    if config.get("Monitor"):
        lines.append(f" Monitoring Period: {format_duration(config['Monitor'])}")
    lines.append(f" Max failure ratio: {format_float64(float(config.get('MaxFailureRatio') or 0))}")
    lines.append(f" {order_label}{config.get('Order', '')}")


def _cpus(nano: int) -> str:
    return format_float64(nano / 1e9)


def print_service_pretty(service: dict, network_names: dict[str, str] | None = None) -> None:
    """``network_names``: network ID -> name, for the networks the service is on."""
    spec = service.get("Spec") or {}
    task = spec.get("TaskTemplate") or {}
    cs = task.get("ContainerSpec") or {}
    mode = spec.get("Mode") or {}
    lines = ["", f"ID:\t\t{service['ID']}", f"Name:\t\t{spec.get('Name', '')}"]
    labels = spec.get("Labels") or {}
    if labels:
        lines.append("Labels:")
        for key, value in sorted(labels.items()):
            lines.append(f" {key}={value}" if value else f" {key}")
    if "Global" in mode:
        lines.append("Service Mode:\tGlobal")
    elif "Replicated" in mode:
        lines.append("Service Mode:\tReplicated")
        replicas = (mode.get("Replicated") or {}).get("Replicas")
        if replicas is not None:
            lines.append(f" Replicas:\t{replicas}")
    else:
        lines.append("Service Mode:")
    status = service.get("UpdateStatus")
    if status:
        now = time.time_ns()
        lines.append("UpdateStatus:")
        lines.append(f" State:\t\t{status.get('State', '')}")
        started = GoTime.parse(status.get("StartedAt") or "")
        if started is not None and not started.is_zero():
            lines.append(f" Started:\t{human_duration(now - started.ns)} ago")
        if status.get("State") == "completed":
            done = GoTime.parse(status.get("CompletedAt") or "")
            if done is not None:
                lines.append(f" Completed:\t{human_duration(now - done.ns)} ago")
        lines.append(f" Message:\t{status.get('Message', '')}")
    placement = task.get("Placement") or {}
    lines.append("Placement:")
    if placement.get("Constraints"):
        lines.append(f" Constraints:\t[{' '.join(placement['Constraints'])}]")
    if placement.get("MaxReplicas"):
        lines.append(f" Max Replicas Per Node:   {placement['MaxReplicas']}")
    _update_config(lines, "UpdateConfig", "Update order:      ", spec.get("UpdateConfig"))
    _update_config(lines, "RollbackConfig", "Rollback order:    ", spec.get("RollbackConfig"))
    if task.get("Runtime") == "process":  # shoal's own runtime; containers print as Docker's
        lines.append(f"Runtime:\t{task['Runtime']}")
    lines.append("ContainerSpec:")
    lines.append(f" Image:\t\t{cs.get('Image', '')}")
    if cs.get("Args"):
        lines.append(" Args:\t\t" + "".join(f"{a} " for a in cs["Args"]))
    if cs.get("Env"):
        lines.append(" Env:\t\t" + "".join(f"{e} " for e in cs["Env"]))
    if cs.get("Dir"):
        lines.append(f" Dir:\t\t{cs['Dir']}")
    if cs.get("Init") is not None:
        lines.append(f" Init:\t\t{'true' if cs['Init'] else 'false'}")
    if cs.get("User"):
        lines.append(f" User: {cs['User']}")
    mounts = cs.get("Mounts") or []
    if mounts:
        lines.append("Mounts:")
        for m in mounts:
            lines.append(f" Target:\t{m.get('Target', '')}")
            lines.append(f"  Source:\t{m.get('Source', '')}")
            lines.append(f"  ReadOnly:\t{'true' if m.get('ReadOnly') else 'false'}")
            lines.append(f"  Type:\t\t{m.get('Type', '')}")
    for title, refs, name_key in (
        ("Configs", cs.get("Configs"), "ConfigName"),
        ("Secrets", cs.get("Secrets"), "SecretName"),
    ):
        if refs:
            lines.append(f"{title}:")
            for ref in refs:
                lines.append(f" Target:\t{(ref.get('File') or {}).get('Name', '')}")
                lines.append(f"  Source:\t{ref.get(name_key, '')}")
    resources = task.get("Resources")
    if resources is not None:
        lines.append("Resources:")
        for kind, title, limit in (
            ("Reservations", "Reservations", False),
            ("Limits", "Limits", True),
        ):
            block = resources.get(kind) or {}
            if block.get("NanoCPUs") or block.get("MemoryBytes"):
                lines.append(f" {title}:")
                if block.get("NanoCPUs"):
                    lines.append(f"  CPU:\t\t{_cpus(block['NanoCPUs'])}")
                if block.get("MemoryBytes"):
                    lines.append(f"  Memory:\t{bytes_size(block['MemoryBytes'])}")
            if limit and block.get("Pids"):
                lines.append(f"  PIDs:\t\t{block['Pids']}")
    attached = (spec.get("TaskTemplate") or {}).get("Networks") or spec.get("Networks") or []
    if attached:
        names = network_names or {}
        targets = (names.get(n.get("Target", ""), n.get("Target", "")) for n in attached)
        # Docker's template leaves a space after the last name.
        lines.append("Networks:" + "".join(f" {name}" for name in targets) + " ")
    endpoint = service.get("Endpoint") or {}
    espec = spec.get("EndpointSpec") or {}
    lines.append(f"Endpoint Mode:\t{espec.get('Mode') or ''}")
    ports = endpoint.get("Ports") or []
    if ports:
        lines.append("Ports:")
        for p in ports:
            lines.append(f" PublishedPort = {p.get('PublishedPort', 0)}")
            lines.append(f"  Protocol = {p.get('Protocol', 'tcp')}")
            lines.append(f"  TargetPort = {p.get('TargetPort', 0)}")
            lines.append(f"  PublishMode = {p.get('PublishMode', 'ingress')}")
        lines[-1] += " "
    health = cs.get("Healthcheck")
    if health:
        lines.append(" Healthcheck:")
        lines.append(f"  Interval = {format_duration(health.get('Interval') or 0)}")
        lines.append(f"  Retries = {health.get('Retries', 0)}")
        lines.append(f"  StartPeriod =\t{format_duration(health.get('StartPeriod') or 0)}")
        lines.append(f"  Timeout =\t{format_duration(health.get('Timeout') or 0)}")
        if health.get("Test"):
            lines.append("  Tests:")
            for test in health["Test"]:
                lines.append(f"\t Test = {test}")
    out("\n".join(lines) + "\n")
