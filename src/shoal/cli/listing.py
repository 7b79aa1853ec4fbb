"""Lists as Docker prints them: a ``table`` format through the tab writer with a header row,
``json`` as one object per line, any other Go template verbatim, ``-q`` as IDs only."""

from collections.abc import Mapping, Sequence
from typing import Any

from shoal.cli.framework import CLIError, out
from shoal.golang.tabwriter import render
from shoal.golang.template import Template, TemplateError


def parse_filters(values: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
    """--filter name=value, repeatable, into Docker's filter map."""
    filters: dict[str, list[str]] = {}
    for value in values:
        if "=" not in value:
            raise CLIError("bad format of filter (expected name=value)")
        key, _, val = value.partition("=")
        filters.setdefault(key.strip().lower(), []).append(val.strip())
    return filters


def template(source: str) -> Template:
    try:
        return Template(source)
    except TemplateError as error:
        raise CLIError(f"template parsing error: {error}") from None


def normalize_format(fmt: str | None, default: str) -> str:
    if not fmt or fmt == "table":
        return default
    if fmt == "json":
        return "{{json .}}"
    return fmt


def print_list(
    rows: Sequence[Mapping[str, Any]],
    fmt: str | None,
    default: str,
    headers: Mapping[str, str],
    quiet: bool = False,
) -> None:
    if quiet:
        fmt = "{{.ID}}"
    fmt = normalize_format(fmt, default)
    is_table = fmt.startswith("table")
    if is_table:
        fmt = fmt[len("table") :].strip(" ")
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    tmpl = template(fmt)
    try:
        if is_table:
            lines = [tmpl.execute(headers)] + [tmpl.execute(row) for row in rows]
            text = render([ln for line in lines for ln in line.split("\n")])
            out(text, end="")
        else:
            for row in rows:
                out(tmpl.execute(row))
    except TemplateError as error:
        raise CLIError(f"template: {error}") from None


def go_numbers(value: Any) -> Any:
    """Whole floats as integers: Go prints a float64 0 as 0, Python as 0.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [go_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: go_numbers(v) for k, v in value.items()}
    return value


def print_inspect(items: list[Any], fmt: str | None) -> None:
    """``inspect``: an indented JSON array, or a template per item."""
    import json

    if fmt:
        fmt = "{{json .}}" if fmt == "json" else fmt
        tmpl = template(fmt.replace("\\t", "\t").replace("\\n", "\n"))
        for item in items:
            try:
                out(tmpl.execute(item))
            except TemplateError as error:
                raise CLIError(f'template: executing "" at <{fmt}>: {error}') from None
        return
    if not items:
        out("[]")
        return
    text = json.dumps(go_numbers(items), indent=4, ensure_ascii=False)
    out(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
