"""``service ps`` and ``node ps``: tasks named after their service and slot (or node, for
global services), sorted by name then newest first, each replaced task under the one that
replaced it with Docker's `` \\_ `` marker."""

import time
from collections.abc import Callable
from typing import TypeVar

import click

from shoal.cli.framework import filter_option
from shoal.cli.humanize import ago, ellipsis, natural_key, pretty_print, strip_digest, truncate_id
from shoal.cli.listing import print_list
from shoal.client import APIError, Client

TASK_TABLE = (
    "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}"
    "\t{{.Error}}\t{{.Ports}}"
)
TASK_HEADERS = {
    "ID": "ID",
    "Name": "NAME",
    "Image": "IMAGE",
    "Node": "NODE",
    "DesiredState": "DESIRED STATE",
    "CurrentState": "CURRENT STATE",
    "Error": "ERROR",
    "Ports": "PORTS",
}


F = TypeVar("F", bound=Callable)


def task_list_options(fn: F) -> F:
    """The flags ``service ps``, ``node ps`` and ``stack ps`` share (Docker's, in its order):
    -f/--filter, --format, --no-resolve, --no-trunc, -q/--quiet."""
    for option in reversed(
        (
            filter_option(),
            click.option("--format", "fmt", help="Pretty-print tasks using a Go template"),
            click.option("--no-resolve", is_flag=True, help="Do not map IDs to Names"),
            click.option("--no-trunc", is_flag=True, help="Do not truncate output"),
            click.option("-q", "--quiet", is_flag=True, help="Only display task IDs"),
        )
    ):
        fn = option(fn)
    return fn


class NameResolver:
    """Service and node IDs to names, asking the daemon once per ID (idresolver)."""

    def __init__(self, client: Client, enabled: bool = True) -> None:
        self.client = client
        self.enabled = enabled
        self._cache: dict[tuple[str, str], str] = {}

    async def resolve(self, kind: str, ident: str) -> str:
        if not self.enabled or not ident:
            return ident
        key = (kind, ident)
        if key not in self._cache:
            try:
                if kind == "node":
                    node = await self.client.node(ident)
                    name = (node.get("Description") or {}).get("Hostname") or ident
                else:
                    name = (await self.client.service(ident))["Spec"]["Name"]
            except APIError:
                name = ident
            self._cache[key] = name
        return self._cache[key]


def port_text(ports: list[dict] | None, sep: str) -> str:
    items = []
    for p in ports or []:
        items.append(
            f"*:{p.get('PublishedPort', 0)}->{p.get('TargetPort', 0)}/{p.get('Protocol') or 'tcp'}"
        )
    return sep.join(items)


async def print_tasks(
    client: Client,
    tasks: list[dict],
    fmt: str | None,
    quiet: bool,
    no_trunc: bool,
    resolve: bool = True,
) -> None:
    names = NameResolver(client, resolve)
    now = time.time_ns()
    rows: list[tuple[str, dict]] = []
    for t in tasks:
        service = await names.resolve("service", t.get("ServiceID", ""))
        slot = t.get("Slot") or 0
        name = f"{service}.{slot}" if slot else f"{service}.{t.get('NodeID', '')}"
        status = t.get("Status") or {}
        spec = t.get("Spec") or {}
        image = ((spec.get("ContainerSpec") or {}).get("Image")) or ""
        error = status.get("Err") or ""
        if error and not no_trunc:
            error = f'"{ellipsis(error, 30)}"'
        elif error:
            error = f'"{error}"'
        row = {
            "CurrentState": f"{pretty_print(status.get('State', ''))} {ago(status.get('Timestamp', ''), now)}",
            "DesiredState": pretty_print(t.get("DesiredState", "")),
            "Error": error,
            "ID": t["ID"] if no_trunc else truncate_id(t["ID"]),
            "Image": image if no_trunc else strip_digest(image),
            "Name": name,
            "Node": await names.resolve("node", t.get("NodeID", "")),
            "Ports": port_text((status.get("PortStatus") or {}).get("Ports"), ","),
        }
        rows.append((t.get("CreatedAt", ""), row))
    # newest first within a name, names in natural order (a stable sort on each key)
    rows.sort(key=lambda r: r[0], reverse=True)
    rows.sort(key=lambda r: natural_key(r[1]["Name"]))
    ordered = [r for _, r in rows]
    is_table = not quiet and (not fmt or fmt.startswith("table"))
    if is_table:
        previous = None
        for row in ordered:
            if row["Name"] == previous:
                row["Name"] = " \\_ " + row["Name"]
            else:
                previous = row["Name"]
    if quiet:
        print_list([{"ID": r["ID"]} for r in ordered], None, TASK_TABLE, TASK_HEADERS, quiet=True)
        return
    print_list(ordered, fmt, TASK_TABLE, TASK_HEADERS)
