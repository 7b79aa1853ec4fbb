"""``--dry-run`` on ``service create|update|scale|rollback`` and ``stack deploy``: ask a
manager what the change would do (shoal's /shoal/plan endpoints) and print the plan, as a
table or as JSON (``--format json``). Nothing is changed."""

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from shoal.cli.framework import CLIError, out
from shoal.cli.listing import print_list
from shoal.client import APIError, Client
from shoal.golang.duration import format_duration

PLAN_PREFIX = "/shoal/plan"

F = TypeVar("F", bound=Callable[..., Any])

NO_PLANS = (
    "--dry-run needs a shoal manager: the daemon answered 404 for {path} "
    "(a Docker daemon, or a shoal daemon without plans, has no such endpoint). "
    "Nothing was changed."
)


def dry_run_options(fn: F) -> F:
    fn = click.option(
        "--format",
        "plan_format",
        help="With --dry-run: print the plan as a table (default) or as json",
    )(fn)
    return click.option(
        "--dry-run",
        "dry_run",
        is_flag=True,
        help="Show what the change would do, without making it",
    )(fn)


def check_format(plan_format: str | None, dry_run: bool) -> None:
    if plan_format is None:
        return
    if not dry_run:
        raise CLIError("--format is only for --dry-run")
    if plan_format not in ("json", "table"):
        raise CLIError(f'invalid --format "{plan_format}": use "table" or "json"')


async def request_plan(client: Client, path: str, body: Any, **params: Any) -> dict[str, Any]:
    """POST ``body`` to the plan endpoint ``path`` (the Docker endpoint's path under
    /shoal/plan). A daemon that refuses the change answers with the error the change itself
    would get."""
    full = PLAN_PREFIX + path
    try:
        plan: dict[str, Any] = await client.post(full, body, **params)
    except APIError as error:
        if error.status == 404 and error.message == "page not found":
            raise CLIError(NO_PLANS.format(path=full)) from None
        raise
    return plan


TASK_TABLE = "table {{.Action}}\t{{.Task}}\t{{.Node}}\t{{.From}}\t{{.Batch}}\t{{.Error}}"
TASK_HEADERS = {
    "Action": "ACTION",
    "Task": "TASK",
    "Node": "NODE",
    "From": "FROM",
    "Batch": "BATCH",
    "Error": "ERROR",
}


def _task_row(t: dict[str, Any]) -> dict[str, str]:
    action = t["Action"]
    node = t["PreviousNode"] if action == "stop" else t["Node"]
    return {
        "Action": action,
        "Task": t["Name"],
        "Node": node or "-",
        "From": t["PreviousNode"] if action == "replace" else "",
        "Batch": str(t["Batch"]) if t["Batch"] else "",
        "Error": t["Error"],
    }


def _plural(n: int, word: str, plural: str = "") -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


def summary_lines(service: dict[str, Any]) -> list[str]:
    s = service["Summary"]
    parts = []
    if s["Create"]:
        text = f"{_plural(s['Create'], 'task')} to create"
        unplaced = sum(1 for t in service["Tasks"] if t["Action"] == "create" and t["Error"])
        if unplaced:
            text += f" ({unplaced} cannot be placed)"
        parts.append(text)
    update = service["Update"] or {}
    if s["Replace"]:
        parallelism = update.get("Parallelism", 1)
        how = [f"parallelism {parallelism}" if parallelism else "all at once"]
        if update.get("Delay"):
            how.append(f"delay {format_duration(update['Delay'])}")
        how.append(update.get("Order", "stop-first"))
        batches = update.get("Batches", 0)
        text = (
            f"{_plural(s['Replace'], 'task')} to replace in "
            f"{_plural(batches, 'update batch', 'update batches')} ({', '.join(how)})"
        )
        unplaced = sum(1 for t in service["Tasks"] if t["Action"] == "replace" and t["Error"])
        if unplaced:
            text += f", {unplaced} of them cannot be placed"
        parts.append(text)
    if s["Stop"]:
        parts.append(f"{_plural(s['Stop'], 'task')} to stop")
    if s["Unchanged"]:
        parts.append(f"{s['Unchanged']} unchanged")
    name = service["Name"]
    lines = [f"{name}: " + (", ".join(parts) if parts else "no task changes") + "."]
    if s["Outdated"]:
        lines.append(
            f"{name}: the update would not finish: "
            f"{_plural(s['Outdated'], 'task')} would stay on the previous spec."
        )
    return lines


def print_plan(plan: dict[str, Any], plan_format: str | None) -> None:
    if plan_format == "json":
        out(json.dumps(plan, indent=4))
        return
    for i, service in enumerate(plan["Services"]):
        if i:
            out()
        what = service["Operation"]
        ident = f" ({service['ID'][:12]})" if service["ID"] else ""
        out(f"Service {service['Name']}{ident}: {what}, {service['Mode']}")
        if service["Tasks"]:
            print_list([_task_row(t) for t in service["Tasks"]], None, TASK_TABLE, TASK_HEADERS)
        for line in summary_lines(service):
            out(line)
    if not plan.get("Complete", True):
        out("The plan stops short: the change goes on beyond what it shows.")
    out("Dry run: nothing was changed.")
