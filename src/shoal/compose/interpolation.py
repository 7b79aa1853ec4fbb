"""Variable substitution as Docker's CLI does it in compose files: ``$VAR``, ``${VAR}``,
``${VAR:-default}`` (unset or empty), ``${VAR-default}`` (unset), ``${VAR:?message}`` (unset
or empty is an error), ``${VAR?message}`` (unset is an error) and ``$$`` for a dollar.

Docker's pattern is kept with its quirks: names are matched case-insensitively, and an
unbraced ``$VAR-x`` is read as ``${VAR-x}`` because the modifier part is allowed there too."""

import re
from collections.abc import Callable, Mapping
from typing import Any

from shoal.compose.casting import CastError, cast, caster_for
from shoal.compose.errors import ComposeError

_NAME = r"[_a-z][_a-z0-9]*(?::?[-?][^}]*)?"
_PATTERN = re.compile(
    rf"\$(?i:(?P<escaped>\$)|(?P<named>{_NAME})|{{(?P<braced>{_NAME})}}|(?P<invalid>))"
)


class InvalidTemplate(Exception):
    """A ``$`` expression that cannot be read, or a required variable without a value; the
    text is what Docker quotes in its message."""

    def __init__(self, template: str) -> None:
        super().__init__(template)
        self.template = template


def _required(expr: str, sep: str, env: Mapping[str, str], ok: Callable[[str], bool]) -> str | None:
    name, _, message = expr.partition(sep)
    value = env.get(name)
    if value is None or not ok(value):
        raise InvalidTemplate(f"required variable {name} is missing a value: {message}")
    return value


def _substitute_one(expr: str, env: Mapping[str, str]) -> str:
    # The order matters and is Docker's: ":-", then "-", then ":?", then "?".
    if ":-" in expr:
        name, _, default = expr.partition(":-")
        return env.get(name) or default
    if "-" in expr:
        name, _, default = expr.partition("-")
        value = env.get(name)
        return default if value is None else value
    if ":?" in expr:
        return _required(expr, ":?", env, lambda v: v != "") or ""
    if "?" in expr:
        return _required(expr, "?", env, lambda v: True) or ""
    return env.get(expr, "")


def substitute(template: str, env: Mapping[str, str]) -> str:
    """The string with its variables replaced; raises InvalidTemplate as Docker fails."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        expr = match.group("named") or match.group("braced")
        if not expr:
            raise InvalidTemplate(template)
        return _substitute_one(expr, env)

    return _PATTERN.sub(replace, template)


def _go_quote(text: str) -> str:
    # Go's %#v of a string: double-quoted with Go escapes.
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    escaped = escaped.replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


def interpolate(value: Any, env: Mapping[str, str], path: str) -> Any:
    """Every string under ``value`` substituted (and, where a variable changed it, cast as
    Docker casts it); an error names the path as Docker does (``services.web.image``; a list
    item is ``[]``)."""
    if isinstance(value, str):
        try:
            new = substitute(value, env)
        except InvalidTemplate as error:
            raise ComposeError(
                f"invalid interpolation format for {path}: {_go_quote(error.template)}; "
                "you may need to escape any $ with another $"
            ) from None
        kind = caster_for(path) if new != value else None
        if kind is None:
            return new
        try:
            return cast(new, kind)
        except CastError as error:
            raise ComposeError(
                f"error while interpolating {path}: failed to cast to expected type: {error}"
            ) from None
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, f"{path}.[]") for v in value]
    return value
