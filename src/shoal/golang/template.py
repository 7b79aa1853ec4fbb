"""The part of Go's text/template that people type after ``--format``: field paths
(``{{.Status.State}}``), ``{{json .}}``, ``if``/``else``/``range``/``with``, variables in
``range $k, $v :=``, pipes (``{{.Name | upper}}``), trim markers (``{{-`` and ``-}}``) and
Docker's template functions (json, join, split, lower, upper, title, truncate, pad, println).
Values are JSON-shaped (dicts, lists, strings, numbers, booleans, None)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class TemplateError(ValueError):
    pass


NO_VALUE = "<no value>"


def go_json(value: Any) -> str:
    """encoding/json as Go writes it: compact, HTML-escaped, keys as given."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def to_text(value: Any) -> str:
    """How Go's fmt prints a value inside a template."""
    if value is None:
        return NO_VALUE
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(to_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{to_text(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def truthy(value: Any) -> bool:
    return bool(value) if value is not None else False


def _truncate(text: Any, n: int) -> str:
    s = str(text)
    return s[:n]


def _pad(text: Any, left: int, right: int) -> str:
    return " " * left + str(text) + " " * right


FUNCS: dict[str, Callable[..., Any]] = {
    "json": go_json,
    "join": lambda items, sep: sep.join(str(i) for i in items or []),
    "split": lambda text, sep: str(text).split(sep),
    "lower": lambda text: str(text).lower(),
    "upper": lambda text: str(text).upper(),
    "title": lambda text: str(text).title(),
    "truncate": _truncate,
    "pad": _pad,
    "println": lambda *args: " ".join(to_text(a) for a in args) + "\n",
    "print": lambda *args: "".join(to_text(a) for a in args),
    "len": lambda v: len(v or []),
    "index": lambda v, *keys: _index(v, keys),
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "lt": lambda a, b: a < b,
    "not": lambda a: not truthy(a),
    "and": lambda *a: next((x for x in a if not truthy(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truthy(x)), a[-1]),
}


def _index(value: Any, keys: tuple) -> Any:
    for key in keys:
        value = value[key] if value is not None else None
    return value


# --- parsing ------------------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\$\w*(?:\.\w+)*|\.[\w.]*|\||\(|\)|:=|,|[^\s|(),]+')


@dataclass
class Node:
    kind: str  # text, action, if, range, with
    text: str = ""
    pipeline: list[list[str]] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)


def _pipeline(expr: str) -> tuple[list[str], list[list[str]]]:
    tokens = _TOKEN.findall(expr)
    variables: list[str] = []
    if ":=" in tokens:
        at = tokens.index(":=")
        variables = [t for t in tokens[:at] if t != ","]
        tokens = tokens[at + 1 :]
    commands: list[list[str]] = [[]]
    for tok in tokens:
        if tok == "|":
            commands.append([])
        else:
            commands[-1].append(tok)
    if not commands[-1]:
        raise TemplateError(f"missing value for command in {expr!r}")
    return variables, commands


def parse(source: str) -> list[Node]:
    pieces: list[tuple[str, str]] = []
    pos = 0
    for m in _ACTION.finditer(source):
        text = source[pos : m.start()]
        if m.group(1):
            text = text.rstrip()
        if pieces and pieces[-1][0] == "trim-right":
            pieces.pop()
            text = text.lstrip()
        pieces.append(("text", text))
        pieces.append(("action", m.group(2).strip()))
        if m.group(3):
            pieces.append(("trim-right", ""))
        pos = m.end()
    tail = source[pos:]
    if pieces and pieces[-1][0] == "trim-right":
        pieces.pop()
        tail = tail.lstrip()
    pieces.append(("text", tail))

    root: list[Node] = []
    # Each open block and the list it was opened in (None: an else-if, closed with its if).
    stack: list[tuple[Node, list[Node] | None]] = []
    current = root
    for kind, text in pieces:
        if kind == "text":
            if text:
                current.append(Node("text", text=text))
            continue
        word = text.split(None, 1)[0] if text else ""
        rest = text[len(word) :].strip()
        if text.startswith("/*"):
            continue
        if word in ("if", "range", "with"):
            variables, pipeline = _pipeline(rest)
            node = Node(word, pipeline=pipeline, variables=variables)
            current.append(node)
            stack.append((node, current))
            current = node.body
        elif word == "else":
            if not stack:
                raise TemplateError("unexpected {{else}}")
            node, parent = stack[-1]
            if rest.startswith("if "):
                # else if: an if nested in the else branch, closed by the same {{end}}
                variables, pipeline = _pipeline(rest[3:])
                inner = Node("if", pipeline=pipeline, variables=variables)
                node.orelse.append(inner)
                stack[-1] = (node, parent)
                stack.append((inner, None))
                current = inner.body
            else:
                current = node.orelse
        elif word == "end":
            if not stack:
                raise TemplateError("unexpected {{end}}")
            node, parent = stack.pop()
            while parent is None:  # close the chain of else-ifs
                node, parent = stack.pop()
            current = parent
        else:
            variables, pipeline = _pipeline(text)
            current.append(Node("action", pipeline=pipeline, variables=variables))
    if stack:
        raise TemplateError("unexpected EOF")
    return root


# --- execution ----------------------------------------------------------------------------


class Template:
    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes = parse(source)

    def execute(self, data: Any) -> str:
        out: list[str] = []
        _run(self.nodes, data, {"$": data}, out)
        return "".join(out)


def _field(value: Any, path: str) -> Any:
    for name in [p for p in path.split(".") if p]:
        if isinstance(value, dict):
            value = value.get(name)
        elif value is None:
            return None
        else:
            value = getattr(value, name, None)
    return value


def _arg(token: str, dot: Any, scope: dict[str, Any]) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    if token.startswith("`"):
        return token[1:-1]
    if token.startswith("$"):
        name, _, path = token.partition(".")
        if name not in scope:
            raise TemplateError(f'undefined variable "{name}"')
        return _field(scope[name], path)
    if token.startswith("."):
        return _field(dot, token)
    if token in ("true", "false"):
        return token == "true"
    if token == "nil":
        return None
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        pass
    raise TemplateError(f'function "{token}" not defined')


def _eval(pipeline: list[list[str]], dot: Any, scope: dict[str, Any]) -> Any:
    result: Any = None
    for i, command in enumerate(pipeline):
        head, args = command[0], command[1:]
        if head in FUNCS:
            values = [_arg(a, dot, scope) for a in args]
            if i > 0:
                values.append(result)
            try:
                result = FUNCS[head](*values)
            except TypeError as err:
                raise TemplateError(f"wrong number of args for {head}") from err
        else:
            result = _arg(head, dot, scope)
    return result


def _run(nodes: list[Node], dot: Any, scope: dict[str, Any], out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "action":
            value = _eval(node.pipeline, dot, scope)
            if node.variables:
                scope[node.variables[0]] = value
            else:
                out.append(to_text(value))
        elif node.kind == "if":
            if truthy(_eval(node.pipeline, dot, scope)):
                _run(node.body, dot, scope, out)
            else:
                _run(node.orelse, dot, scope, out)
        elif node.kind == "with":
            value = _eval(node.pipeline, dot, scope)
            if truthy(value):
                _run(node.body, value, scope, out)
            else:
                _run(node.orelse, dot, scope, out)
        elif node.kind == "range":
            value = _eval(node.pipeline, dot, scope)
            items = (
                sorted(value.items()) if isinstance(value, dict) else list(enumerate(value or []))
            )
            if not items:
                _run(node.orelse, dot, scope, out)
            for key, item in items:
                inner = dict(scope)
                if len(node.variables) == 2:
                    inner[node.variables[0]], inner[node.variables[1]] = key, item
                elif len(node.variables) == 1:
                    inner[node.variables[0]] = item
                _run(node.body, item, inner, out)
