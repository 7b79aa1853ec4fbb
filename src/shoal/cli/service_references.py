"""A service's ``--secret``/``--config`` (and ``--secret-add``/``--secret-rm``...) turned into
the references the API takes, as Docker's CLI does: the names are looked up with one list
call, each reference gets its object's ID, and the CLI's own errors come first (a target given
twice, a name that is not there)."""

from typing import Any

from shoal.cli.framework import CLIError
from shoal.client import Client, filters_param


def _name_key(kind: str) -> str:
    return "SecretName" if kind == "secret" else "ConfigName"


async def resolve_references(client: Client, kind: str, refs: tuple[dict, ...]) -> list[dict]:
    """ParseSecrets / ParseConfigs: references with their IDs, in the order given."""
    if not refs:
        return []
    name_key = _name_key(kind)
    by_target: dict[str, dict[str, Any]] = {}
    for ref in refs:
        target = ref["File"]["Name"]
        if target in by_target:
            raise CLIError(f"duplicate {kind} target for {ref[name_key]} not allowed")
        by_target[target] = dict(ref, File=dict(ref["File"]))
    names = sorted({r[name_key] for r in by_target.values()})
    found = await client.request("GET", f"/{kind}s", {"filters": filters_param({"name": names})})
    ids = {o["Spec"]["Name"]: o["ID"] for o in found or ()}
    resolved = []
    for ref in by_target.values():
        if ref[name_key] not in ids:
            raise CLIError(f"{kind} not found: {ref[name_key]}")
        resolved.append({**ref, f"{kind.capitalize()}ID": ids[ref[name_key]]})
    return [_in_api_order(kind, r) for r in resolved]


def _in_api_order(kind: str, ref: dict[str, Any]) -> dict[str, Any]:
    """File, then the ID, then the name: the order Docker's JSON has them in."""
    prefix = kind.capitalize()
    return {
        "File": ref["File"],
        f"{prefix}ID": ref[f"{prefix}ID"],
        f"{prefix}Name": ref[f"{prefix}Name"],
    }


async def update_references(
    client: Client,
    kind: str,
    container: dict[str, Any],
    add: tuple[dict, ...],
    remove: tuple[str, ...],
) -> None:
    """``--<kind>-rm`` drops the references to those names; ``--<kind>-add`` appends new
    ones (a target already taken is for the managers to refuse, as in Docker)."""
    if not add and not remove:
        return
    field = "Secrets" if kind == "secret" else "Configs"
    name_key = _name_key(kind)
    kept = [r for r in container.get(field) or [] if r.get(name_key) not in set(remove)]
    container[field] = kept + await resolve_references(client, kind, add)
