"""What a compose file (version 3.x) may say, and the one error Docker's CLI reports when it
says something else.

Docker validates against a JSON schema and reports only the most specific failure: the one at
the deepest path, a wrong type winning a tie. The shapes below are written for shoal as
small Python nodes; the messages are Docker's, word for word:

    services.web Additional property foo is not allowed
    services.web.deploy.replicas must be a integer
    services.web.deploy must be a mapping or null
    services.web.healthcheck.interval Does not match format 'duration'
    services.web.volumes.0 type is required

One shape serves every 3.x version, each key or form marked with the version that brought it
(``Since``): in an older file it is unknown, as Docker's schema of that version has it (Docker
20.10's schemas, 3.0 to 3.9)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from shoal import golang
from shoal.compose.errors import ComposeError

# --- the nodes --------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def _matches(value: Any, types: tuple[str, ...]) -> bool:
    actual = _json_type(value)
    return actual in types or (actual == "integer" and "number" in types)


def _human(t: str) -> str:
    return {"object": "mapping", "array": "list"}.get(t, t)


def _expected(types: tuple[str, ...]) -> str:
    names = [_human(t) for t in types]
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} or {names[-1]}"


@dataclass
class Failure:
    path: str
    kind: str  # "invalid_type", "one_of" or another rule
    text: str

    @property
    def depth(self) -> int:
        return len(self.path.split("."))

    def message(self) -> str:
        return f"{self.path} {self.text}"


class Node:
    types: tuple[str, ...] = ()

    def check(self, value: Any, path: str, out: list[Failure], minor: int) -> None:
        raise NotImplementedError


@dataclass
class Since(Node):
    """A key (or a form of a value) that compose files have from version 3.<minor> on: in an
    older file it is unknown, as it is to Docker's schema of that version."""

    minor: int = 0
    node: Node = field(default_factory=Node)

    @property
    def types(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.node.types

    def check(self, value: Any, path: str, out: list[Failure], minor: int) -> None:
        self.node.check(value, path, out, minor)


@dataclass
class Changed(Node):
    """A value whose shape changed in version 3.<minor>: ``before`` in older files."""

    minor: int = 0
    before: Node = field(default_factory=Node)
    after: Node = field(default_factory=Node)

    def check(self, value: Any, path: str, out: list[Failure], minor: int) -> None:
        (self.after if minor >= self.minor else self.before).check(value, path, out, minor)


def available(node: Node, minor: int) -> bool:
    return not isinstance(node, Since) or minor >= node.minor


@dataclass
class Scalar(Node):
    """A value of one of the JSON types, optionally in a format or from a list."""

    types: tuple[str, ...] = ()
    format: str | None = None
    enum: tuple[str, ...] | None = None

    def check(self, value: Any, path: str, out: list[Failure], minor: int) -> None:
        if self.types and not _matches(value, self.types):
            out.append(Failure(path, "invalid_type", f"must be a {_expected(self.types)}"))
            return
        if self.format == "duration" and isinstance(value, str):
            try:
                golang.parse_duration(value)
            except (golang.GoError, ValueError):
                out.append(Failure(path, "format", "Does not match format 'duration'"))
        if self.format == "ports" and isinstance(value, str) and not _port_text(value):
            out.append(Failure(path, "format", "Does not match format 'ports'"))
        if self.enum is not None and value not in self.enum:
            allowed = ", ".join(f'"{v}"' for v in self.enum)
            out.append(Failure(path, "enum", f"{path} must be one of the following: {allowed}"))


_PORT_RANGE = r"\d+(?:-\d+)?"
_PORTS = re.compile(
    rf"^(?:(?:\[?[0-9a-fA-F.:]*\]?:)?(?:{_PORT_RANGE})?:)?{_PORT_RANGE}(?:/(?:tcp|udp|sctp))?$"
)


def _port_text(value: str) -> bool:
    return bool(_PORTS.match(value))


@dataclass
class Obj(Node):
    """A mapping: known keys, keys matching patterns, and whether others are refused."""

    props: dict[str, Node] = field(default_factory=dict)
    patterns: tuple[tuple[str, Node], ...] = ()
    closed: bool = True
    required: tuple[str, ...] = ()
    types: tuple[str, ...] = ("object",)
    extensions: int | None = None  # x-... keys allowed from version 3.<this> on

    def check(self, value: Any, path: str, out: list[Failure], minor: int) -> None:
        if not _matches(value, self.types):
            out.append(Failure(path, "invalid_type", f"must be a {_expected(self.types)}"))
            return
        if not isinstance(value, dict):
            return
        for name in self.required:
            if name not in value:
                out.append(Failure(path, "required", f"{name} is required"))
        for key, item in value.items():
            key = str(key)
            child = f"{path}.{key}" if path != "(root)" else key
            node = self.props.get(key)
            if node is not None and not available(node, minor):
                node = None
            known = node is not None
            if node is not None:
                node.check(item, child, out, minor)
            for pattern, pnode in self.patterns:
                if re.search(pattern, key):
                    known = True
                    pnode.check(item, child, out, minor)
            if self.extensions is not None and minor >= self.extensions and key.startswith("x-"):
                known = True
            if not known and self.closed:
                out.append(Failure(path, "additional", f"Additional property {key} is not allowed"))


@dataclass
class Arr(Node):
    items: Node | None = None
    unique: bool = False
    types: tuple[str, ...] = ("array",)

    def check(self, value: Any, path: str, out: list[Failure], minor: int) -> None:
        if not isinstance(value, list):
            out.append(Failure(path, "invalid_type", "must be a list"))
            return
        if self.items is not None:
            for i, item in enumerate(value):
                self.items.check(item, f"{path}.{i}", out, minor)
        if self.unique:
            for i, a in enumerate(value):
                for j in range(i + 1, len(value)):
                    if a == value[j] and _json_type(a) == _json_type(value[j]):
                        out.append(Failure(path, "unique", f"array items[{i},{j}] must be unique"))
                        return


@dataclass
class OneOf(Node):
    """Exactly one of the shapes (in practice: the one whose type the value has). When none
    fits, Docker reports what the first shape expected."""

    options: tuple[Node, ...] = ()

    def check(self, value: Any, path: str, out: list[Failure], minor: int) -> None:
        attempts: list[list[Failure]] = []
        options = tuple(o for o in self.options if available(o, minor))
        for option in options:
            found: list[Failure] = []
            option.check(value, path, found, minor)
            if not found:
                return
            attempts.append(found)
        fitting = [a for o, a in zip(options, attempts, strict=True) if _matches(value, o.types)]
        out.append(Failure(path, "one_of", "Must validate one and only one schema (oneOf)"))
        out.extend(fitting[0] if fitting else attempts[0])


# --- the shapes of a compose file -----------------------------------------------------------

STRING = Scalar(("string",))
INTEGER = Scalar(("integer",))
NUMBER = Scalar(("number",))
BOOLEAN = Scalar(("boolean",))
DURATION = Scalar(("string",), format="duration")
ANY = Scalar(())
LIST_OF_STRINGS = Arr(STRING, unique=True)
STRING_OR_LIST = OneOf((STRING, LIST_OF_STRINGS))
LIST_OR_DICT = OneOf(
    (
        Obj(patterns=((".+", Scalar(("string", "number", "null"))),)),
        Arr(STRING, unique=True),
    )
)
DRIVER_OPTS = Obj(patterns=(("^.+$", Scalar(("string", "number"))),), closed=False)
EXTERNAL = Obj({"name": STRING}, types=("boolean", "object"))
LOOSE_EXTERNAL = Obj({"name": STRING}, types=("boolean", "object"), closed=False)
FILE_REFERENCE = OneOf(
    (
        STRING,
        Obj(
            {"source": STRING, "target": STRING, "uid": STRING, "gid": STRING, "mode": NUMBER},
            closed=False,
        ),
    )
)
COMMAND = OneOf((STRING, Arr(STRING)))
UPDATE_CONFIG = Obj(
    {
        "parallelism": INTEGER,
        "delay": DURATION,
        "failure_action": STRING,
        "monitor": DURATION,
        "max_failure_ratio": NUMBER,
        "order": Since(4, Scalar(("string",), enum=("start-first", "stop-first"))),
    }
)
GENERIC_RESOURCES = Arr(
    Obj({"discrete_resource_spec": Obj({"kind": STRING, "value": NUMBER})}),
)
DEPLOY = Obj(
    {
        "mode": STRING,
        "endpoint_mode": Since(2, STRING),
        "replicas": INTEGER,
        "labels": LIST_OR_DICT,
        "rollback_config": Since(7, UPDATE_CONFIG),
        "update_config": UPDATE_CONFIG,
        "resources": Obj(
            {
                "limits": Obj({"cpus": STRING, "memory": STRING, "pids": Since(9, INTEGER)}),
                "reservations": Obj(
                    {
                        "cpus": STRING,
                        "memory": STRING,
                        "generic_resources": Since(5, GENERIC_RESOURCES),
                    }
                ),
            }
        ),
        "restart_policy": Obj(
            {"condition": STRING, "delay": DURATION, "max_attempts": INTEGER, "window": DURATION}
        ),
        "placement": Obj(
            {
                "constraints": Arr(STRING),
                "preferences": Since(3, Arr(Obj({"spread": STRING}))),
                "max_replicas_per_node": Since(8, INTEGER),
            }
        ),
    },
    types=("object", "null"),
)
HEALTHCHECK = Obj(
    {
        "disable": BOOLEAN,
        "interval": DURATION,
        "retries": NUMBER,
        "test": COMMAND,
        "timeout": DURATION,
        "start_period": Since(4, DURATION),
    }
)
SERVICE_NETWORKS = OneOf(
    (
        LIST_OF_STRINGS,
        Obj(
            patterns=(
                (
                    "^[a-zA-Z0-9._-]+$",
                    OneOf(
                        (
                            Obj(
                                {
                                    "aliases": LIST_OF_STRINGS,
                                    "ipv4_address": STRING,
                                    "ipv6_address": STRING,
                                }
                            ),
                            Scalar(("null",)),
                        )
                    ),
                ),
            )
        ),
    )
)
PORTS = Arr(
    Changed(
        2,
        # before 3.2: short syntax only, one type check
        Scalar(("string", "number"), format="ports"),
        OneOf(
            (
                Scalar(("number",), format="ports"),
                Scalar(("string",), format="ports"),
                Obj({"mode": STRING, "target": INTEGER, "published": INTEGER, "protocol": STRING}),
            )
        ),
    ),
    unique=True,
)
SERVICE_VOLUMES = Arr(
    OneOf(
        (
            STRING,
            Since(
                2,
                Obj(
                    {
                        "type": STRING,
                        "source": STRING,
                        "target": STRING,
                        "read_only": BOOLEAN,
                        "consistency": STRING,
                        "bind": Obj({"propagation": STRING}, closed=False),
                        "volume": Obj({"nocopy": BOOLEAN}, closed=False),
                        "tmpfs": Since(6, Obj({"size": INTEGER}, closed=False)),
                    },
                    required=("type",),
                ),
            ),
        )
    ),
    unique=True,
)
BUILD = OneOf(
    (
        STRING,
        Obj(
            {
                "context": STRING,
                "dockerfile": STRING,
                "args": LIST_OR_DICT,
                "labels": Since(3, LIST_OR_DICT),
                "cache_from": Since(2, LIST_OF_STRINGS),
                "network": Since(4, STRING),
                "target": Since(4, STRING),
                "shm_size": Since(5, Scalar(("integer", "string"))),
                "extra_hosts": Since(9, LIST_OR_DICT),
            }
        ),
    )
)
UNIQUE_STRINGS = Arr(STRING, unique=True)
SERVICE = Obj(
    {
        "deploy": DEPLOY,
        "build": BUILD,
        "cap_add": UNIQUE_STRINGS,
        "cap_drop": UNIQUE_STRINGS,
        "cgroupns_mode": Since(9, STRING),
        "cgroup_parent": STRING,
        "command": COMMAND,
        "configs": Since(3, Arr(FILE_REFERENCE)),
        "container_name": STRING,
        "credential_spec": Since(
            3,
            Obj({"config": Since(8, STRING), "file": STRING, "registry": STRING}),
        ),
        "depends_on": LIST_OF_STRINGS,
        "devices": UNIQUE_STRINGS,
        "dns": STRING_OR_LIST,
        "dns_search": STRING_OR_LIST,
        "domainname": STRING,
        "entrypoint": COMMAND,
        "env_file": STRING_OR_LIST,
        "environment": LIST_OR_DICT,
        "expose": Arr(Scalar(("string", "number")), unique=True),
        "external_links": UNIQUE_STRINGS,
        "extra_hosts": LIST_OR_DICT,
        "healthcheck": HEALTHCHECK,
        "hostname": STRING,
        "image": STRING,
        "init": Since(7, BOOLEAN),
        "ipc": STRING,
        "isolation": Since(5, STRING),
        "labels": LIST_OR_DICT,
        "links": UNIQUE_STRINGS,
        "logging": Obj(
            {
                "driver": STRING,
                "options": Obj(
                    patterns=(("^.+$", Scalar(("string", "number", "null"))),), closed=False
                ),
            }
        ),
        "mac_address": STRING,
        "network_mode": STRING,
        "networks": SERVICE_NETWORKS,
        "pid": Scalar(("string", "null")),
        "ports": PORTS,
        "privileged": BOOLEAN,
        "read_only": BOOLEAN,
        "restart": STRING,
        "security_opt": UNIQUE_STRINGS,
        "shm_size": Scalar(("number", "string")),
        "secrets": Since(1, Arr(FILE_REFERENCE)),
        "sysctls": LIST_OR_DICT,
        "stdin_open": BOOLEAN,
        "stop_grace_period": DURATION,
        "stop_signal": STRING,
        "tmpfs": STRING_OR_LIST,
        "tty": BOOLEAN,
        "ulimits": Obj(
            patterns=(
                (
                    "^[a-z]+$",
                    OneOf(
                        (
                            INTEGER,
                            Obj({"hard": INTEGER, "soft": INTEGER}, required=("soft", "hard")),
                        )
                    ),
                ),
            ),
            closed=False,
        ),
        "user": STRING,
        "userns_mode": STRING,
        "volumes": SERVICE_VOLUMES,
        "working_dir": STRING,
    },
    extensions=7,
)
NETWORK = Obj(
    {
        "name": Since(5, STRING),
        "driver": STRING,
        "driver_opts": DRIVER_OPTS,
        "ipam": Obj({"driver": STRING, "config": Arr(Obj({"subnet": STRING}))}),
        "external": EXTERNAL,
        "internal": BOOLEAN,
        "attachable": Since(2, BOOLEAN),
        "labels": LIST_OR_DICT,
    },
    types=("object", "null"),
    extensions=7,
)
VOLUME = Obj(
    {
        "name": Since(4, STRING),
        "driver": STRING,
        "driver_opts": DRIVER_OPTS,
        "external": EXTERNAL,
        "labels": LIST_OR_DICT,
    },
    types=("object", "null"),
    extensions=7,
)
SECRET = Obj(
    {
        "name": Since(5, STRING),
        "file": STRING,
        "external": LOOSE_EXTERNAL,
        "labels": LIST_OR_DICT,
        "driver": Since(8, STRING),
        "driver_opts": Since(8, DRIVER_OPTS),
        "template_driver": Since(8, STRING),
    },
    extensions=7,
)
CONFIG = Obj(
    {
        "name": Since(5, STRING),
        "file": STRING,
        "external": LOOSE_EXTERNAL,
        "labels": LIST_OR_DICT,
        "template_driver": Since(8, STRING),
    },
    extensions=7,
)
_NAMES = "^[a-zA-Z0-9._-]+$"
FILE = Obj(
    {
        "version": STRING,
        "services": Obj(patterns=((_NAMES, SERVICE),)),
        "networks": Obj(patterns=((_NAMES, NETWORK),), closed=False),
        "volumes": Obj(patterns=((_NAMES, VOLUME),)),
        "secrets": Since(1, Obj(patterns=((_NAMES, SECRET),))),
        "configs": Since(3, Obj(patterns=((_NAMES, CONFIG),))),
    },
    extensions=4,
)


def most_specific(failures: list[Failure]) -> str:
    """Docker's choice among the failures: the deepest path, a wrong type winning a tie; for
    a failed oneOf, the path with the text of the failure that follows it."""
    best = 0
    for i, failure in enumerate(failures):
        chosen = failures[best]
        if failure.depth > chosen.depth or (
            failure.depth == chosen.depth
            and failure.kind == "invalid_type"
            and chosen.kind != "invalid_type"
        ):
            best = i
    chosen = failures[best]
    if chosen.kind == "one_of" and best + 1 < len(failures):
        return f"{chosen.path} {failures[best + 1].text}"
    return chosen.message()


def validate(config: dict[str, Any], version: str = "3.9") -> None:
    """Raise Docker's error for the first thing a file of this version may not say."""
    failures: list[Failure] = []
    FILE.check(config, "(root)", failures, int(version.split(".")[1]))
    if failures:
        raise ComposeError(most_specific(failures))
