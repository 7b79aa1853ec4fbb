"""``shoal local up`` / ``shoal local down``."""

import asyncio
import json
from pathlib import Path

import click

from shoal import paths
from shoal.local import cluster


def _config_file() -> Path:
    return paths.config_dir() / "config.json"


def _read_config() -> dict:
    try:
        return json.loads(_config_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_config(data: dict) -> None:
    _config_file().parent.mkdir(parents=True, exist_ok=True)
    _config_file().write_text(json.dumps(data, indent=2) + "\n")


@click.group("local")
def local_group() -> None:
    """Run a cluster of several shoal daemons on this machine."""


@local_group.command("up")
@click.option("--managers", default=1, show_default=True, help="Number of manager nodes")
@click.option("--workers", default=2, show_default=True, help="Number of worker nodes")
@click.option(
    "--runtime", "runtimes", multiple=True, help="Runtimes the nodes offer (default: process)"
)
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the nodes keep their state",
)
def up(managers: int, workers: int, runtimes: tuple[str, ...], root: Path | None) -> None:
    """Start a local cluster and make it the CLI's default."""
    root = root or cluster.default_dir()
    if managers < 1:
        raise click.UsageError("a cluster needs at least one manager")
    if managers + workers > 254:
        raise click.UsageError("at most 254 nodes fit on 127.0.0.0/24")
    if cluster.running_pids(root):
        raise click.ClickException(
            f"a local cluster is already running in {root}; run 'shoal local down' first"
        )
    cluster.remove(root)
    nodes = cluster.plan(root, managers, workers)
    for node in nodes:
        cluster.start_daemon(node, list(runtimes))
    try:
        asyncio.run(cluster.form_swarm(nodes, managers))
    except Exception as err:
        asyncio.run(cluster.leave_all(root))
        cluster.stop_all(root)
        raise click.ClickException(str(err)) from None
    config = _read_config()
    config["host"] = f"unix://{nodes[0].socket}"
    _write_config(config)
    click.echo(
        f"Local cluster up: {len(nodes)} nodes ({managers} manager"
        f"{'s' if managers > 1 else ''}, {workers} worker{'s' if workers != 1 else ''}) in {root}"
    )
    for node in nodes:
        click.echo(f"  {node.name:<10} {node.addr:<18} unix://{node.socket}")
    click.echo(f"Dashboard: {nodes[0].dashboard_url}")
    click.echo(f"The shoal CLI now talks to {nodes[0].name}; 'shoal local down' stops the cluster.")


@local_group.command("down")
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the nodes keep their state",
)
def down(root: Path | None) -> None:
    """Stop the local cluster, remove its tasks and its state."""
    root = root or cluster.default_dir()
    asyncio.run(cluster.leave_all(root))
    stopped = cluster.stop_all(root)
    cluster.remove(root)
    config = _read_config()
    if str(config.get("host", "")).startswith(f"unix://{root}"):
        del config["host"]
        _write_config(config)
    click.echo(f"Local cluster down ({stopped} node{'s' if stopped != 1 else ''} stopped).")
