"""``shoal node ls|inspect|update|promote|demote|rm|ps``."""

from collections.abc import Callable

import click

from shoal.cli.framework import CLIError, docker_command, filter_option, out, with_client
from shoal.cli.humanize import natural_key, pretty_print
from shoal.cli.listing import parse_filters, print_inspect, print_list
from shoal.cli.pretty_node import print_node_pretty
from shoal.cli.tasks_table import print_tasks, task_list_options
from shoal.client import APIError, Client


@click.group("node")
def node_group() -> None:
    """Manage Swarm nodes"""


NODE_TABLE = (
    "table {{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t"
    "{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}"
)
NODE_HEADERS = {
    "ID": "ID",
    "Hostname": "HOSTNAME",
    "Status": "STATUS",
    "Availability": "AVAILABILITY",
    "ManagerStatus": "MANAGER STATUS",
    "EngineVersion": "ENGINE VERSION",
    "TLSStatus": "TLS STATUS",
}


async def self_id(client: Client) -> str:
    info = await client.info()
    return ((info.get("Swarm") or {}).get("NodeID")) or ""


def manager_status(node: dict) -> str:
    status = node.get("ManagerStatus")
    if not status:
        return ""
    if status.get("Leader"):
        return "Leader"
    return pretty_print(status.get("Reachability", ""))


def tls_status(node: dict, cluster_tls: dict | None) -> str:
    mine = (node.get("Description") or {}).get("TLSInfo") or {}
    if not mine or not cluster_tls:
        return "Unknown"
    return "Ready" if mine == cluster_tls else "Needs Rotation"


def node_row(node: dict, me: str, cluster_tls: dict | None) -> dict:
    desc = node.get("Description") or {}
    return {
        "Availability": pretty_print((node.get("Spec") or {}).get("Availability", "")),
        "EngineVersion": (desc.get("Engine") or {}).get("EngineVersion", ""),
        "Hostname": desc.get("Hostname", ""),
        "ID": node["ID"],
        "ManagerStatus": manager_status(node),
        "Self": node["ID"] == me,
        "Status": pretty_print((node.get("Status") or {}).get("State", "")),
        "TLSStatus": tls_status(node, cluster_tls),
    }


@docker_command(node_group, "ls", "[OPTIONS]")
@filter_option()
@click.option("--format", "fmt", help="Format output using a custom template")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@with_client
async def node_ls(client: Client, filters: tuple[str, ...], fmt: str | None, quiet: bool) -> None:
    """List nodes in the swarm"""
    nodes = await client.nodes(parse_filters(filters))
    info = await client.info()
    swarm = info.get("Swarm") or {}
    me = swarm.get("NodeID", "")
    cluster_tls = (swarm.get("Cluster") or {}).get("TLSInfo")
    nodes.sort(key=lambda n: natural_key((n.get("Description") or {}).get("Hostname", "")))
    rows = [node_row(n, me, cluster_tls) for n in nodes]
    print_list(rows, fmt, NODE_TABLE, NODE_HEADERS, quiet=quiet)


async def _inspect_each(client: Client, refs: tuple[str, ...]) -> tuple[list[dict], list[str]]:
    found, errors = [], []
    me = None
    for ref in refs:
        if ref == "":
            errors.append("invalid node name or ID: value is empty")
            continue
        if ref == "self":
            me = me or await self_id(client)
            ref = me or ref
        try:
            found.append(await client.node(ref))
        except APIError as error:
            errors.append(str(error))
    return found, errors


@docker_command(node_group, "inspect", "[OPTIONS] self|NODE [NODE...]", min_args=1, max_args=None)
@click.option("-f", "--format", "fmt", help="Format output using a custom template")
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format")
@with_client
async def node_inspect(
    client: Client, args: tuple[str, ...], fmt: str | None, pretty: bool
) -> None:
    """Display detailed information on one or more nodes"""
    found, errors = await _inspect_each(client, args)
    if pretty:
        for i, node in enumerate(found):
            if i:
                out()
            print_node_pretty(node)
    else:
        print_inspect(found, fmt)
    if errors:
        raise CLIError("\n".join(errors))


def _availability(value: str) -> str:
    return value.lower()


async def _update_node(client: Client, ref: str, change: Callable[[dict], None]) -> dict:
    node = await client.node(ref)
    spec = node.get("Spec") or {}
    change(spec)
    await client.post(f"/nodes/{node['ID']}/update", spec, version=node["Version"]["Index"])
    return node


@docker_command(node_group, "update", "[OPTIONS] NODE", min_args=1, max_args=1)
@click.option("--availability", help='Availability of the node ("active", "pause", "drain")')
@click.option("--label-add", multiple=True, help="Add or update a node label (key=value)")
@click.option("--label-rm", multiple=True, help="Remove a node label if exists")
@click.option("--role", help='Role of the node ("worker", "manager")')
@with_client
async def node_update(
    client: Client,
    args: tuple[str, ...],
    availability: str | None,
    label_add: tuple[str, ...],
    label_rm: tuple[str, ...],
    role: str | None,
) -> None:
    """Update a node"""
    ref = args[0]

    def change(spec: dict) -> None:
        if availability is not None:
            spec["Availability"] = _availability(availability)
        if role is not None:
            spec["Role"] = role.lower()
        labels = spec.get("Labels") or {}
        for item in label_add:
            key, _, value = item.partition("=")
            labels[key] = value
        for key in label_rm:
            if key not in labels:
                raise CLIError(f"key {key} doesn't exist in node's labels")
            labels.pop(key)
        spec["Labels"] = labels

    await _update_node(client, ref, change)
    out(ref)


async def _set_role(client: Client, refs: tuple[str, ...], role: str) -> None:
    errors = []
    for ref in refs:
        try:
            node = await client.node(ref)
            if (node.get("Spec") or {}).get("Role") == role:
                out(f"Node {node['ID']} is already a {role}.")
                continue
            await _update_node(client, ref, lambda spec: spec.__setitem__("Role", role))
            if role == "manager":
                out(f"Node {ref} promoted to a manager in the swarm.")
            else:
                out(f"Manager {ref} demoted in the swarm.")
        except APIError as error:
            errors.append(str(error))
    if errors:
        raise CLIError("\n".join(errors))


@docker_command(node_group, "promote", "NODE [NODE...]", min_args=1, max_args=None)
@with_client
async def node_promote(client: Client, args: tuple[str, ...]) -> None:
    """Promote one or more nodes to manager in the swarm"""
    await _set_role(client, args, "manager")


@docker_command(node_group, "demote", "NODE [NODE...]", min_args=1, max_args=None)
@with_client
async def node_demote(client: Client, args: tuple[str, ...]) -> None:
    """Demote one or more nodes from manager in the swarm"""
    await _set_role(client, args, "worker")


@docker_command(node_group, "rm", "[OPTIONS] NODE [NODE...]", min_args=1, max_args=None)
@click.option("-f", "--force", is_flag=True, help="Force remove a node from the swarm")
@with_client
async def node_rm(client: Client, args: tuple[str, ...], force: bool) -> None:
    """Remove one or more nodes from the swarm"""
    errors = []
    for ref in args:
        try:
            await client.delete(f"/nodes/{ref}", force=force)
            out(ref)
        except APIError as error:
            errors.append(str(error))
    if errors:
        raise CLIError("\n".join(errors))


@docker_command(node_group, "ps", "[OPTIONS] [NODE...]", min_args=0, max_args=None)
@task_list_options
@with_client
async def node_ps(
    client: Client,
    args: tuple[str, ...],
    filters: tuple[str, ...],
    fmt: str | None,
    no_resolve: bool,
    no_trunc: bool,
    quiet: bool,
) -> None:
    """List tasks running on one or more nodes, defaults to current node"""
    refs = args or ("self",)
    tasks: list[dict] = []
    errors: list[str] = []
    base = parse_filters(filters)
    for ref in refs:
        try:
            node_id = await self_id(client) if ref == "self" else (await client.node(ref))["ID"]
            if not node_id:
                node_id = (await client.node(ref))["ID"]
            tasks += await client.tasks({**base, "node": [node_id]})
        except APIError as error:
            errors.append(str(error))
    if tasks or not errors:
        await print_tasks(client, tasks, fmt, quiet, no_trunc, resolve=not no_resolve)
    if errors:
        raise CLIError("\n".join(errors))
