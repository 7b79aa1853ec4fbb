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


class FuncError(Exception):
    """Raised by a template function: Go's "error calling NAME: MESSAGE"."""


class _MissingKey(TemplateError):
    """A field or map key that is not there, under missingkey=error."""


class _ExecError(TemplateError):
    """An error while executing a command: where it happened, for Go's error context."""

    def __init__(self, message: str, pos: int, command: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.command = command


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
        if isinstance(value, dict):
            # Go's index gives a missing map key's zero value ("" for the string maps
            # templates index: labels), not an error.
            value = value.get(key, "")
        else:
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
    positions: list[int] = field(default_factory=list)  # each command's offset in the source


def _chain_offset(token: str) -> int:
    """Where Go's parser places a field chain (``.Service.Labels.x``, ``$v.Name``): at its
    second element, which error messages then report."""
    if token[:1] in ".$":
        second = token.find(".", 1)
        if second > 0:
            return second
    return 0


def _pipeline(expr: str, offset: int = 0) -> tuple[list[str], list[list[str]], list[int]]:
    found = [(m.group(0), offset + m.start()) for m in _TOKEN.finditer(expr)]
    tokens = [t for t, _ in found]
    variables: list[str] = []
    if ":=" in tokens:
        at = tokens.index(":=")
        variables = [t for t in tokens[:at] if t != ","]
        found = found[at + 1 :]
    commands: list[list[str]] = [[]]
    positions: list[int] = []
    for tok, pos in found:
        if tok == "|":
            commands.append([])
        else:
            if not commands[-1]:
                positions.append(pos + _chain_offset(tok))
            commands[-1].append(tok)
    if not commands[-1]:
        raise TemplateError(f"missing value for command in {expr!r}")
    return variables, commands, positions


def parse(source: str) -> list[Node]:
    pieces: list[tuple[str, str, int]] = []  # kind, text, offset of the text in the source
    pos = 0
    for m in _ACTION.finditer(source):
        text = source[pos : m.start()]
        if m.group(1):
            text = text.rstrip()
        if pieces and pieces[-1][0] == "trim-right":
            pieces.pop()
            text = text.lstrip()
        pieces.append(("text", text, pos))
        inner = m.group(2)
        start = m.start(2) + len(inner) - len(inner.lstrip())
        pieces.append(("action", inner.strip(), start))
        if m.group(3):
            pieces.append(("trim-right", "", m.end()))
        pos = m.end()
    tail = source[pos:]
    if pieces and pieces[-1][0] == "trim-right":
        pieces.pop()
        tail = tail.lstrip()
    pieces.append(("text", tail, pos))

    root: list[Node] = []
    # Each open block and the list it was opened in (None: an else-if, closed with its if).
    stack: list[tuple[Node, list[Node] | None]] = []
    current = root
    for kind, text, offset in pieces:
        if kind == "text":
            if text:
                current.append(Node("text", text=text))
            continue
        word = text.split(None, 1)[0] if text else ""
        rest = text[len(word) :].strip()
        if text.startswith("/*"):
            continue
        if word in ("if", "range", "with"):
            variables, pipeline, positions = _pipeline(rest, offset + len(text) - len(rest))
            node = Node(word, pipeline=pipeline, variables=variables, positions=positions)
            current.append(node)
            stack.append((node, current))
            current = node.body
        elif word == "else":
            if not stack:
                raise TemplateError("unexpected {{else}}")
            node, parent = stack[-1]
            if rest.startswith("if "):
                # else if: an if nested in the else branch, closed by the same {{end}}
                variables, pipeline, positions = _pipeline(rest[3:])
                inner = Node("if", pipeline=pipeline, variables=variables, positions=positions)
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
            variables, pipeline, positions = _pipeline(text, offset)
            current.append(
                Node("action", pipeline=pipeline, variables=variables, positions=positions)
            )
    if stack:
        raise TemplateError("unexpected EOF")
    return root


# --- execution ----------------------------------------------------------------------------


class Template:
    """``name``: a named template reports errors as Go does ("template: NAME:1:4: executing
    "NAME" at <secret "x">: error calling secret: ..."). ``funcs``: more functions (raising
    FuncError for a failure). ``missing_key_error``: Go's Option("missingkey=error"), a missing
    map key or field is an error rather than "<no value>"."""

    def __init__(
        self,
        source: str,
        *,
        name: str = "",
        funcs: dict[str, Callable[..., Any]] | None = None,
        missing_key_error: bool = False,
    ) -> None:
        self.source = source
        self.name = name
        self.funcs = {**FUNCS, **(funcs or {})}
        self.strict = missing_key_error
        try:
            self.nodes = parse(source)
        except TemplateError as err:
            raise self._named(err) from None

    def execute(self, data: Any) -> str:
        out: list[str] = []
        try:
            _run(self.nodes, data, {"$": data}, out, _Env(self.funcs, self.strict))
        except _ExecError as err:
            if not self.name:
                raise TemplateError(str(err)) from None
            line, col = self._line_col(err.pos)
            context = err.command if len(err.command) <= 20 else err.command[:20] + "..."
            raise TemplateError(
                f'template: {self.name}:{line}:{col}: executing "{self.name}" at <{context}>: {err}'
            ) from None
        except TemplateError as err:
            raise self._named(err) from None
        return "".join(out)

    def _named(self, err: TemplateError) -> TemplateError:
        return TemplateError(f"template: {self.name}: {err}") if self.name else err

    def _line_col(self, pos: int) -> tuple[int, int]:
        before = self.source[:pos]
        line_start = before.rfind("\n") + 1
        return before.count("\n") + 1, len(before[line_start:].encode())


@dataclass
class _Env:
    funcs: dict[str, Callable[..., Any]]
    strict: bool


def _field(value: Any, path: str, strict: bool = False) -> Any:
    for name in [p for p in path.split(".") if p]:
        if isinstance(value, dict):
            if strict and name not in value:
                raise _MissingKey(f'map has no entry for key "{name}"')
            value = value.get(name)
        elif value is None:
            return None
        elif strict:
            # Only a dataclass's fields: nothing else of a Python object is reachable.
            if name not in getattr(value, "__dataclass_fields__", {}):
                kind = getattr(value, "GO_TYPE", type(value).__name__)
                raise _MissingKey(f"can't evaluate field {name} in type {kind}")
            value = getattr(value, name)
        else:
            value = getattr(value, name, None)
    return value


def _arg(token: str, dot: Any, scope: dict[str, Any], strict: bool = False) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    if token.startswith("`"):
        return token[1:-1]
    if token.startswith("$"):
        name, _, path = token.partition(".")
        if name not in scope:
            raise TemplateError(f'undefined variable "{name}"')
        return _field(scope[name], path, strict)
    if token.startswith("."):
        return _field(dot, token, strict)
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


def _eval(node: Node, dot: Any, scope: dict[str, Any], env: _Env) -> Any:
    result: Any = None
    for i, command in enumerate(node.pipeline):
        try:
            result = _command(command, i > 0, result, dot, scope, env)
        except FuncError as err:
            where = node.positions[i] if i < len(node.positions) else 0
            raise _ExecError(
                f"error calling {command[0]}: {err}", where, " ".join(command)
            ) from None
        except _MissingKey as err:
            where = node.positions[i] if i < len(node.positions) else 0
            raise _ExecError(str(err), where, " ".join(command)) from None
    return result


def _command(
    command: list[str], piped: bool, result: Any, dot: Any, scope: dict[str, Any], env: _Env
) -> Any:
    head, args = command[0], command[1:]
    if head in env.funcs:
        values = [_arg(a, dot, scope, env.strict) for a in args]
        if piped:
            values.append(result)
        try:
            return env.funcs[head](*values)
        except TypeError as err:
            raise TemplateError(f"wrong number of args for {head}") from err
    return _arg(head, dot, scope, env.strict)


def _run(
    nodes: list[Node], dot: Any, scope: dict[str, Any], out: list[str], env: _Env | None = None
) -> None:
    env = env or _Env(FUNCS, False)
    for node in nodes:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "action":
            value = _eval(node, dot, scope, env)
            if node.variables:
                scope[node.variables[0]] = value
            else:
                out.append(to_text(value))
        elif node.kind == "if":
            if truthy(_eval(node, dot, scope, env)):
                _run(node.body, dot, scope, out, env)
            else:
                _run(node.orelse, dot, scope, out, env)
        elif node.kind == "with":
            value = _eval(node, dot, scope, env)
            if truthy(value):
                _run(node.body, value, scope, out, env)
            else:
                _run(node.orelse, dot, scope, out, env)
        elif node.kind == "range":
            value = _eval(node, dot, scope, env)
            items = (
                sorted(value.items()) if isinstance(value, dict) else list(enumerate(value or []))
            )
            if not items:
                _run(node.orelse, dot, scope, out, env)
            for key, item in items:
                inner = dict(scope)
                if len(node.variables) == 2:
                    inner[node.variables[0]], inner[node.variables[1]] = key, item
                elif len(node.variables) == 1:
                    inner[node.variables[0]] = item
                _run(node.body, item, inner, out, env)
