"""Shell completion: ``shoal completion bash|zsh`` prints the script (click's completion
support, under cobra's command names as ``docker completion`` has them), and the commands that
take a service, node, network, secret, config or stack complete its name from the daemon.

Click completes through the environment: the script calls ``shoal`` with ``_SHOAL_COMPLETE``
set to ``bash_complete`` (or ``zsh_complete``) and ``COMP_WORDS``/``COMP_CWORD`` set, and
prints what it answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import click
from click.shell_completion import CompletionItem, get_completion_class

from shoal.client import Client, resolve_host

COMPLETE_VAR = "_SHOAL_COMPLETE"
SHELLS = ("bash", "zsh")
# How long a completion may wait for the daemon: a shell must not hang on a Tab.
TIMEOUT = 3.0

Lister = Callable[[Client], Awaitable[list[str]]]


async def _services(client: Client) -> list[str]:
    return [s["Spec"]["Name"] for s in await client.services()]


async def _nodes(client: Client) -> list[str]:
    return [(n.get("Description") or {}).get("Hostname") or n["ID"] for n in await client.nodes()]


async def _swarm_networks(client: Client) -> list[str]:
    networks = await client.get("/networks", filters='{"scope":{"swarm":true}}')
    return [n["Name"] for n in networks]


async def _secrets(client: Client) -> list[str]:
    return [s["Spec"]["Name"] for s in await client.get("/secrets")]


async def _configs(client: Client) -> list[str]:
    return [c["Spec"]["Name"] for c in await client.get("/configs")]


async def _stacks(client: Client) -> list[str]:
    labels = (s["Spec"].get("Labels") or {} for s in await client.services())
    return sorted({ns for ns in (lab.get("com.docker.stack.namespace") for lab in labels) if ns})


# (group, command) -> what its arguments name (``service scale`` completes the SERVICE of
# SERVICE=REPLICAS).
ARGUMENTS: dict[tuple[str, str], Lister] = {
    **{
        ("service", c): _services
        for c in ("ps", "inspect", "update", "rollback", "rm", "logs", "scale")
    },
    **{("node", c): _nodes for c in ("inspect", "update", "promote", "demote", "rm", "ps")},
    **{("network", c): _swarm_networks for c in ("inspect", "rm")},
    **{("secret", c): _secrets for c in ("inspect", "rm")},
    **{("config", c): _configs for c in ("inspect", "rm")},
    **{("stack", c): _stacks for c in ("ps", "services", "rm")},
}


def _fetch(host: str | None, lister: Lister) -> list[str]:
    async def go() -> list[str]:
        client = Client(resolve_host(host))
        try:
            return await asyncio.wait_for(lister(client), TIMEOUT)
        finally:
            await client.close()

    try:
        return asyncio.run(go())
    except Exception:  # no daemon, no swarm, too slow: complete nothing rather than fail
        return []


def name_completer(lister: Lister) -> Callable[..., list[CompletionItem]]:
    def complete(
        ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        host = ctx.find_root().params.get("host")
        names = sorted(set(_fetch(host, lister)))
        return [CompletionItem(n) for n in names if n.startswith(incomplete)]

    return complete


def attach_name_completion(group_name: str, group: click.Command) -> None:
    """Give the positional arguments of group_name's commands in ARGUMENTS their completer."""
    if not isinstance(group, click.Group):
        return
    for (name, command_name), lister in ARGUMENTS.items():
        command = group.commands.get(command_name) if name == group_name else None
        if command is None:
            continue
        for i, param in enumerate(command.params):
            if isinstance(param, click.Argument) and param.name == "args":
                command.params[i] = click.Argument(
                    ["args"],
                    nargs=-1,
                    type=click.UNPROCESSED,
                    shell_complete=name_completer(lister),
                )


def completion_script(root: click.Command, shell: str) -> str:
    cls = get_completion_class(shell)
    if cls is None:
        raise click.UsageError(f"unsupported shell: {shell}")
    return cls(root, {}, "shoal", COMPLETE_VAR).source()


@click.group("completion")
def completion_group() -> None:
    """Generate the autocompletion script for the specified shell"""


def _shell_command(shell: str, load: str) -> click.Command:
    @click.command(shell, help=f"Generate the autocompletion script for {shell}.\n\n{load}")
    @click.pass_context
    def command(ctx: click.Context) -> None:
        click.echo(completion_script(ctx.find_root().command, shell), nl=False)

    return command


completion_group.add_command(
    _shell_command(
        "bash",
        "To load completions in your current shell session:\n\n    source <(shoal completion bash)",
    )
)
completion_group.add_command(
    _shell_command(
        "zsh",
        "To load completions in your current shell session:\n\n    source <(shoal completion zsh)",
    )
)
