"""Swarm's placeholders in a task's environment, hostname and working directory
({{.Service.Name}}, {{.Task.Slot}}, {{.Node.Hostname}}...), expanded per task."""

import re

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
