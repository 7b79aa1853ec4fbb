"""``shoal stack deploy|ls|ps|services|rm``: applications from compose files, as Docker's
``docker stack`` (swarm orchestrator) runs them."""

from typing import Any

import click

from shoal.cli.commands.service import SERVICE_HEADERS, SERVICE_TABLE, service_rows
from shoal.cli.dry_run import check_format, dry_run_options
from shoal.cli.framework import CLIError, docker_command, err, filter_option, out, with_client
from shoal.cli.listing import parse_filters, print_list
from shoal.cli.stack_namespace import NAMESPACE_LABEL, stack_filter
from shoal.cli.tasks_table import print_tasks, task_list_options
from shoal.client import APIError, Client, filters_param


@click.group("stack")
def stack_group() -> None:
    """Manage Docker stacks"""


@docker_command(stack_group, "deploy", "[OPTIONS] STACK", min_args=1, max_args=1)
@click.option(
    "-c",
    "--compose-file",
    "compose_files",
    multiple=True,
    help='Path to a Compose file, or "-" to read from stdin',
)
@click.option(
    "-d",
    "--detach/--no-detach",
    default=None,
    help="Exit immediately instead of waiting for the stack services to converge (default true)",
)
@click.option("--prune", is_flag=True, help="Prune services that are no longer referenced")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output")
@click.option(
    "--resolve-image",
    default="always",
    help='Query the registry to resolve image digest and supported platforms ("always", '
    '"changed", "never") (default "always")',
)
@click.option(
    "--with-registry-auth",
    is_flag=True,
    help="Send registry authentication details to Swarm agents",
)
@dry_run_options
def stack_deploy(
    args: tuple[str, ...],
    compose_files: tuple[str, ...],
    detach: bool | None,
    prune: bool,
    quiet: bool,
    resolve_image: str,
    with_registry_auth: bool,
    dry_run: bool,
    plan_format: str | None,
) -> None:
    """Deploy a new stack or update an existing stack"""
    # The compose loader and the API models load here, for deploy only.
    from shoal.cli.stack_deploy import DETACH_NOTE, RESOLVE_IMAGE

    check_format(plan_format, dry_run)
    if resolve_image not in RESOLVE_IMAGE:
        raise CLIError(f"Invalid option {resolve_image} for flag --resolve-image")
    if not compose_files:
        raise CLIError("Specify a Compose file (with --compose-file)")
    if detach is None and not dry_run:
        err(DETACH_NOTE)
    # A registry's credentials would go with each service; shoal asks no registry.
    del with_registry_auth
    _deploy(
        args[0],
        compose_files,
        prune,
        resolve_image,
        detach is not False,
        quiet,
        dry_run,
        plan_format,
    )


@with_client
async def _deploy(client: Client, namespace: str, *rest: Any) -> None:
    from shoal.cli.stack_deploy import deploy

    await deploy(client, namespace, *rest)


STACK_TABLE = "table {{.Name}}\t{{.Services}}"
STACK_HEADERS = {"Name": "NAME", "Services": "SERVICES"}


@docker_command(stack_group, "ls", "[OPTIONS]")
@click.option("--format", "fmt", help="Pretty-print stacks using a Go template")
@with_client
async def stack_ls(client: Client, fmt: str | None) -> None:
    """List stacks"""
    services = await client.services({"label": [NAMESPACE_LABEL]})
    counts: dict[str, int] = {}
    for service in services:
        name = (service["Spec"].get("Labels") or {}).get(NAMESPACE_LABEL, "")
        counts[name] = counts.get(name, 0) + 1
    rows = [{"Name": name, "Services": str(n)} for name, n in sorted(counts.items())]
    print_list(rows, fmt, STACK_TABLE, STACK_HEADERS)


def _with_stack(filters: tuple[str, ...], namespace: str) -> dict[str, list[str]]:
    parsed = parse_filters(filters)
    parsed.setdefault("label", []).extend(stack_filter(namespace)["label"])
    return parsed


@docker_command(stack_group, "services", "[OPTIONS] STACK", min_args=1, max_args=1)
@filter_option()
@click.option("--format", "fmt", help="Pretty-print services using a Go template")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@with_client
async def stack_services(
    client: Client, args: tuple[str, ...], filters: tuple[str, ...], fmt: str | None, quiet: bool
) -> None:
    """List the services in the stack"""
    namespace = args[0]
    services = await client.services(_with_stack(filters, namespace), status=not quiet)
    if not services:
        err(f"Nothing found in stack: {namespace}")
        return
    print_list(service_rows(services), fmt, SERVICE_TABLE, SERVICE_HEADERS, quiet=quiet)


@docker_command(stack_group, "ps", "[OPTIONS] STACK", min_args=1, max_args=1)
@task_list_options
@with_client
async def stack_ps(
    client: Client,
    args: tuple[str, ...],
    filters: tuple[str, ...],
    fmt: str | None,
    no_resolve: bool,
    no_trunc: bool,
    quiet: bool,
) -> None:
    """List the tasks in the stack"""
    namespace = args[0]
    tasks = await client.tasks(_with_stack(filters, namespace))
    if not tasks:
        raise CLIError(f"nothing found in stack: {namespace}")
    # stack ps -q prints IDs truncated (service ps -q does not): Docker's asymmetry
    await print_tasks(client, tasks, fmt, quiet, no_trunc, resolve=not no_resolve)


@docker_command(stack_group, "rm", "[OPTIONS] STACK [STACK...]", min_args=1, max_args=None)
@with_client
async def stack_rm(client: Client, args: tuple[str, ...]) -> None:
    """Remove one or more stacks"""
    failures = []
    for namespace in args:
        params = {"filters": filters_param(stack_filter(namespace))}
        services = await client.request("GET", "/services", params)
        networks = await client.request("GET", "/networks", params)
        secrets = await client.request("GET", "/secrets", params)
        configs = await client.request("GET", "/configs", params)
        if not (services or networks or secrets or configs):
            err(f"Nothing found in stack: {namespace}")
            continue
        failed = False
        # services first, so that nothing uses the rest when it goes
        for kind, objects, path, ident in (
            ("service", services, "/services", "ID"),
            ("secret", secrets, "/secrets", "ID"),
            ("config", configs, "/configs", "ID"),
            ("network", networks, "/networks", "Id"),
        ):
            for obj in sorted(objects or [], key=_name):
                out(f"Removing {kind} {_name(obj)}")
                try:
                    await client.delete(f"{path}/{obj[ident]}")
                except APIError as error:
                    # no line end: Docker 20.10 writes none
                    err(f"Failed to remove {kind} {obj[ident]}: {error}", end="")
                    failed = True
        if failed:
            failures.append(f"Failed to remove some resources from stack: {namespace}")
    if failures:
        raise CLIError("\n".join(failures))


def _name(obj: dict) -> str:
    return str(obj.get("Name") or (obj.get("Spec") or {}).get("Name", ""))


# Docker's aliases
stack_group.add_command(stack_deploy, "up")
stack_group.add_command(stack_ls, "list")
stack_group.add_command(stack_rm, "remove")
stack_group.add_command(stack_rm, "down")
