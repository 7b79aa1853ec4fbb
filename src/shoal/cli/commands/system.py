"""``shoal info`` and ``shoal version``."""

import platform
import sys

import click

import shoal
from shoal.cli.framework import DockerCommand, out, with_client
from shoal.cli.humanize import bytes_size, human_duration
from shoal.cli.listing import print_inspect
from shoal.client import Client, ConnectError


def _swarm_lines(swarm: dict) -> list[str]:
    state = swarm.get("LocalNodeState") or "inactive"
    lines = [f" Swarm: {state}"]
    if state == "locked":
        return lines  # as Docker's CLI: nothing more of a locked node's swarm
    if state != "active":
        if swarm.get("Error"):
            lines.append(f"  Error: {swarm['Error']}")
        return lines
    lines.append(f"  NodeID: {swarm.get('NodeID', '')}")
    if swarm.get("Error"):
        lines.append(f"  Error: {swarm['Error']}")
    manager = bool(swarm.get("ControlAvailable"))
    lines.append(f"  Is Manager: {'true' if manager else 'false'}")
    cluster = swarm.get("Cluster") or {}
    if manager and cluster:
        spec = cluster.get("Spec") or {}
        raft = spec.get("Raft") or {}
        ca = spec.get("CAConfig") or {}
        lines.append(f"  ClusterID: {cluster.get('ID', '')}")
        lines.append(f"  Managers: {swarm.get('Managers', 0)}")
        lines.append(f"  Nodes: {swarm.get('Nodes', 0)}")
        pools = cluster.get("DefaultAddrPool")
        if pools:
            # Docker's CLI writes two spaces after each pool, the last one included.
            lines.append("  Default Address Pool: " + "".join(f"{p}  " for p in pools))
            lines.append(f"  SubnetSize: {cluster.get('SubnetSize', 0)}")
        lines.append(f"  Data Path Port: {cluster.get('DataPathPort', 4789)}")
        lines.append("  Orchestration:")
        limit = (spec.get("Orchestration") or {}).get("TaskHistoryRetentionLimit") or 0
        lines.append(f"   Task History Retention Limit: {limit}")
        lines.append("  Raft:")
        lines.append(f"   Snapshot Interval: {raft.get('SnapshotInterval', 0)}")
        if raft.get("KeepOldSnapshots") is not None:
            lines.append(f"   Number of Old Snapshots to Retain: {raft['KeepOldSnapshots']}")
        lines.append(f"   Heartbeat Tick: {raft.get('HeartbeatTick', 0)}")
        lines.append(f"   Election Tick: {raft.get('ElectionTick', 0)}")
        lines.append("  Dispatcher:")
        heartbeat = (spec.get("Dispatcher") or {}).get("HeartbeatPeriod") or 0
        lines.append(f"   Heartbeat Period: {human_duration(heartbeat)}")
        lines.append("  CA Configuration:")
        lines.append(f"   Expiry Duration: {human_duration(ca.get('NodeCertExpiry') or 0)}")
        lines.append(f"   Force Rotate: {ca.get('ForceRotate') or 0}")
        autolock = (spec.get("EncryptionConfig") or {}).get("AutoLockManagers")
        lines.append(f"  Autolock Managers: {'true' if autolock else 'false'}")
        rotating = cluster.get("RootRotationInProgress")
        lines.append(f"  Root Rotation In Progress: {'true' if rotating else 'false'}")
    lines.append(f"  Node Address: {swarm.get('NodeAddr', '')}")
    managers = swarm.get("RemoteManagers") or []
    if managers:
        lines.append("  Manager Addresses:")
        for addr in sorted(m.get("Addr", "") for m in managers):
            lines.append(f"   {addr}")
    return lines


def _server_lines(info: dict) -> list[str]:
    lines = ["Server:"]
    lines.append(f" Containers: {info.get('Containers', 0)}")
    lines.append(f"  Running: {info.get('ContainersRunning', 0)}")
    lines.append(f"  Paused: {info.get('ContainersPaused', 0)}")
    lines.append(f"  Stopped: {info.get('ContainersStopped', 0)}")
    lines.append(f" Images: {info.get('Images', 0)}")
    lines.append(f" Server Version: {info.get('ServerVersion', '')}")
    if info.get("Driver"):
        lines.append(f" Storage Driver: {info['Driver']}")
    lines.append(f" Logging Driver: {info.get('LoggingDriver', '')}")
    lines += _swarm_lines(info.get("Swarm") or {})
    runtimes = sorted((info.get("Runtimes") or {}).keys())
    if runtimes:
        lines.append(" Runtimes: " + " ".join(runtimes))
        lines.append(f" Default Runtime: {info.get('DefaultRuntime', '')}")
    lines.append(f" Kernel Version: {info.get('KernelVersion', '')}")
    lines.append(f" Operating System: {info.get('OperatingSystem', '')}")
    lines.append(f" OSType: {info.get('OSType', '')}")
    lines.append(f" Architecture: {info.get('Architecture', '')}")
    lines.append(f" CPUs: {info.get('NCPU', 0)}")
    lines.append(f" Total Memory: {bytes_size(info.get('MemTotal') or 0)}")
    lines.append(f" Name: {info.get('Name', '')}")
    lines.append(f" ID: {info.get('ID', '')}")
    lines.append(f" Docker Root Dir: {info.get('DockerRootDir', '')}")
    lines.append(" Debug Mode: false")
    labels = info.get("Labels") or []
    if labels:
        lines.append(" Labels:")
        lines += [f"  {label}" for label in labels]
    lines.append(" Experimental: false")
    lines.append(f" Live Restore Enabled: {'true' if info.get('LiveRestoreEnabled') else 'false'}")
    return lines


def _client_lines() -> list[str]:
    return [
        "Client:",
        f" Version:    {shoal.__version__}",
        " Context:    default",
        " Debug Mode: false",
    ]


@click.command("info", cls=DockerCommand)
@click.option("-f", "--format", "fmt", help="Format output using a custom template")
@with_client
async def info_command(client: Client, fmt: str | None) -> None:
    """Display system-wide information"""
    if fmt:
        info = await client.info()
        print_inspect([info], fmt)
        return
    lines = [*_client_lines(), ""]
    try:
        info = await client.info()
    except ConnectError as error:
        out("\n".join(lines))
        raise error
    lines += _server_lines(info)
    out("\n".join(lines) + "\n")


@click.command("version", cls=DockerCommand)
@click.option("-f", "--format", "fmt", help="Format output using a custom template")
@with_client
async def version_command(client: Client, fmt: str | None) -> None:
    """Show the shoal version information"""
    client_info = {
        "Version": shoal.__version__,
        "ApiVersion": "1.47",
        "GoVersion": f"python{sys.version.split()[0]}",
        "Os": platform.system().lower(),
        "Arch": platform.machine(),
    }
    server = None
    error = None
    try:
        server = await client.get("/version")
    except ConnectError as err:
        error = err
    if fmt:
        print_inspect([{"Client": client_info, "Server": server}], fmt)
    else:
        lines = [
            "Client:",
            f" Version:           {client_info['Version']}",
            f" API version:       {client_info['ApiVersion']}",
            f" Python version:    {sys.version.split()[0]}",
            f" OS/Arch:           {client_info['Os']}/{client_info['Arch']}",
        ]
        if server:
            lines += [
                "",
                "Server:",
                " Engine:",
                f"  Version:          {server.get('Version', '')}",
                f"  API version:      {server.get('ApiVersion', '')} (minimum version {server.get('MinAPIVersion', '')})",
                f"  OS/Arch:          {server.get('Os', '')}/{server.get('Arch', '')}",
            ]
        out("\n".join(lines))
    if error:
        raise error
