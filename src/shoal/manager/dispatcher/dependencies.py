"""Which secrets and configs a node is sent, as swarmkit's assignment set decides: those its
tasks reference while they are assigned and not yet finished (from ASSIGNED to RUNNING). A
task past RUNNING, or gone, no longer holds them; one that is not yet ASSIGNED does not yet.
Pure: the dispatcher sends the difference between two of these."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from shoal.api.objects import Config, Secret, Task
from shoal.api.types import TaskState
from shoal.store.memory import ReadTx


def holds_dependencies(task: Task) -> bool:
    return TaskState.ASSIGNED <= task.Status.State <= TaskState.RUNNING


def referenced_ids(tasks: Iterable[Task]) -> tuple[set[str], set[str]]:
    """The IDs of the secrets and of the configs that these tasks, where they hold them,
    reference."""
    secrets: set[str] = set()
    configs: set[str] = set()
    for task in tasks:
        spec = task.Spec.ContainerSpec
        if spec is None or not holds_dependencies(task):
            continue
        secrets.update(r.SecretID for r in spec.Secrets or () if r.SecretID)
        configs.update(r.ConfigID for r in spec.Configs or () if r.ConfigID)
    return secrets, configs


@dataclass(frozen=True)
class NodeDependencies:
    secrets: dict[str, Secret] = field(default_factory=dict)
    configs: dict[str, Config] = field(default_factory=dict)


def node_dependencies(view: ReadTx, node_id: str) -> NodeDependencies:
    """The secrets and configs (data included) the node's tasks use now. One that is no
    longer in the store is left out: the node is told to forget it."""
    secret_ids, config_ids = referenced_ids(view.tasks_on_node(node_id))
    secrets = {sid: s for sid in sorted(secret_ids) if (s := view.get(Secret, sid)) is not None}
    configs = {cid: c for cid in sorted(config_ids) if (c := view.get(Config, cid)) is not None}
    return NodeDependencies(secrets=secrets, configs=configs)


@dataclass(frozen=True)
class DependencyChanges:
    update_secrets: list[Secret]
    remove_secrets: list[str]
    update_configs: list[Config]
    remove_configs: list[str]

    def __bool__(self) -> bool:
        return bool(
            self.update_secrets or self.remove_secrets or self.update_configs or self.remove_configs
        )


def dependency_changes(sent: NodeDependencies, now: NodeDependencies) -> DependencyChanges:
    """What to tell a node that was sent ``sent`` so that it holds ``now``: the new or changed
    objects, and the IDs of those it must forget."""
    return DependencyChanges(
        update_secrets=[s for sid, s in now.secrets.items() if sent.secrets.get(sid) != s],
        remove_secrets=sorted(sid for sid in sent.secrets if sid not in now.secrets),
        update_configs=[c for cid, c in now.configs.items() if sent.configs.get(cid) != c],
        remove_configs=sorted(cid for cid in sent.configs if cid not in now.configs),
    )
