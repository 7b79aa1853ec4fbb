"""Swarm's placeholders in a task's environment, hostname and working directory
({{.Service.Name}}, {{.Task.Slot}}, {{.Node.Hostname}}...), expanded per task."""

import re
from dataclasses import dataclass, field
from typing import ClassVar

from shoal.agent.exec.base import NodeContext
from shoal.api.objects import Task
from shoal.errors import InvalidArgument

_FIELD = re.compile(r"{{\s*\.([A-Za-z.]+)\s*}}")
_INDEX = re.compile(r'{{\s*index\s+\.Service\.Labels\s+"([^"]*)"\s*}}')
_ANY = re.compile(r"{{.*?}}")


def _values(task: Task, node: NodeContext) -> dict[str, str]:
    return {
        "Service.ID": task.ServiceID,
        "Service.Name": task.ServiceAnnotations.Name,
        "Node.ID": node.node_id,
        "Node.Hostname": node.hostname,
        "Node.Platform.OS": node.platform_os,
        "Node.Platform.Architecture": node.platform_arch,
        "Task.ID": task.ID,
        "Task.Name": task.full_name,
        "Task.Slot": str(task.Slot) if task.Slot else (task.NodeID or ""),
    }


@dataclass(frozen=True)
class ServiceContext:
    GO_TYPE: ClassVar[str] = "struct { ID string; Name string; Labels map[string]string }"
    ID: str
    Name: str
    Labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlatformContext:
    GO_TYPE: ClassVar[str] = "template.Platform"
    Architecture: str
    OS: str


@dataclass(frozen=True)
class NodeTemplateContext:
    GO_TYPE: ClassVar[str] = "struct { ID string; Hostname string; Platform template.Platform }"
    ID: str
    Hostname: str
    Platform: PlatformContext


@dataclass(frozen=True)
class TaskContext:
    GO_TYPE: ClassVar[str] = "struct { ID string; Name string; Slot string }"
    ID: str
    Name: str
    Slot: str


@dataclass(frozen=True)
class Context:
    """Swarm's template context (swarmkit's template.Context): what ``{{.Service.Name}}``
    and the like read, for the Go template engine."""

    GO_TYPE: ClassVar[str] = "template.Context"
    Service: ServiceContext
    Node: NodeTemplateContext
    Task: TaskContext


def context(task: Task, node: NodeContext) -> Context:
    values = _values(task, node)
    return Context(
        Service=ServiceContext(
            ID=values["Service.ID"],
            Name=values["Service.Name"],
            Labels=dict(task.ServiceAnnotations.Labels or {}),
        ),
        Node=NodeTemplateContext(
            ID=values["Node.ID"],
            Hostname=values["Node.Hostname"],
            Platform=PlatformContext(
                Architecture=values["Node.Platform.Architecture"],
                OS=values["Node.Platform.OS"],
            ),
        ),
        Task=TaskContext(ID=values["Task.ID"], Name=values["Task.Name"], Slot=values["Task.Slot"]),
    )


def expand(text: str, task: Task, node: NodeContext) -> str:
    values = _values(task, node)
    labels = task.ServiceAnnotations.Labels

    def field(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise InvalidArgument(f'template: expanding: can\'t evaluate field "{key}"')
        return values[key]

    text = _INDEX.sub(lambda m: labels.get(m.group(1), ""), text)
    text = _FIELD.sub(field, text)
    if (m := _ANY.search(text)) is not None:
        raise InvalidArgument(f"template: unsupported placeholder {m.group(0)}")
    return text


def expand_env(env: list[str], task: Task, node: NodeContext) -> list[str]:
    """Placeholders expand in values only, as in Swarm (``NAME={{...}}``)."""
    out = []
    for item in env:
        name, sep, value = item.partition("=")
        out.append(name + sep + expand(value, task, node) if sep else item)
    return out
