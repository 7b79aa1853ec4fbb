"""The secrets and configs a node holds for its tasks, in memory only (never in the agent's
state on disk), as swarmkit's agent keeps them: the dispatcher says which to hold and which
to forget; a task reaches only those its own spec references (swarmkit's Restrict)."""

import base64
import binascii

from shoal.api.objects import Config, Secret, Task


class DependencyError(Exception):
    """A task asked for a secret or config it cannot have; the message is swarmkit's."""


def payload(data: str | None) -> bytes:
    """The bytes of a secret's or config's Spec.Data (base64 in JSON, as Go writes []byte)."""
    try:
        return base64.b64decode(data or "", validate=True)
    except (binascii.Error, ValueError) as err:
        raise DependencyError(f"invalid data: {err}") from None


def uses_dependencies(task: Task) -> bool:
    spec = task.Spec.ContainerSpec
    return spec is not None and bool(spec.Secrets or spec.Configs)


class DependencyStore:
    def __init__(self) -> None:
        self.secrets: dict[str, Secret] = {}
        self.configs: dict[str, Config] = {}

    def apply(
        self,
        *,
        complete: bool,
        secrets: list[Secret],
        remove_secrets: list[str],
        configs: list[Config],
        remove_configs: list[str],
    ) -> None:
        """Take what the dispatcher sent: with ``complete``, the whole set (anything else is
        forgotten), else changes."""
        if complete:
            self.secrets.clear()
            self.configs.clear()
        for sid in remove_secrets:
            self.secrets.pop(sid, None)
        for cid in remove_configs:
            self.configs.pop(cid, None)
        self.secrets.update((s.ID, s) for s in secrets)
        self.configs.update((c.ID, c) for c in configs)

    def clear(self) -> None:
        self.secrets.clear()
        self.configs.clear()

    def secret(self, secret_id: str) -> Secret:
        found = self.secrets.get(secret_id)
        if found is None:
            raise DependencyError(f"secret {secret_id} not found")
        return found

    def config(self, config_id: str) -> Config:
        found = self.configs.get(config_id)
        if found is None:
            raise DependencyError(f"config {config_id} not found")
        return found

    def for_task(self, task: Task) -> "TaskDependencies":
        return TaskDependencies(self, task)


class TaskDependencies:
    """What one task may read: the secrets and configs its spec references, nothing else."""

    def __init__(self, store: DependencyStore, task: Task) -> None:
        self.store = store
        spec = task.Spec.ContainerSpec
        self.secret_ids = {r.SecretID for r in (spec.Secrets if spec else None) or ()}
        self.config_ids = {r.ConfigID for r in (spec.Configs if spec else None) or ()}

    def secret(self, secret_id: str) -> Secret:
        if secret_id not in self.secret_ids:
            raise DependencyError(f"task not authorized to access secret {secret_id}")
        return self.store.secret(secret_id)

    def config(self, config_id: str) -> Config:
        if config_id not in self.config_ids:
            raise DependencyError(f"task not authorized to access config {config_id}")
        return self.store.config(config_id)
