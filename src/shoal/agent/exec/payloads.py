"""The bytes of each file a task is given: a secret's or config's data, expanded per task when
its Spec.Templating is {"Name": "golang"} (swarmkit's template.ExpandSecretSpec), with Swarm's
placeholders (.Service, .Node, .Task) and functions (``env``, ``secret``, ``config``). The
errors read as Docker reports them. Pure."""

from shoal.agent.exec.base import NodeContext
from shoal.agent.exec.dependencies import DependencyError, TaskDependencies, payload
from shoal.agent.exec.task_files import TaskFile
from shoal.agent.exec.template import context
from shoal.api.objects import Config, Secret, Task
from shoal.golang.template import FuncError, Template, TemplateError

TEMPLATE_NAME = "expansion"


class PayloadError(Exception):
    """The file cannot be made; the message is Docker's (the task fails with it)."""


def _env(task: Task, variable: str) -> str:
    for item in (task.Spec.ContainerSpec.Env if task.Spec.ContainerSpec else None) or ():
        name, sep, value = item.partition("=")
        if sep and name == variable:
            return value
    return ""


def _reference_id(task: Task, kind: str, target: str) -> str:
    spec = task.Spec.ContainerSpec
    refs = (spec.Secrets if kind == "secret" else spec.Configs) if spec else None
    for ref in refs or ():
        if ref.File is not None and ref.File.Name == target:
            return ref.SecretID if kind == "secret" else ref.ConfigID  # type: ignore[union-attr]
    raise FuncError(f"{kind} target {target} not found")


def expand(obj: Secret | Config, task: Task, node: NodeContext, deps: TaskDependencies) -> bytes:
    """The object's data for this task: as stored, or its template expanded."""
    data = payload(obj.Spec.Data)
    templating = obj.Spec.Templating
    if templating is None or not templating.Name:
        return data
    kind = "secret" if isinstance(obj, Secret) else "config"
    if templating.Name != "golang":
        raise DependencyError(
            f"failed to expand templated {kind} {obj.ID}: unrecognized template type"
        )

    def secret(target: str) -> str:
        try:
            found = deps.secret(_reference_id(task, "secret", target))
        except DependencyError as err:
            raise FuncError(str(err)) from None
        return payload(found.Spec.Data).decode("utf-8", "replace")

    def config(target: str) -> str:
        try:
            found = deps.config(_reference_id(task, "config", target))
        except DependencyError as err:
            raise FuncError(str(err)) from None
        return payload(found.Spec.Data).decode("utf-8", "replace")

    try:
        template = Template(
            data.decode("utf-8", "replace"),
            name=TEMPLATE_NAME,
            funcs={"env": lambda name: _env(task, name), "secret": secret, "config": config},
            missing_key_error=True,
        )
        return template.execute(context(task, node)).encode()
    except TemplateError as err:
        raise DependencyError(f"failed to expand templated {kind} {obj.ID}: {err}") from None


def file_bytes(file: TaskFile, task: Task, node: NodeContext, deps: TaskDependencies) -> bytes:
    """What the task reads in ``file``; PayloadError in Docker's words if it cannot."""
    try:
        obj: Secret | Config = (
            deps.secret(file.ref_id) if file.kind == "secret" else deps.config(file.ref_id)
        )
        return expand(obj, task, node, deps)
    except DependencyError as err:
        raise PayloadError(f"unable to get {file.kind} from {file.kind} store: {err}") from None
