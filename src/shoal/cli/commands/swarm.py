"""``shoal swarm init|join|join-token|leave|update|ca|unlock|unlock-key``."""

import asyncio
import hashlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from shoal.cli.framework import (
    CIDR,
    DURATION,
    INT64,
    UINT32,
    UINT64,
    CLIError,
    docker_command,
    out,
    with_client,
)
from shoal.client import APIError, Client


@click.group("swarm")
def swarm_group() -> None:
    """Manage Swarm"""


F = TypeVar("F", bound=Callable[..., Any])


def _spec_flags(fn: F) -> F:
    """The cluster settings `swarm init` and `swarm update` share."""
    options = [
        click.option(
            "--task-history-limit", type=INT64, help="Task history retention limit (default 5)"
        ),
        click.option(
            "--dispatcher-heartbeat",
            type=DURATION,
            help="Dispatcher heartbeat period (ns|us|ms|s|m|h) (default 5s)",
        ),
        click.option(
            "--cert-expiry",
            type=DURATION,
            help="Validity period for node certificates (ns|us|ms|s|m|h) (default 2160h0m0s)",
        ),
        click.option(
            "--snapshot-interval",
            type=UINT64,
            help="Number of log entries between Raft snapshots (default 10000)",
        ),
        click.option(
            "--max-snapshots", type=UINT64, help="Number of additional Raft snapshots to retain"
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _apply_spec_flags(spec: dict, flags: dict[str, Any]) -> None:
    if flags.get("task_history_limit") is not None:
        spec.setdefault("Orchestration", {})["TaskHistoryRetentionLimit"] = flags[
            "task_history_limit"
        ]
    if flags.get("dispatcher_heartbeat") is not None:
        spec.setdefault("Dispatcher", {})["HeartbeatPeriod"] = flags["dispatcher_heartbeat"]
    if flags.get("cert_expiry") is not None:
        spec.setdefault("CAConfig", {})["NodeCertExpiry"] = flags["cert_expiry"]
    if flags.get("snapshot_interval") is not None:
        spec.setdefault("Raft", {})["SnapshotInterval"] = flags["snapshot_interval"]
    if flags.get("max_snapshots") is not None:
        spec.setdefault("Raft", {})["KeepOldSnapshots"] = flags["max_snapshots"]


async def _print_join_command(client: Client, role: str, quiet: bool) -> None:
    swarm = await client.get("/swarm")
    token = (swarm.get("JoinTokens") or {}).get(role.capitalize(), "")
    if quiet:
        out(token)
        return
    info = await client.info()
    managers = (info.get("Swarm") or {}).get("RemoteManagers") or []
    me = (info.get("Swarm") or {}).get("NodeID")
    addr = next((m["Addr"] for m in managers if m.get("NodeID") == me), None)
    addr = addr or (managers[0]["Addr"] if managers else "")
    out(f"To add a {role} to this swarm, run the following command:\n")
    out(f"    shoal swarm join --token {token} {addr}\n")


@docker_command(swarm_group, "init", "[OPTIONS]")
@click.option("--advertise-addr", help="Advertised address (format: <ip|interface>[:port])")
@click.option("--listen-addr", default="", help="Listen address (format: <ip|interface>[:port])")
@click.option(
    "--force-new-cluster", is_flag=True, help="Force create a new cluster from current state"
)
@click.option("--data-path-addr", help="Address or interface to use for data path traffic")
@click.option(
    "--availability", default="active", help='Availability of the node ("active", "pause", "drain")'
)
@click.option(
    "--autolock",
    is_flag=True,
    help="Enable manager autolocking (requiring an unlock key to start a stopped manager)",
)
@click.option(
    "--default-addr-pool",
    "addr_pools",
    type=CIDR,
    multiple=True,
    help="default address pool in CIDR format (default [])",
)
@click.option(
    "--default-addr-pool-mask-length",
    "mask_length",
    type=UINT32,
    default="24",
    help="default address pool subnet mask length (default 24)",
)
@click.option(
    "--data-path-port",
    type=UINT32,
    default="0",
    help="Port number to use for data path traffic (1024 - 49151). If no value is set or is "
    "set to 0, the default port (4789) is used.",
)
@_spec_flags
@with_client
async def swarm_init(
    client: Client,
    advertise_addr: str | None,
    listen_addr: str,
    force_new_cluster: bool,
    data_path_addr: str | None,
    availability: str,
    autolock: bool,
    addr_pools: tuple[str, ...],
    mask_length: int,
    data_path_port: int,
    **flags: Any,
) -> None:
    """Initialize a swarm"""
    spec: dict[str, Any] = {}
    _apply_spec_flags(spec, flags)
    if autolock:
        spec.setdefault("EncryptionConfig", {})["AutoLockManagers"] = True
    body = {
        "ListenAddr": listen_addr,
        "AdvertiseAddr": advertise_addr or "",
        "DataPathAddr": data_path_addr or "",
        "ForceNewCluster": force_new_cluster,
        "Availability": availability,
        "Spec": spec,
        "DefaultAddrPool": list(addr_pools),
        "SubnetSize": mask_length,
        "DataPathPort": data_path_port,
        "AutoLockManagers": autolock,
    }
    node_id = await client.post("/swarm/init", body)
    out(f"Swarm initialized: current node ({node_id}) is now a manager.\n")
    await _print_join_command(client, "worker", False)
    out(
        "To add a manager to this swarm, run 'shoal swarm join-token manager' and follow the instructions."
    )
    if autolock:
        _print_unlock_command(await _fetch_unlock_key(client))


@docker_command(swarm_group, "join", "[OPTIONS] HOST:PORT", min_args=1, max_args=1)
@click.option("--token", default="", help="Token for entry into the swarm")
@click.option("--advertise-addr", help="Advertised address (format: <ip|interface>[:port])")
@click.option("--listen-addr", default="", help="Listen address (format: <ip|interface>[:port])")
@click.option("--data-path-addr", help="Address or interface to use for data path traffic")
@click.option(
    "--availability", default="active", help='Availability of the node ("active", "pause", "drain")'
)
@with_client
async def swarm_join(
    client: Client,
    args: tuple[str, ...],
    token: str,
    advertise_addr: str | None,
    listen_addr: str,
    data_path_addr: str | None,
    availability: str,
) -> None:
    """Join a swarm as a node and/or manager"""
    body = {
        "ListenAddr": listen_addr,
        "AdvertiseAddr": advertise_addr or "",
        "DataPathAddr": data_path_addr or "",
        "RemoteAddrs": [args[0]],
        "JoinToken": token,
        "Availability": availability,
    }
    await client.post("/swarm/join", body)
    info = await client.info()
    manager = (info.get("Swarm") or {}).get("ControlAvailable")
    out(f"This node joined a swarm as a {'manager' if manager else 'worker'}.")


@docker_command(swarm_group, "join-token", "[OPTIONS] (worker|manager)", min_args=1, max_args=1)
@click.option("-q", "--quiet", is_flag=True, help="Only display token")
@click.option("--rotate", is_flag=True, help="Rotate join token")
@with_client
async def swarm_join_token(
    client: Client, args: tuple[str, ...], quiet: bool, rotate: bool
) -> None:
    """Manage join tokens"""
    role = args[0]
    if role not in ("worker", "manager"):
        raise CLIError(f"unknown role {role}")
    if rotate:
        swarm = await client.get("/swarm")
        params = {"version": swarm["Version"]["Index"]}
        params["rotateWorkerToken" if role == "worker" else "rotateManagerToken"] = "true"
        await client.request("POST", "/swarm/update", params, swarm["Spec"])
        if not quiet:
            out(f"Successfully rotated {role} join token.\n")
    await _print_join_command(client, role, quiet)


@docker_command(swarm_group, "leave", "[OPTIONS]")
@click.option(
    "-f", "--force", is_flag=True, help="Force this node to leave the swarm, ignoring warnings"
)
@with_client
async def swarm_leave(client: Client, force: bool) -> None:
    """Leave the swarm"""
    await client.post("/swarm/leave", None, force=force)
    out("Node left the swarm.")


@docker_command(swarm_group, "update", "[OPTIONS]")
@click.option(
    "--autolock",
    type=click.BOOL,
    default=None,
    help="Change manager autolocking setting (true|false)",
)
@_spec_flags
@click.pass_context
def swarm_update(ctx: click.Context, /, autolock: bool | None, **flags: Any) -> None:
    """Update the swarm"""
    if autolock is None and all(v is None for v in flags.values()):
        out(ctx.get_help())
        return
    _swarm_update(autolock, flags)


@with_client
async def _swarm_update(client: Client, autolock: bool | None, flags: dict[str, Any]) -> None:
    swarm = await client.get("/swarm")
    spec = swarm["Spec"]
    was_locked = bool((spec.get("EncryptionConfig") or {}).get("AutoLockManagers"))
    _apply_spec_flags(spec, flags)
    if autolock is not None:
        spec.setdefault("EncryptionConfig", {})["AutoLockManagers"] = autolock
    await client.request("POST", "/swarm/update", {"version": swarm["Version"]["Index"]}, spec)
    out("Swarm updated.")
    if autolock and not was_locked:
        # As Docker's CLI: the key is shown once, when autolock is turned on.
        _print_unlock_command(await _fetch_unlock_key(client))


@docker_command(swarm_group, "ca", "[OPTIONS]")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output")
@click.option("--rotate", is_flag=True, help="Rotate the swarm CA")
@click.option(
    "-d",
    "--detach",
    is_flag=True,
    help="Exit immediately instead of waiting for the root rotation to converge",
)
@with_client
async def swarm_ca(client: Client, quiet: bool, rotate: bool, detach: bool) -> None:
    """Display and rotate the root CA"""
    swarm = await client.get("/swarm")
    if rotate:
        spec = swarm["Spec"]
        ca = spec.setdefault("CAConfig", {})
        ca["ForceRotate"] = int(ca.get("ForceRotate") or 0) + 1
        await client.request("POST", "/swarm/update", {"version": swarm["Version"]["Index"]}, spec)
        if not detach:
            await _wait_for_root_rotation(client, quiet)
        swarm = await client.get("/swarm")
    out((swarm.get("TLSInfo") or {}).get("TrustRoot", "").rstrip("\n"))


async def _wait_for_root_rotation(client: Client, quiet: bool) -> None:
    """As Docker's CLI does: poll until every node has a certificate from the cluster's
    root and trusts only it, and no rotation is under way. Without a terminal Docker's
    progress shows only the desired root's digest, once per poll."""
    if not quiet:
        out("desired root digest: \n  rotated TLS certificates: \n  rotated CA certificates:  ")
    done = False
    while True:
        swarm = await client.get("/swarm")
        if done:
            return
        desired = swarm.get("TLSInfo") or {}
        nodes = await client.get("/nodes")
        infos = [((n.get("Description") or {}).get("TLSInfo") or {}) for n in nodes]
        certs_right = all(
            i.get("CertIssuerPublicKey") == desired.get("CertIssuerPublicKey")
            and i.get("CertIssuerSubject") == desired.get("CertIssuerSubject")
            for i in infos
        )
        roots_right = all(i.get("TrustRoot") == desired.get("TrustRoot") for i in infos)
        if not quiet:
            digest = hashlib.sha256((desired.get("TrustRoot") or "").encode()).hexdigest()
            out(f"desired root digest: sha256:{digest}")
        done = certs_right and roots_right and not swarm.get("RootRotationInProgress")
        await asyncio.sleep(0.2)


@docker_command(swarm_group, "unlock-key", "[OPTIONS]")
@click.option("-q", "--quiet", is_flag=True, help="Only display token")
@click.option("--rotate", is_flag=True, help="Rotate unlock key")
@with_client
async def swarm_unlock_key(client: Client, quiet: bool, rotate: bool) -> None:
    """Manage the unlock key"""
    if rotate:
        swarm = await client.get("/swarm")
        spec = swarm["Spec"]
        if not (spec.get("EncryptionConfig") or {}).get("AutoLockManagers"):
            raise CLIError("cannot rotate because autolock is not turned on")
        params = {"version": swarm["Version"]["Index"], "rotateManagerUnlockKey": "true"}
        await client.request("POST", "/swarm/update", params, spec)
        if not quiet:
            out("Successfully rotated manager unlock key.")
    key = await _fetch_unlock_key(client)
    if not key:
        raise CLIError("no unlock key is set")
    if quiet:
        out(key)
        return
    _print_unlock_command(key)


async def _fetch_unlock_key(client: Client) -> str:
    try:
        return str((await client.get("/swarm/unlockkey")).get("UnlockKey") or "")
    except APIError as err:
        raise CLIError(f"could not fetch unlock key: {err}") from None


def _print_unlock_command(key: str) -> None:
    if not key:
        return
    out(
        "To unlock a swarm manager after it restarts, run the `shoal swarm unlock`\n"
        "command and provide the following key:\n\n"
        f"    {key}\n\n"
        "Remember to store this key in a password manager, since without it you\n"
        "will not be able to restart the manager."
    )


@docker_command(swarm_group, "unlock", "")
@with_client
async def swarm_unlock(client: Client) -> None:
    """Unlock swarm"""
    # As Docker's CLI: ask for the key only when the node is locked.
    state = ((await client.info()).get("Swarm") or {}).get("LocalNodeState")
    if state == "inactive":
        raise CLIError("Error: This node is not part of a swarm")
    if state != "locked":
        raise CLIError("Error: swarm is not locked")
    await client.post("/swarm/unlock", {"UnlockKey": _read_key("Please enter unlock key: ")})


def _read_key(prompt: str) -> str:
    """A line from stdin; on a terminal, prompted and not echoed."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()
