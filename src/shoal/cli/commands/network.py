"""``shoal network ls``: the daemon's networks (none yet: shoal has no overlay networks)."""

import json

import click

from shoal.cli.framework import docker_command, with_client
from shoal.cli.humanize import truncate_id
from shoal.cli.listing import parse_filters, print_list
from shoal.client import Client


@click.group("network")
def network_group() -> None:
    """Manage networks"""


NETWORK_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE"}


@docker_command(network_group, "ls", "[OPTIONS]")
@click.option("-f", "--filter", "filters", multiple=True, help="Provide filter values")
@click.option("--format", "fmt", help="Format output using a custom template")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs")
@with_client
async def network_ls(
    client: Client, filters: tuple[str, ...], fmt: str | None, no_trunc: bool, quiet: bool
) -> None:
    """List networks"""
    parsed = parse_filters(filters)
    params = {"filters": json.dumps(parsed)} if parsed else None
    networks = await client.request("GET", "/networks", params)
    rows = [
        {
            "Driver": n.get("Driver", ""),
            "ID": n["Id"] if no_trunc else truncate_id(n["Id"]),
            "Name": n.get("Name", ""),
            "Scope": n.get("Scope", ""),
        }
        for n in sorted(networks, key=lambda n: n.get("Name", ""))
    ]
    print_list(rows, fmt, NETWORK_TABLE, NETWORK_HEADERS, quiet=quiet)
