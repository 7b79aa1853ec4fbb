"""``shoal service create|ls|ps|inspect|scale|update|rollback|rm|logs``."""

from typing import Any
from urllib.parse import quote

import click

from shoal import golang
from shoal.cli.dry_run import check_format, dry_run_options, print_plan, request_plan
from shoal.cli.framework import (
    CLIError,
    docker_command,
    err,
    filter_option,
    out,
    with_client,
)
from shoal.cli.humanize import natural_key, strip_digest, truncate_id
from shoal.cli.listing import parse_filters, print_inspect, print_list
from shoal.cli.pretty_service import print_service_pretty
from shoal.cli.progress import wait_for_convergence
from shoal.cli.service_flags import COMMON, CREATE, UPDATE, apply_update, build_create_spec
from shoal.cli.service_logs import logs_command_body
from shoal.cli.service_references import resolve_references, update_references
from shoal.cli.tasks_table import port_text, print_tasks, task_list_options
from shoal.client import APIError, Client


@click.group("service")
def service_group() -> None:
    """Manage Swarm services"""


def _is_process(spec: dict) -> bool:
    return ((spec.get("TaskTemplate") or {}).get("Runtime") or "container") == "process"


def _registry_warning(spec: dict) -> None:
    # Docker asks a registry for the image's digest; with none to ask (shoal never does), it
    # warns that nodes may run different versions of a tag. A process has no image at all.
    if _is_process(spec):
        return
    image = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
    err(
        f"image {image} could not be accessed on a registry to record\n"
        f"its digest. Each node will access {image} independently,\n"
        "possibly leading to different nodes running different\n"
        "versions of the image.\n"
    )


async def _network_id(client: Client, ref: str) -> str:
    """Docker's CLI looks each network up by name or ID first; the daemon says if it is
    missing ("network nosuch not found")."""
    found = await client.get(f"/networks/{quote(ref, safe='')}", scope="swarm")
    return str(found["Id"])


async def _network_names(client: Client, services: list[dict]) -> dict[str, str]:
    """The names of the networks the services are on, looked up as Docker's CLI does (an ID
    that no longer resolves stays an ID)."""
    names: dict[str, str] = {}
    for service in services:
        spec = service.get("Spec") or {}
        for n in (spec.get("TaskTemplate") or {}).get("Networks") or spec.get("Networks") or []:
            target = n.get("Target", "")
            if target and target not in names:
                try:
                    names[target] = (await client.get(f"/networks/{target}", scope="swarm"))["Name"]
                except APIError:
                    names[target] = target
    return names


async def _update_networks(
    client: Client, spec: dict, add: tuple[dict, ...], remove: tuple[str, ...]
) -> None:
    """``--network-add``/``--network-rm``, as Docker's CLI applies them: by network ID, a
    network already attached refused, the result sorted by ID."""
    task = spec.setdefault("TaskTemplate", {})
    current = task.get("Networks") or spec.pop("Networks", None) or []
    gone = {await _network_id(client, ref) for ref in remove}
    networks = [n for n in current if n.get("Target") not in gone]
    attached = {n.get("Target") for n in networks}
    for network in add:
        network_id = await _network_id(client, network["Target"])
        if network_id in attached:
            raise CLIError(f"service is already attached to network {network['Target']}")
        networks.append(dict(network, Target=network_id))
        attached.add(network_id)
    task["Networks"] = sorted(networks, key=lambda n: n.get("Target", ""))


def _tag_image(spec: dict) -> None:
    """Docker's CLI names the image it resolved with its tag: busybox -> busybox:latest."""
    if _is_process(spec):
        return
    cs = spec["TaskTemplate"]["ContainerSpec"]
    image = cs.get("Image", "")
    last = image.rsplit("/", 1)[-1]
    if image and "@" not in image and ":" not in last:
        cs["Image"] = image + ":latest"


@docker_command(
    service_group,
    "create",
    "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    min_args=1,
    max_args=None,
    context_settings={"allow_interspersed_args": False},
)
@CREATE
@COMMON
@dry_run_options
@with_client
async def service_create(client: Client, args: tuple[str, ...], **flags: Any) -> None:
    """Create a new service"""
    check_format(flags["plan_format"], flags["dry_run"])
    spec = build_create_spec(flags, list(args))
    for network in flags["networks"]:
        attachment = dict(network, Target=await _network_id(client, network["Target"]))
        spec["TaskTemplate"].setdefault("Networks", []).append(attachment)
    container = spec["TaskTemplate"]["ContainerSpec"]
    for kind, field, refs in (
        ("secret", "Secrets", flags["secrets"]),
        ("config", "Configs", flags["configs"]),
    ):
        if refs:
            container[field] = await resolve_references(client, kind, refs)
    if not flags["no_resolve_image"]:
        _tag_image(spec)
    if flags["dry_run"]:
        print_plan(await request_plan(client, "/services/create", spec), flags["plan_format"])
        return
    resp = await client.post("/services/create", spec)
    if not flags["no_resolve_image"]:
        _registry_warning(spec)
    for warning in (resp or {}).get("Warnings") or []:
        err(warning)
    service_id = resp["ID"]
    out(service_id)
    if not flags["detach"]:
        await wait_for_convergence(client, service_id, quiet=flags["quiet"])


SERVICE_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}"
SERVICE_HEADERS = {
    "ID": "ID",
    "Name": "NAME",
    "Mode": "MODE",
    "Replicas": "REPLICAS",
    "Image": "IMAGE",
    "Ports": "PORTS",
}


def _mode(spec: dict) -> str:
    mode = spec.get("Mode") or {}
    for key, name in (
        ("Replicated", "replicated"),
        ("Global", "global"),
        ("ReplicatedJob", "replicated job"),
        ("GlobalJob", "global job"),
    ):
        if key in mode:
            return name
    return ""


def _replicas(service: dict) -> str:
    status = service.get("ServiceStatus") or {}
    running, desired = status.get("RunningTasks", 0), status.get("DesiredTasks", 0)
    text = f"{running}/{desired}"
    spec = service.get("Spec") or {}
    max_replicas = ((spec.get("TaskTemplate") or {}).get("Placement") or {}).get("MaxReplicas")
    if max_replicas:
        text += f" (max {max_replicas} per node)"
    mode = spec.get("Mode") or {}
    completed = status.get("CompletedTasks", 0)
    if "ReplicatedJob" in mode:
        total = (mode["ReplicatedJob"] or {}).get("TotalCompletions", 0)
        text += f" ({completed}/{total} completed)"
    elif "GlobalJob" in mode:
        # Docker counts a global job's nodes as those still to run it and those done.
        text += f" ({completed}/{desired + completed} completed)"
    return text


def _ingress_ports(service: dict) -> str:
    ports = [
        p
        for p in (service.get("Endpoint") or {}).get("Ports") or []
        if (p.get("PublishMode") or "ingress") == "ingress"
    ]
    return port_text(ports, ", ")


@docker_command(service_group, "ls", "[OPTIONS]")
@filter_option()
@click.option("--format", "fmt", help="Format output using a custom template")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@with_client
async def service_ls(
    client: Client, filters: tuple[str, ...], fmt: str | None, quiet: bool
) -> None:
    """List services"""
    services = await client.services(parse_filters(filters), status=not quiet)
    print_list(service_rows(services), fmt, SERVICE_TABLE, SERVICE_HEADERS, quiet=quiet)


def service_rows(services: list[dict]) -> list[dict]:
    """The rows of ``service ls`` (and ``stack services``), sorted by name."""
    services = sorted(services, key=lambda s: natural_key(s["Spec"]["Name"]))
    rows = []
    for s in services:
        image = ((s["Spec"].get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
        rows.append(
            {
                "ID": truncate_id(s["ID"]),
                "Image": strip_digest(image),
                "Mode": _mode(s["Spec"]),
                "Name": s["Spec"]["Name"],
                "Ports": _ingress_ports(s),
                "Replicas": _replicas(s),
            }
        )
    return rows


async def _find_service(client: Client, ref: str) -> dict:
    try:
        return await client.service(ref)
    except APIError as error:
        if error.status == 404:
            raise CLIError(f"no such service: {ref}") from None
        raise


@docker_command(service_group, "ps", "[OPTIONS] SERVICE [SERVICE...]", min_args=1, max_args=None)
@task_list_options
@with_client
async def service_ps(
    client: Client,
    args: tuple[str, ...],
    filters: tuple[str, ...],
    fmt: str | None,
    no_resolve: bool,
    no_trunc: bool,
    quiet: bool,
) -> None:
    """List the tasks of one or more services"""
    ids: list[str] = []
    missing: list[str] = []
    for ref in args:
        try:
            ids.append((await _find_service(client, ref))["ID"])
        except CLIError:
            missing.append(ref)
    tasks: list[dict] = []
    if ids:
        tasks = await client.tasks({**parse_filters(filters), "service": ids})
    if ids or not missing:
        # service ps -q prints whole IDs (node ps -q does not): Docker's asymmetry
        await print_tasks(client, tasks, fmt, quiet, no_trunc or quiet, resolve=not no_resolve)
    if missing:
        raise CLIError("\n".join(f"no such service: {m}" for m in missing))


@docker_command(
    service_group, "inspect", "[OPTIONS] SERVICE [SERVICE...]", min_args=1, max_args=None
)
@click.option("-f", "--format", "fmt", help="Format output using a custom template")
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format")
@with_client
async def service_inspect(
    client: Client, args: tuple[str, ...], fmt: str | None, pretty: bool
) -> None:
    """Display detailed information on one or more services"""
    found: list[dict] = []
    errors: list[str] = []
    for ref in args:
        try:
            found.append(await _find_service(client, ref))
        except CLIError as error:
            errors.append(f"Error: {error.message}")
    if pretty:
        names = await _network_names(client, found) if found else {}
        for service in found:
            print_service_pretty(service, names)
    else:
        print_inspect(found, fmt)
    if errors:
        raise CLIError("\n".join(errors))


async def _post_update(client: Client, service: dict, spec: dict, **params: Any) -> dict:
    return await client.post(
        f"/services/{service['ID']}/update", spec, version=service["Version"]["Index"], **params
    )


async def _plan_update(client: Client, service: dict, spec: dict, **params: Any) -> dict:
    """What ``_post_update`` would do (``--dry-run``)."""
    return await request_plan(
        client,
        f"/services/{service['ID']}/update",
        spec,
        version=service["Version"]["Index"],
        **params,
    )


@docker_command(
    service_group, "scale", "SERVICE=REPLICAS [SERVICE=REPLICAS...]", min_args=1, max_args=None
)
@click.option(
    "-d",
    "--detach",
    is_flag=True,
    help="Exit immediately instead of waiting for the service to converge",
)
@dry_run_options
@click.pass_context
def service_scale(
    ctx: click.Context,
    args: tuple[str, ...],
    detach: bool,
    dry_run: bool,
    plan_format: str | None,
) -> None:
    """Scale one or multiple replicated services"""
    check_format(plan_format, dry_run)
    for arg in args:
        name, eq, _ = arg.partition("=")
        if not eq or not name:
            raise CLIError(
                f"invalid scale specifier '{arg}'.\nSee '{ctx.command_path} --help'.\n\n"
                f"Usage:  {ctx.command_path} SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\n"
                "Scale one or multiple replicated services"
            )
    _scale(args, detach, dry_run, plan_format)


@with_client
async def _scale(
    client: Client,
    args: tuple[str, ...],
    detach: bool,
    dry_run: bool = False,
    plan_format: str | None = None,
) -> None:
    errors: list[str] = []
    scaled: list[str] = []
    plans: list[dict] = []
    for arg in args:
        name, _, value = arg.partition("=")
        try:
            replicas = golang.parse_uint(value)
        except golang.GoError as error:
            errors.append(f"{name}: invalid replicas value {value}: {error}")
            continue
        try:
            service = await client.request("GET", f"/services/{name}")
            spec = service["Spec"]
            mode = spec.get("Mode") or {}
            if "Replicated" in mode:
                mode["Replicated"]["Replicas"] = replicas
            elif "ReplicatedJob" in mode:
                mode["ReplicatedJob"]["TotalCompletions"] = replicas
            else:
                errors.append(
                    f"{name}: scale can only be used with replicated or replicated-job mode"
                )
                continue
            if dry_run:
                plans.append(await _plan_update(client, service, spec))
                continue
            await _post_update(client, service, spec)
            out(f"{name} scaled to {replicas}")
            scaled.append(service["ID"])
        except APIError as error:
            errors.append(f"{name}: {error}")
    if plans:
        print_plan(
            {
                "Services": [svc for p in plans for svc in p["Services"]],
                "Complete": all(p.get("Complete", True) for p in plans),
            },
            plan_format,
        )
    if not detach:
        for service_id in scaled:
            await wait_for_convergence(client, service_id)
    if errors:
        raise CLIError("\n".join(errors))


@docker_command(service_group, "update", "[OPTIONS] SERVICE", min_args=1, max_args=1)
@UPDATE
@COMMON
@dry_run_options
@with_client
async def service_update(client: Client, args: tuple[str, ...], **flags: Any) -> None:
    """Update a service"""
    check_format(flags["plan_format"], flags["dry_run"])
    ref = args[0]
    service = await client.request("GET", f"/services/{ref}")
    spec = service["Spec"]
    params: dict[str, Any] = {}
    if flags["rollback"]:
        params["rollback"] = "previous"
    else:
        apply_update(spec, flags)
        if flags["network_add"] or flags["network_rm"]:
            await _update_networks(client, spec, flags["network_add"], flags["network_rm"])
        container = spec["TaskTemplate"]["ContainerSpec"]
        await update_references(
            client, "secret", container, flags["secret_add"], flags["secret_rm"]
        )
        await update_references(
            client, "config", container, flags["config_add"], flags["config_rm"]
        )
    if flags.get("image") and not flags["no_resolve_image"]:
        _tag_image(spec)
    if flags["dry_run"]:
        plan = await _plan_update(client, service, spec, **params)
        print_plan(plan, flags["plan_format"])
        return
    resp = await _post_update(client, service, spec, **params)
    if flags.get("image") and not flags["no_resolve_image"]:
        _registry_warning(spec)
    for warning in (resp or {}).get("Warnings") or []:
        err(warning)
    out(ref)
    if not flags["detach"]:
        await wait_for_convergence(client, service["ID"], quiet=flags["quiet"])


@docker_command(service_group, "rollback", "[OPTIONS] SERVICE", min_args=1, max_args=1)
@click.option(
    "-d",
    "--detach",
    is_flag=True,
    help="Exit immediately instead of waiting for the service to converge",
)
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output")
@dry_run_options
@with_client
async def service_rollback(
    client: Client,
    args: tuple[str, ...],
    detach: bool,
    quiet: bool,
    dry_run: bool,
    plan_format: str | None,
) -> None:
    """Revert changes to a service's configuration"""
    check_format(plan_format, dry_run)
    ref = args[0]
    service = await client.request("GET", f"/services/{ref}")
    if dry_run:
        plan = await _plan_update(client, service, service["Spec"], rollback="previous")
        print_plan(plan, plan_format)
        return
    await _post_update(client, service, service["Spec"], rollback="previous")
    out(ref)
    if not detach:
        await wait_for_convergence(client, service["ID"], quiet=quiet)


@docker_command(service_group, "rm", "SERVICE [SERVICE...]", min_args=1, max_args=None)
@with_client
async def service_rm(client: Client, args: tuple[str, ...]) -> None:
    """Remove one or more services"""
    errors = []
    for ref in args:
        try:
            await client.delete(f"/services/{ref}")
            out(ref)
        except APIError as error:
            errors.append(str(error))
    if errors:
        raise CLIError("\n".join(errors))


@docker_command(service_group, "logs", "[OPTIONS] SERVICE|TASK", min_args=1, max_args=1)
@click.option("--details", is_flag=True, help="Show extra details provided to logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("--no-resolve", is_flag=True, help="Do not map IDs to Names in output")
@click.option("--no-task-ids", is_flag=True, help="Do not include task IDs in output")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.option("--raw", is_flag=True, help="Do not neatly format logs")
@click.option(
    "--since",
    help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)",
)
@click.option(
    "-n", "--tail", default="all", help="Number of lines to show from the end of the logs"
)
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@with_client
async def service_logs(client: Client, args: tuple[str, ...], **flags: Any) -> None:
    """Fetch the logs of a service or task"""
    await logs_command_body(client, args[0], flags)
