"""``shoal network create/ls/inspect/rm/prune``: Docker's network commands, flags, columns,
prompts and errors, against the swarm's networks."""

import ipaddress
import json
import sys
from typing import Any
from urllib.parse import quote

import click

from shoal.cli.framework import (
    FILTER,
    CLIError,
    docker_command,
    err,
    filter_option,
    out,
    with_client,
)
from shoal.cli.humanize import truncate_id
from shoal.cli.listing import parse_filters, print_inspect, print_list
from shoal.client import APIError, Client
from shoal.golang import GoTime


@click.group("network")
def network_group() -> None:
    """Manage networks"""


# --- create ----------------------------------------------------------------------------------


def _key_values(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _inside(inner: ipaddress._BaseNetwork, outer: ipaddress._BaseNetwork) -> bool:
    return (
        inner.version == outer.version
        and int(outer.network_address) <= int(inner.network_address)
        and int(inner.broadcast_address) <= int(outer.broadcast_address)
    )


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def ipam_configs(
    subnets: tuple[str, ...],
    ip_ranges: tuple[str, ...],
    gateways: tuple[str, ...],
    aux_addresses: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Docker's CLI pairs each --ip-range, --gateway and --aux-address with the --subnet
    holding it (consolidateIpam), refusing in its words what fits none."""
    configs: list[dict[str, Any]] = []
    # A subnet the CLI cannot read goes to the daemon, which refuses it in its words.
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network | None] = []
    for subnet in subnets:
        try:
            nets.append(ipaddress.ip_network(subnet, strict=False))
        except ValueError:
            nets.append(None)
        configs.append({"Subnet": subnet})
    if (ip_ranges or gateways) and not subnets:
        raise CLIError("every ip-range or gateway must have a corresponding subnet")

    def holding(item: ipaddress.IPv4Network | ipaddress.IPv6Network | IPAddress) -> int | None:
        """The index of the first readable subnet holding an address or a range."""
        for i, n in enumerate(nets):
            if n is None:
                continue
            if isinstance(item, IPAddress):
                if item in n:
                    return i
            elif _inside(item, n):
                return i
        return None

    for ip_range in ip_ranges:
        try:
            r = ipaddress.ip_network(ip_range, strict=False)
        except ValueError:
            raise CLIError(f"invalid CIDR address: {ip_range}") from None
        i = holding(r)
        if i is None:
            raise CLIError(f"no matching subnet for range {ip_range}")
        if "IPRange" in configs[i]:
            raise CLIError(
                f"cannot configure multiple ranges ({ip_range}, {configs[i]['IPRange']}) on the same subnet ({subnets[i]})"
            )
        configs[i]["IPRange"] = ip_range
    for gateway in gateways:
        try:
            g = ipaddress.ip_address(gateway)
        except ValueError:
            raise CLIError(f"invalid gateway address: {gateway}") from None
        i = holding(g)
        if i is None:
            raise CLIError(f"no matching subnet for gateway {gateway}")
        if "Gateway" in configs[i]:
            raise CLIError(
                f"cannot configure multiple gateways ({gateway}, {configs[i]['Gateway']}) for the same subnet ({subnets[i]})"
            )
        configs[i]["Gateway"] = gateway
    for item in aux_addresses:
        name, _, ip = item.partition("=")
        try:
            i = holding(ipaddress.ip_address(ip))
        except ValueError:
            i = None  # Docker's CLI says the same of an address it cannot read
        if i is None:
            raise CLIError(f"no matching subnet for aux-address {ip}")
        configs[i].setdefault("AuxiliaryAddresses", {})[name] = ip
    return configs


@docker_command(network_group, "create", "[OPTIONS] NETWORK", min_args=1, max_args=1)
@click.option("--attachable", is_flag=True, help="Enable manual container attachment")
@click.option(
    "--aux-address", multiple=True, help="Auxiliary IPv4 or IPv6 addresses used by Network driver"
)
@click.option(
    "-d", "--driver", default="bridge", help='Driver to manage the Network (default "bridge")'
)
@click.option(
    "--gateway", "gateways", multiple=True, help="IPv4 or IPv6 Gateway for the master subnet"
)
@click.option("--ingress", is_flag=True, help="Create swarm routing-mesh network")
@click.option("--internal", is_flag=True, help="Restrict external access to the network")
@click.option(
    "--ip-range", "ip_ranges", multiple=True, help="Allocate container ip from a sub-range"
)
@click.option(
    "--ipam-driver", default="default", help='IP Address Management Driver (default "default")'
)
@click.option("--ipam-opt", multiple=True, help="Set IPAM driver specific options")
@click.option("--ipv6", is_flag=True, help="Enable or disable IPv6 networking")
@click.option("--label", "labels", multiple=True, help="Set metadata on a network")
@click.option("-o", "--opt", "opts", multiple=True, help="Set driver specific options")
@click.option("--scope", default="", help="Control the network's scope")
@click.option(
    "--subnet",
    "subnets",
    multiple=True,
    help="Subnet in CIDR format that represents a network segment",
)
@with_client
async def network_create(
    client: Client,
    args: tuple[str, ...],
    attachable: bool,
    aux_address: tuple[str, ...],
    driver: str,
    gateways: tuple[str, ...],
    ingress: bool,
    internal: bool,
    ip_ranges: tuple[str, ...],
    ipam_driver: str,
    ipam_opt: tuple[str, ...],
    ipv6: bool,
    labels: tuple[str, ...],
    opts: tuple[str, ...],
    scope: str,
    subnets: tuple[str, ...],
) -> None:
    """Create a network"""
    body: dict[str, Any] = {"Driver": driver, "Scope": scope}
    if ipv6:
        body["EnableIPv6"] = True
    body.update(
        {
            "IPAM": {
                "Driver": ipam_driver,
                "Options": _key_values(ipam_opt),
                "Config": ipam_configs(subnets, ip_ranges, gateways, aux_address),
            },
            "Internal": internal,
            "Attachable": attachable,
            "Ingress": ingress,
            "ConfigOnly": False,
            "ConfigFrom": None,
            "Options": _key_values(opts),
            "Labels": _key_values(labels),
            "Name": args[0],
        }
    )
    resp = await client.post("/networks/create", body)
    if resp.get("Warning"):
        err(f"WARNING: {resp['Warning']}")
    out(resp["Id"])


# --- ls --------------------------------------------------------------------------------------

NETWORK_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE"}


def _labels_text(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def network_row(n: dict[str, Any], no_trunc: bool) -> dict[str, Any]:
    """What a network's row offers a --format template, named as Docker's CLI names it."""
    created = GoTime.parse(n.get("Created", ""))
    return {
        "CreatedAt": created.string() if created is not None else "",
        "Driver": n.get("Driver", ""),
        "ID": n["Id"] if no_trunc else truncate_id(n["Id"]),
        "IPv4": "true" if n.get("EnableIPv4") else "false",
        "IPv6": "true" if n.get("EnableIPv6") else "false",
        "Internal": "true" if n.get("Internal") else "false",
        "Labels": _labels_text(n.get("Labels")),
        "Name": n.get("Name", ""),
        "Scope": n.get("Scope", ""),
    }


@docker_command(network_group, "ls", "[OPTIONS]")
@filter_option('Provide filter values (e.g. "driver=bridge")')
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
    rows = [network_row(n, no_trunc) for n in sorted(networks, key=lambda n: n.get("Name", ""))]
    print_list(rows, fmt, NETWORK_TABLE, NETWORK_HEADERS, quiet=quiet)


# --- inspect ---------------------------------------------------------------------------------


@docker_command(
    network_group, "inspect", "[OPTIONS] NETWORK [NETWORK...]", min_args=1, max_args=None
)
@click.option("-f", "--format", "fmt", help="Format output using a custom template")
@click.option("-v", "--verbose", is_flag=True, help="Verbose output for diagnostics")
@with_client
async def network_inspect(
    client: Client, args: tuple[str, ...], fmt: str | None, verbose: bool
) -> None:
    """Display detailed information on one or more networks"""
    found = []
    errors = []
    for ref in args:
        try:
            params = {"verbose": "true"} if verbose else {}
            found.append(await client.get(f"/networks/{quote(ref, safe='')}", **params))
        except APIError as error:
            errors.append(str(error))
    print_inspect(found, fmt)
    if errors:
        raise CLIError("\n".join(errors))


# --- rm --------------------------------------------------------------------------------------

INGRESS_WARNING = (
    "WARNING! Before removing the routing-mesh network, make sure all the nodes in your swarm "
    "run the same docker engine version. Otherwise, removal may not be effective and "
    "functionality of newly create ingress networks will be impaired."
)


def confirm(message: str) -> bool:
    """Docker's prompt: the question without a newline, yes only for "y" or "Y"."""
    sys.stdout.write(message + "\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


@docker_command(network_group, "rm", "NETWORK [NETWORK...]", min_args=1, max_args=None)
@click.option("-f", "--force", is_flag=True, help="Do not error if the network does not exist")
@with_client
async def network_rm(client: Client, args: tuple[str, ...], force: bool) -> None:
    """Remove one or more networks"""
    failed = False
    for ref in args:
        try:
            network = await client.get(f"/networks/{quote(ref, safe='')}")
            if network.get("Ingress") and not confirm(INGRESS_WARNING):
                continue
            await client.delete(f"/networks/{quote(network['Id'], safe='')}")
            out(ref)
        except APIError as error:
            if force and error.status == 404:
                continue
            err(str(error))
            failed = True
    if failed:
        # Docker's CLI says so once more when any removal failed.
        raise CLIError("exit status 1")


# --- prune -----------------------------------------------------------------------------------

PRUNE_WARNING = "WARNING! This will remove all custom networks not used by at least one container."


@docker_command(network_group, "prune", "[OPTIONS]")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    type=FILTER,
    help='Provide filter values (e.g. "until=<timestamp>")',
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@with_client
async def network_prune(client: Client, filters: tuple[str, ...], force: bool) -> None:
    """Remove all unused networks"""
    if not force and not confirm(PRUNE_WARNING):
        return
    parsed = parse_filters(filters)
    params = {"filters": json.dumps(parsed)} if parsed else None
    resp = await client.request("POST", "/networks/prune", params)
    deleted = (resp or {}).get("NetworksDeleted") or []
    if deleted:
        out("Deleted Networks:")
        for name in deleted:
            out(name)
        out()
