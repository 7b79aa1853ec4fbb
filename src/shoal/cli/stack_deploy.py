"""``stack deploy``: make the cluster hold what compose files declare, as Docker's CLI does
it (cli/command/stack/swarm), in its words: prune services no longer declared, create the
stack's networks that are missing, create or update its secrets and configs, then create or
update each service.

Two differences, both so that bad input changes nothing and a re-deploy changes nothing:
the whole file is converted (and every error it holds reported) before the first request,
and a service whose spec would not change is not sent again (no new version, no restart;
"Updating service ..." is still printed, as Docker prints it)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any
from urllib.parse import quote

from shoal.api.service_defaults import fill_daemon_defaults
from shoal.api.specs import ServiceSpec
from shoal.cli.dry_run import (
    StackPlan,
    print_plan,
    request_plan,
    resolve_known_references,
    unchanged_service,
)
from shoal.cli.framework import CLIError, err, out
from shoal.cli.progress import wait_for_convergence
from shoal.cli.service_references import resolve_references
from shoal.cli.stack_namespace import stack_filter
from shoal.client import APIError, Client, filters_param
from shoal.compose import (
    IMAGE_LABEL,
    ComposeError,
    Stack,
    convert,
    load,
    read_files,
)

RESOLVE_IMAGE = ("always", "changed", "never")
DETACH_NOTE = (
    "Since --detach=false was not specified, tasks will be created in the background.\n"
    "In a future release, --detach=false will become the default."
)
NOT_A_MANAGER = (
    'this node is not a swarm manager. Use "shoal swarm init" or "shoal swarm join" to '
    "connect this node to swarm and try again"
)
# Networks every node has as local ones; an external network of these names is not looked up.
BUILTIN_NETWORKS = {"host", "bridge", "none", "default"}


def load_stack(namespace: str, compose_files: tuple[str, ...]) -> Stack:
    """The files read and converted; any error is Docker's message, before any request."""
    try:
        project = load(read_files(list(compose_files), sys.stdin.read))
        for warning in project.warnings:
            err(warning, end="")
        return convert(namespace, project)
    except ComposeError as error:
        raise CLIError(error.message) from None


def _tag_image(image: str) -> str:
    """What resolving an image gives without a registry: the tag made explicit."""
    last = image.rsplit("/", 1)[-1]
    if image and "@" not in image and ":" not in last:
        return image + ":latest"
    return image


def _is_process(spec: dict[str, Any]) -> bool:
    return (spec["TaskTemplate"].get("Runtime") or "container") == "process"


def _pruned(value: Any) -> Any:
    """A spec with empty values (zero, false, empty) left out, so that two specs that say
    the same compare equal however each left out what it did not say (Docker's CLI sends an
    empty ``Privileges``, shoal's none)."""
    if isinstance(value, dict):
        result = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in result.items() if v not in (None, {}, [], "", False, 0)}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def same_spec(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether sending ``wanted`` would leave the service as it is."""

    def canonical(spec: dict[str, Any]) -> Any:
        model = ServiceSpec.from_json(spec)
        model.TaskTemplate.Runtime = model.TaskTemplate.runtime  # the daemon stores the default
        fill_daemon_defaults(model)  # and these
        return _pruned(model.to_json())

    return bool(canonical(current) == canonical(wanted))


async def _check_manager(client: Client) -> None:
    info = await client.info()
    if not (info.get("Swarm") or {}).get("ControlAvailable"):
        raise CLIError(NOT_A_MANAGER)


async def _check_external_networks(client: Client, names: list[str]) -> None:
    for name in names:
        if name in BUILTIN_NETWORKS or name.startswith("container:"):
            continue
        try:
            network = await client.get(f"/networks/{quote(name, safe='')}")
        except APIError as error:
            if error.status == 404:
                raise CLIError(
                    f'network "{name}" is declared as external, but could not be found. You '
                    "need to create a swarm-scoped network before the stack is deployed"
                ) from None
            raise
        if network.get("Scope") != "swarm":
            raise CLIError(
                f'network "{name}" is declared as external, but it is not in the right '
                f'scope: "{network.get("Scope")}" instead of "swarm"'
            )


async def _prune(
    client: Client, namespace: str, keep: set[str], plan: StackPlan | None = None
) -> None:
    services = await client.services(stack_filter(namespace))
    for service in sorted(services, key=lambda s: s["Spec"]["Name"]):
        if service["Spec"]["Name"] in keep:
            continue
        if plan is not None:
            plan.remove(service["ID"])
            continue
        out(f"Removing service {service['Spec']['Name']}")
        try:
            await client.delete(f"/services/{service['ID']}")
        except APIError as error:
            # no line end: Docker 20.10 writes none
            err(f"Failed to remove service {service['ID']}: {error}", end="")


async def _create_networks(
    client: Client, namespace: str, networks: dict[str, dict], plan: StackPlan | None = None
) -> None:
    existing = {
        n["Name"]
        for n in await client.request(
            "GET", "/networks", {"filters": filters_param(stack_filter(namespace))}
        )
    }
    for name, body in sorted(networks.items()):
        if name in existing:
            continue
        if plan is not None:
            plan.add("Networks", body)
            continue
        out(f"Creating network {name}")
        try:
            await client.post("/networks/create", body)
        except APIError as error:
            raise CLIError(f"failed to create network {name}: {error}") from None


async def _create_objects(
    client: Client, kind: str, specs: list[dict[str, Any]], plan: StackPlan | None = None
) -> None:
    """Secrets or configs: each updated if there (only its labels may change), else created."""
    for spec in specs:
        name = spec["Name"]
        try:
            found = await client.get(f"/{kind}s/{quote(name, safe='')}")
        except APIError as error:
            if error.status != 404:
                raise
            found = None
        if plan is not None:
            plan.change(f"{kind.capitalize()}s", spec, found)
            continue
        try:
            if found is not None:
                await client.post(
                    f"/{kind}s/{found['ID']}/update", spec, version=found["Version"]["Index"]
                )
            else:
                out(f"Creating {kind} {name}")
                await client.post(f"/{kind}s/create", spec)
        except APIError as error:
            verb = "update" if found is not None else "create"
            raise CLIError(f"failed to {verb} {kind} {name}: {error}") from None


async def _with_ids(
    client: Client, spec: dict[str, Any], network_ids: dict[str, str], dry_run: bool = False
) -> None:
    """Names the daemon would resolve, resolved here, so that the spec compares with the
    stored one: networks by name to their IDs, secrets and configs with their IDs."""
    task = spec["TaskTemplate"]
    for attachment in task.get("Networks") or []:
        target = attachment["Target"]
        if target not in network_ids:
            try:
                network = await client.get(f"/networks/{quote(target, safe='')}")
                network_ids[target] = network["Id"]
            except APIError:
                network_ids[target] = target  # the daemon says what is wrong with it
        # in the order of the names, as Docker's CLI sends them and its daemon keeps them
        attachment["Target"] = network_ids[target]
    container = task["ContainerSpec"]
    for kind, field in (("secret", "Secrets"), ("config", "Configs")):
        if container.get(field):
            # A dry run creates no secret: those the stack would create keep their names
            # only, and the plan gives them the IDs they get in its sandbox.
            resolve = resolve_known_references if dry_run else resolve_references
            container[field] = await resolve(client, kind, tuple(container[field]))


async def _deploy_services(
    client: Client,
    namespace: str,
    services: dict[str, dict[str, Any]],
    resolve_image: str,
    plan: StackPlan | None = None,
) -> list[str]:
    existing = {s["Spec"]["Name"]: s for s in await client.services(stack_filter(namespace))}
    network_ids: dict[str, str] = {}
    ids = []
    for spec in services.values():
        name = spec["Name"]
        container = spec["TaskTemplate"]["ContainerSpec"]
        await _with_ids(client, spec, network_ids, dry_run=plan is not None)
        current = existing.get(name)
        if current is not None:
            if plan is None:
                out(f"Updating service {name} (id: {current['ID']})")
            image = container["Image"]
            current_spec = current["Spec"]
            current_image = (current_spec["TaskTemplate"].get("ContainerSpec") or {}).get("Image")
            if resolve_image == "always" and not _is_process(spec):
                container["Image"] = _tag_image(image)
            elif image == (current_spec.get("Labels") or {}).get(IMAGE_LABEL):
                # unchanged: keep what the previous deploy resolved it to
                container["Image"] = current_image
            elif resolve_image == "changed" and not _is_process(spec):
                container["Image"] = _tag_image(image)
            # stack deploy has no --force: keep the counter so tasks are not redeployed
            spec["TaskTemplate"]["ForceUpdate"] = current_spec["TaskTemplate"].get("ForceUpdate", 0)
            ids.append(current["ID"])
            if same_spec(current_spec, spec):
                if plan is not None:
                    plan.unchanged.append(name)
                continue
            if plan is not None:
                plan.change("Services", spec, current)
                continue
            try:
                resp = await client.post(
                    f"/services/{current['ID']}/update", spec, version=current["Version"]["Index"]
                )
            except APIError as error:
                raise CLIError(f"failed to update service {name}: {error}") from None
            for warning in (resp or {}).get("Warnings") or []:
                err(warning)
        else:
            if resolve_image in ("always", "changed") and not _is_process(spec):
                container["Image"] = _tag_image(container["Image"])
            if plan is not None:
                plan.change("Services", spec, None)
                continue
            out(f"Creating service {name}")
            try:
                resp = await client.post("/services/create", spec)
            except APIError as error:
                raise CLIError(f"failed to create service {name}: {error}") from None
            ids.append(resp["ID"])
    return ids


async def deploy(
    client: Client,
    namespace: str,
    compose_files: tuple[str, ...],
    prune: bool,
    resolve_image: str,
    detach: bool,
    quiet: bool,
    dry_run: bool = False,
    plan_format: str | None = None,
) -> None:
    # reading the files (and stdin) blocks: in a thread
    stack = await asyncio.to_thread(load_stack, namespace, compose_files)
    await _check_manager(client)
    if dry_run:
        await _plan(client, namespace, stack, prune, resolve_image, plan_format)
        return
    if prune:
        await _prune(client, namespace, {s["Name"] for s in stack.services.values()})
    await _check_external_networks(client, stack.external_networks)
    await _create_networks(client, namespace, stack.networks)
    await _create_objects(client, "secret", stack.secrets)
    await _create_objects(client, "config", stack.configs)
    ids = await _deploy_services(client, namespace, stack.services, resolve_image)
    if detach:
        return
    failures = []
    for service_id in ids:
        try:
            await wait_for_convergence(client, service_id, quiet=quiet)
        except CLIError as error:
            failures.append(f"{service_id}: {error.message}")
    if failures:
        raise CLIError("\n".join(failures))


async def _plan(
    client: Client,
    namespace: str,
    stack: Stack,
    prune: bool,
    resolve_image: str,
    plan_format: str | None,
) -> None:
    """``--dry-run``: the same decisions as a deploy, sent together to the plan endpoint in
    place of the requests that would make them."""
    plan = StackPlan()
    if prune:
        await _prune(client, namespace, {s["Name"] for s in stack.services.values()}, plan)
    await _check_external_networks(client, stack.external_networks)
    await _create_networks(client, namespace, stack.networks, plan)
    await _create_objects(client, "secret", stack.secrets, plan)
    await _create_objects(client, "config", stack.configs, plan)
    await _deploy_services(client, namespace, stack.services, resolve_image, plan)
    result = await request_plan(client, "/stacks/deploy", plan.body)
    for name in plan.unchanged:
        # Not sent at all by a deploy: its spec is the same.
        result["Services"].append(unchanged_service(name))
    print_plan(result, plan_format)
