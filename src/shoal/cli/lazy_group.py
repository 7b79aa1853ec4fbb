"""A click group whose subcommands are imported only when one of them runs (click's "lazy
loading of subcommands" pattern): ``shoal node ls`` then loads the node commands and not the
daemon, the stack deployer or the pydantic models. ``--help`` lists every subcommand from the
help text kept in the table, without importing any of them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class LazyCommand:
    """Where a subcommand lives (``module:attribute``) and its help text, as the command
    itself has it, for the list in ``--help``."""

    target: str
    help: str


class LazyGroup(click.Group):
    def __init__(
        self,
        *args: Any,
        lazy_commands: dict[str, LazyCommand] | None = None,
        on_load: Callable[[str, click.Command], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})
        # Called once with each subcommand as it is loaded (shell completion hooks in here).
        self.on_load = on_load

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(self._load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, name: str) -> click.Command:
        module_name, _, attribute = self.lazy_commands[name].target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[name].target} is not a click command")
        if self.on_load is not None:
            self.on_load(name, command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own listing, except that a subcommand not loaded yet is described by a
        # stand-in carrying its help text, so that --help imports nothing.
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            loaded = self.commands.get(name)
            command = loaded or click.Command(name, help=self.lazy_commands[name].help)
            if not command.hidden:
                rows.append((name, command))
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, c.get_short_help_str(limit)) for name, c in rows])
