"""How shoal's commands parse and fail the way Docker's do: flag errors exit 125 with the usage
line, a wrong number of arguments exits 1 with "requires N argument", the daemon's errors print
as "Error response from daemon: ...", and typed flags reject bad values in Go's words."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from shoal import golang
from shoal.cli.humanize import ram_in_bytes
from shoal.client import APIError, Client, ConnectError, resolve_host

F = TypeVar("F", bound=Callable[..., Any])


class CLIError(Exception):
    """An error the CLI itself reports: printed as it is on stderr, exit status 1."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class FlagError(click.UsageError):
    """A bad flag value: Docker prints the message, the usage line and exits 125."""


class ArgsError(click.UsageError):
    """The wrong number of positional arguments (Docker exits 1 for these)."""

    def __init__(self, message: str, ctx: click.Context, see: bool) -> None:
        super().__init__(message, ctx)
        self.see = see


def command_path(ctx: click.Context | None) -> str:
    return ctx.command_path if ctx is not None else "shoal"


def usage_text(ctx: click.Context | None) -> str:
    cmd = ctx.command if ctx is not None else None
    usage = getattr(cmd, "docker_usage", None) or "[OPTIONS]"
    return f"Usage:  {command_path(ctx)} {usage}".rstrip()


class DockerCommand(click.Command):
    """A command with Docker's usage line and argument-count rules. Positional arguments are
    collected in ``args`` and checked here, so the message is Docker's rather than click's."""

    def __init__(
        self,
        *a: Any,
        docker_usage: str = "[OPTIONS]",
        min_args: int = 0,
        max_args: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(*a, **kw)
        self.docker_usage = docker_usage
        self.min_args = min_args
        self.max_args = max_args

    def invoke(self, ctx: click.Context) -> Any:
        args = ctx.params.get("args", ())
        if self.max_args == 0:
            # Collected only to be refused in Docker's words: the command takes none.
            ctx.params.pop("args", None)
        n = len(args)
        path = ctx.command_path
        if self.max_args == 0 and n:
            raise ArgsError(f"{path.split()[0]}: '{path}' accepts no arguments", ctx, False)
        if self.max_args is not None and self.min_args == self.max_args and n != self.min_args:
            plural = "" if self.min_args == 1 else "s"
            raise ArgsError(
                f"{path.split()[0]}: '{path}' requires {self.min_args} argument{plural}", ctx, False
            )
        if (
            self.min_args
            and self.max_args is not None
            and self.min_args < self.max_args
            and not self.min_args <= n <= self.max_args
        ):
            # cobra's RequiresRangeArgs, as Docker's CLI words it.
            plural = "" if self.max_args == 1 else "s"
            raise ArgsError(
                f"{path.split()[0]}: '{path}' requires at least {self.min_args} and at most "
                f"{self.max_args} argument{plural}",
                ctx,
                False,
            )
        if n < self.min_args:
            plural = "" if self.min_args == 1 else "s"
            raise ArgsError(
                f"{path.split()[0]}: '{path}' requires at least {self.min_args} argument{plural}",
                ctx,
                True,
            )
        if self.max_args is not None and n > self.max_args:
            plural = "" if self.max_args == 1 else "s"
            raise ArgsError(
                f"{path.split()[0]}: '{path}' accepts no arguments"
                if self.max_args == 0
                else f"{path.split()[0]}: '{path}' requires at most {self.max_args} argument{plural}",
                ctx,
                False,
            )
        return super().invoke(ctx)


def docker_command(
    group: click.Group,
    name: str,
    usage: str,
    min_args: int = 0,
    max_args: int | None = 0,
    **kw: Any,
) -> Callable:
    """Register a command with Docker's usage line; positional arguments arrive as ``args``."""

    def decorate(fn: Callable) -> click.Command:
        params = [click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)]
        cmd = group.command(
            name,
            cls=DockerCommand,
            docker_usage=usage,
            min_args=min_args,
            max_args=max_args,
            **kw,
        )(fn)
        cmd.params.extend(params)
        return cmd

    return decorate


# --- running a command against the daemon ---------------------------------------------------


def host_option() -> str | None:
    ctx = click.get_current_context()
    return (ctx.find_root().obj or {}).get("host")


def with_client(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Run an async command body with a client for the chosen daemon as its first argument."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        async def go() -> Any:
            client = Client(resolve_host(host_option()))
            try:
                return await fn(client, *args, **kwargs)
            finally:
                await client.close()

        return asyncio.run(go())

    return wrapper


def out(text: str = "", end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


def err(text: str, end: str = "\n") -> None:
    sys.stderr.write(text + end)
    sys.stderr.flush()


def report(error: BaseException) -> int:
    """Print an error as Docker would; return the exit status."""
    if isinstance(error, APIError | ConnectError):
        err(str(error))
        return 1
    if isinstance(error, CLIError):
        err(error.message)
        return error.status
    if isinstance(error, ArgsError):
        ctx = error.ctx
        more = "See" if error.see else "Run"
        err(
            f"{error.message}\n\n{usage_text(ctx)}\n\n"
            f"{more} '{command_path(ctx)} --help' for more information"
        )
        return 1
    if isinstance(error, click.NoSuchOption):
        name = error.option_name
        message = (
            f"unknown flag: {name}"
            if name.startswith("--")
            else f"unknown shorthand flag: '{name[1:]}' in {name}"
        )
        return _flag_error(message, error.ctx)
    if isinstance(error, click.BadOptionUsage) and "requires an argument" in error.message:
        name = error.option_name
        return _flag_error(f"flag needs an argument: {name}", error.ctx)
    if isinstance(error, click.ClickException) and not isinstance(error, click.UsageError):
        err(f"Error: {error.format_message()}")
        return error.exit_code
    if isinstance(error, click.UsageError):
        return _flag_error(
            error.message if isinstance(error, FlagError) else error.format_message(), error.ctx
        )
    raise error


def _flag_error(message: str, ctx: click.Context | None) -> int:
    err(f"{message}\n\n{usage_text(ctx)}\n\nRun '{command_path(ctx)} --help' for more information")
    return 125


# --- typed flags, with Go's parse errors --------------------------------------------------


def flag_label(param: click.Parameter | None) -> str:
    if param is None:
        return ""
    opts = sorted(param.opts, key=len)
    return ", ".join(opts)


class GoValue(click.ParamType):
    """A flag parsed by a Go function: a failure reads
    'invalid argument "abc" for "--replicas" flag: strconv.ParseUint: ...'."""

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self._parse(value)
        except (golang.GoError, ValueError) as error:
            raise FlagError(
                f'invalid argument "{value}" for "{flag_label(param)}" flag: {error}', ctx
            ) from None


def _parse_float(value: str) -> float:
    return golang.parse_float(value)


def _nano_cpus(value: str) -> int:
    # opts.NanoCPUs: a decimal number of CPUs
    try:
        number = float(value)
    except ValueError:
        raise golang.GoError(f"failed to parse {value} as a rational number") from None
    return int(number * 1e9)


def _cidr(value: str) -> str:
    # pflag's ipNetSlice: each value a CIDR, written back as Go's net.IPNet prints it.
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise golang.GoError(f"invalid string being converted to CIDR: {value}") from None


def _filter(value: str) -> str:
    # opts.FilterOpt: name=value, checked as the flag is read.
    if "=" not in value:
        raise golang.GoError("bad format of filter (expected name=value)")
    return value


UINT64 = GoValue("uint", lambda v: golang.parse_uint(v, 10, 64))
UINT32 = GoValue("uint32", lambda v: golang.parse_uint(v, 10, 32))
CIDR = GoValue("ipNetSlice", _cidr)
FILTER = GoValue("filter", _filter)
INT64 = GoValue("int", lambda v: golang.parse_int(v, 10, 64))
DURATION = GoValue("duration", golang.parse_duration)
FLOAT = GoValue("float", _parse_float)
BYTES = GoValue("bytes", ram_in_bytes)
NANO_CPUS = GoValue("decimal", _nano_cpus)
BOOL = GoValue("bool", golang.parse_bool)


def filter_option(help: str = "Filter output based on conditions provided") -> Callable[[F], F]:
    """``-f/--filter name=value``, repeatable, checked as Docker's opts.FilterOpt checks it."""
    return click.option("-f", "--filter", "filters", multiple=True, type=FILTER, help=help)


def optional_duration(value: str) -> int:
    return golang.parse_duration(value)
