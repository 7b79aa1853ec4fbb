"""The ``shoal`` command: Docker's swarm verbs (``swarm``, ``node``, ``service``, ``info``,
``version``) against a shoal daemon, plus ``shoal daemon`` and ``shoal local``."""

import itertools
import sys

import click

import shoal
from shoal.cli.commands.config import config_group
from shoal.cli.commands.network import network_group
from shoal.cli.commands.node import node_group
from shoal.cli.commands.secret import secret_group
from shoal.cli.commands.service import service_group
from shoal.cli.commands.stack import stack_group
from shoal.cli.commands.swarm import swarm_group
from shoal.cli.commands.system import info_command, version_command
from shoal.cli.completion import attach_name_completion, completion_group
from shoal.cli.framework import report

# Boolean flags Docker users write as --flag=true / --flag=false.
BOOL_FLAGS = {
    "--detach",
    "-d",
    "--quiet",
    "-q",
    "--force",
    "-f",
    "--no-trunc",
    "--no-resolve",
    "--pretty",
    "--rotate",
    "--init",
    "--read-only",
    "--no-healthcheck",
    "--no-resolve-image",
    "--with-registry-auth",
    "--rollback",
    "--follow",
    "--timestamps",
    "--details",
    "--raw",
    "--no-task-ids",
    "--force-new-cluster",
}


# Flags whose default is true for one command: there --detach=false reaches the command as
# --no-detach.
TRI_STATE = {("stack", "deploy"): {"--detach", "-d"}, ("stack", "up"): {"--detach", "-d"}}


def normalize_bool_flags(argv: list[str]) -> list[str]:
    """--detach=false means the flag was not given; --detach=true that it was."""
    words = [a for a in argv if not a.startswith("-")]
    keep: set[str] = set()
    for pair in itertools.pairwise(words):
        keep |= TRI_STATE.get(pair, set())
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if name in keep and eq and value.lower() in ("false", "0"):
            out.append("--no-detach")
            continue
        if eq and name in BOOL_FLAGS and value.lower() in ("true", "false", "1", "0"):
            if value.lower() in ("true", "1"):
                out.append(name)
            continue
        out.append(arg)
    return out


@click.group("shoal", context_settings={"help_option_names": ["--help"]})
@click.option("-H", "--host", help="Daemon socket to connect to (unix:///path or tcp://host:port)")
@click.option("-D", "--debug", is_flag=True, help="Enable debug mode")
@click.version_option(shoal.__version__, "-v", "--version", message="shoal version %(version)s")
@click.pass_context
def cli(ctx: click.Context, host: str | None, debug: bool) -> None:
    """Docker Swarm mode, written in Python."""
    ctx.obj = {"host": host, "debug": debug}


cli.add_command(swarm_group)
cli.add_command(node_group)
cli.add_command(service_group)
cli.add_command(stack_group)
cli.add_command(network_group)
cli.add_command(secret_group)
cli.add_command(config_group)
cli.add_command(info_command)
cli.add_command(version_command)
cli.add_command(completion_group)
attach_name_completion(cli)


def _add_daemon_commands() -> None:
    # The daemon and local-cluster commands are only imported when present, so the CLI stays
    # light to start.
    from shoal.daemon.command import daemon_command
    from shoal.local.command import local_group

    cli.add_command(daemon_command)
    cli.add_command(local_group)


_add_daemon_commands()


def main(argv: list[str] | None = None) -> None:
    args = normalize_bool_flags(list(sys.argv[1:] if argv is None else argv))
    try:
        status = cli.main(args=args, prog_name="shoal", standalone_mode=False)
    except click.exceptions.Exit as done:
        status = done.exit_code
    except click.Abort:
        status = 130
    except KeyboardInterrupt:
        status = 130
    except BaseException as error:
        if isinstance(error, SystemExit):
            raise
        status = report(error)
    sys.exit(status if isinstance(status, int) else 0)
