"""``--dry-run`` on ``service create|update|scale|rollback`` and ``stack deploy``: ask a
manager what the change would do (shoal's /shoal/plan endpoints) and print the plan, as a
table or as JSON (``--format json``). Nothing is changed."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from shoal.cli.framework import CLIError, out
from shoal.cli.listing import print_list
from shoal.client import APIError, Client, filters_param
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


def _empty_changes() -> dict[str, list]:
    return {"Remove": [], "Networks": [], "Secrets": [], "Configs": [], "Services": []}


@dataclass
class StackPlan:
    """What ``stack deploy`` would send, gathered for the plan endpoint (POST
    /shoal/plan/stacks/deploy) in place of being sent."""

    body: dict[str, list] = field(default_factory=_empty_changes)
    unchanged: list[str] = field(default_factory=list)  # services a deploy would not send

    def remove(self, service_id: str) -> None:
        self.body["Remove"].append(service_id)

    def add(self, key: str, obj: dict[str, Any]) -> None:
        self.body[key].append(obj)

    def change(self, key: str, spec: dict[str, Any], found: dict[str, Any] | None) -> None:
        """Create ``spec`` (``found`` None) or update the object ``found`` to it."""
        if found is None:
            self.body[key].append({"Spec": spec})
        else:
            self.body[key].append(
                {"ID": found["ID"], "Version": found["Version"]["Index"], "Spec": spec}
            )


def unchanged_service(name: str) -> dict[str, Any]:
    """A service of the stack whose spec is as declared: a deploy leaves it alone."""
    summary = dict.fromkeys(("Create", "Replace", "Stop", "Unplaced", "Unchanged", "Outdated"), 0)
    return {
        "ID": "",
        "Name": name,
        "Operation": "unchanged",
        "Mode": "",
        "Tasks": [],
        "Summary": summary,
        "Update": None,
    }


async def resolve_known_references(client: Client, kind: str, refs: tuple[dict, ...]) -> list[dict]:
    """A stack's secret or config references with the IDs of those that exist; the others
    (which the stack would create) keep their names only."""
    name_key = "SecretName" if kind == "secret" else "ConfigName"
    id_key = f"{kind.capitalize()}ID"
    names = sorted({r[name_key] for r in refs})
    found = await client.request("GET", f"/{kind}s", {"filters": filters_param({"name": names})})
    ids = {o["Spec"]["Name"]: o["ID"] for o in found or ()}
    resolved = []
    for ref in refs:
        ref = dict(ref)
        if ref[name_key] in ids:
            ref[id_key] = ids[ref[name_key]]
        resolved.append(ref)
    return resolved


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
        if what == "unchanged":
            out(f"Service {service['Name']}: unchanged (its spec is as declared: not sent)")
            continue
        ident = f" ({service['ID'][:12]})" if service["ID"] else ""
        out(f"Service {service['Name']}{ident}: {what}, {service['Mode']}")
        if service["Tasks"]:
            print_list([_task_row(t) for t in service["Tasks"]], None, TASK_TABLE, TASK_HEADERS)
        for line in summary_lines(service):
            out(line)
    if not plan.get("Complete", True):
        out("The plan stops short: the change goes on beyond what it shows.")
    out("Dry run: nothing was changed.")
