"""The ``shoal`` command: Docker's swarm verbs (``swarm``, ``node``, ``service``, ``info``,
``version``) against a shoal daemon, plus ``shoal daemon`` and ``shoal local``."""

import itertools
import sys

import click

import shoal
from shoal.cli.lazy_group import LazyCommand, LazyGroup

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


# Every subcommand, loaded only when it runs (see LazyGroup): each command costs only its own
# imports, and the daemon is imported by ``shoal daemon`` and ``shoal local`` alone. The help
# text is the command's own (tests/unit/cli/test_lazy_commands.py keeps the two the same).
COMMANDS = {
    "swarm": LazyCommand("shoal.cli.commands.swarm:swarm_group", "Manage Swarm"),
    "node": LazyCommand("shoal.cli.commands.node:node_group", "Manage Swarm nodes"),
    "service": LazyCommand("shoal.cli.commands.service:service_group", "Manage Swarm services"),
    "stack": LazyCommand("shoal.cli.commands.stack:stack_group", "Manage Docker stacks"),
    "network": LazyCommand("shoal.cli.commands.network:network_group", "Manage networks"),
    "secret": LazyCommand("shoal.cli.commands.secret:secret_group", "Manage Swarm secrets"),
    "config": LazyCommand("shoal.cli.commands.config:config_group", "Manage Swarm configs"),
    "info": LazyCommand(
        "shoal.cli.commands.system:info_command", "Display system-wide information"
    ),
    "version": LazyCommand(
        "shoal.cli.commands.system:version_command", "Show the shoal version information"
    ),
    "completion": LazyCommand(
        "shoal.cli.completion:completion_group",
        "Generate the autocompletion script for the specified shell",
    ),
    "daemon": LazyCommand(
        "shoal.daemon.command:daemon_command",
        "Run a shoal node (the equivalent of dockerd in swarm mode).",
    ),
    "local": LazyCommand(
        "shoal.local.command:local_group", "Run a cluster of several shoal daemons on this machine."
    ),
}


def _on_load(name: str, command: click.Command) -> None:
    # The completion of names from the daemon is attached to a group as it is loaded.
    from shoal.cli.completion import attach_name_completion

    attach_name_completion(name, command)


@click.group(
    "shoal",
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    on_load=_on_load,
    context_settings={"help_option_names": ["--help"]},
)
@click.option("-H", "--host", help="Daemon socket to connect to (unix:///path or tcp://host:port)")
@click.option("-D", "--debug", is_flag=True, help="Enable debug mode")
@click.version_option(shoal.__version__, "-v", "--version", message="shoal version %(version)s")
@click.pass_context
def cli(ctx: click.Context, host: str | None, debug: bool) -> None:
    """Docker Swarm mode, written in Python."""
    ctx.obj = {"host": host, "debug": debug}


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
        from shoal.cli.framework import report  # only on failure: it imports the client

        status = report(error)
    sys.exit(status if isinstance(status, int) else 0)
