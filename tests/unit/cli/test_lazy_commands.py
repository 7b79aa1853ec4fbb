"""The ``shoal`` command imports a subcommand only when it runs (start-up time counts on every
call), yet ``--help`` lists every subcommand exactly as the commands themselves describe them."""

import json
import subprocess
import sys

import click

from shoal.cli.main import COMMANDS, cli

# What no shoal command needs merely to start: each is imported by the command that uses it.
HEAVY = (
    "shoal.cli.commands",
    "shoal.daemon",
    "shoal.local",
    "shoal.api",
    "shoal.client",
    "pydantic",
    "aiohttp",
    "rich",
)


def _loaded_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(done.stdout.split())


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_importing_the_cli_loads_no_command():
    assert _heavy(_loaded_after("import shoal.cli.main")) == []


def test_help_loads_no_command():
    loaded = _loaded_after(
        "from click.testing import CliRunner\n"
        "from shoal.cli.main import cli\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0"
    )
    assert _heavy(loaded) == []


def test_a_command_loads_its_own_group_and_not_the_daemon():
    loaded = _loaded_after(
        "from click.testing import CliRunner\n"
        "from shoal.cli.main import cli\n"
        "CliRunner().invoke(cli, ['node', '--help'])"
    )
    assert "shoal.cli.commands.node" in loaded
    assert not [m for m in loaded if m.startswith(("shoal.daemon", "shoal.cli.commands.stack"))]


def test_a_usage_error_does_not_load_the_http_client():
    # aiohttp is imported by the first request to the daemon, not by the client module.
    loaded = _loaded_after(
        "from click.testing import CliRunner\n"
        "from shoal.cli.main import cli\n"
        "assert CliRunner().invoke(cli, ['node', 'ls', '--bogus']).exit_code != 0"
    )
    assert "shoal.client" in loaded
    assert not [m for m in loaded if m.split(".")[0] == "aiohttp"]


def test_only_stack_deploy_loads_the_compose_files_and_models():
    loaded = _loaded_after(
        "from click.testing import CliRunner\n"
        "from shoal.cli.main import cli\n"
        "assert CliRunner().invoke(cli, ['stack', 'ls', '--bogus']).exit_code != 0"
    )
    assert "shoal.cli.commands.stack" in loaded
    assert _heavy(loaded & {"shoal.compose", "shoal.api", "pydantic"}) == []


def test_the_stack_label_is_the_compose_one():
    from shoal.cli.stack_namespace import NAMESPACE_LABEL
    from shoal.compose import NAMESPACE_LABEL as COMPOSE_LABEL

    assert NAMESPACE_LABEL == COMPOSE_LABEL


def test_the_table_has_each_commands_own_help():
    for name, lazy in COMMANDS.items():
        command = cli.get_command(click.Context(cli), name)
        assert command is not None and command.name == name
        assert command.help == lazy.help, name


# In a fresh process: the help at a wide and a narrow width (where the texts are cut short)
# before any command is loaded, then again once click can see every command itself.
HELP_BEFORE_AND_AFTER_LOADING = """
import json, os, sys
import click
from shoal.cli.main import COMMANDS, cli

def helps():
    out = []
    for width in ("80", "50"):
        os.environ["COLUMNS"] = width
        out.append(cli.get_help(click.Context(cli, info_name="shoal", **cli.context_settings)))
    return out

before = helps()
loaded_before = "shoal.daemon.command" in sys.modules
for name in COMMANDS:
    cli.get_command(click.Context(cli), name)
print(json.dumps([before, helps(), loaded_before]))
"""


def test_help_lists_the_commands_as_they_describe_themselves():
    done = subprocess.run(
        [sys.executable, "-c", HELP_BEFORE_AND_AFTER_LOADING],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    from_table, from_commands, loaded_before = json.loads(done.stdout)
    assert not loaded_before
    assert (
        "  daemon      Run a shoal node (the equivalent of dockerd in swarm mode).\n"
        in (from_table[0])
    )
    assert from_table == from_commands
