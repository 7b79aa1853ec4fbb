"""Where a task sees its secrets and configs, as Docker mounts them: a secret at
/run/secrets/<target> (or the absolute target given), a config at its target (a relative one
under /), each read-only, with the reference's owner and permission bits. Pure."""

import posixpath
from dataclasses import dataclass
from typing import Literal

from shoal.api.objects import Task
from shoal.api.specs import SecretReferenceFileTarget

SECRETS_DIR = "/run/secrets"
CONFIGS_DIR = "/"

Kind = Literal["secret", "config"]


class FileTargetError(Exception):
    pass


@dataclass(frozen=True)
class TaskFile:
    kind: Kind
    ref_id: str  # the SecretID or ConfigID
    name: str  # the reference's target as given (what `secret "..."` in a template names)
    path: str  # absolute and normalised: where the task sees the file
    uid: int
    gid: int
    mode: int


def target_path(kind: Kind, name: str) -> str:
    base = SECRETS_DIR if kind == "secret" else CONFIGS_DIR
    path = name if posixpath.isabs(name) else posixpath.join(base, name)
    # Normalised, an absolute path cannot climb out of the task's file tree (see files_root).
    return posixpath.normpath(path).replace("//", "/")


def _atoi(text: str) -> int:
    # Docker parses the owner with Go's strconv.Atoi, and says so when it cannot.
    try:
        return int(text, 10)
    except ValueError:
        raise FileTargetError(f'strconv.Atoi: parsing "{text}": invalid syntax') from None


def _file(kind: Kind, ref_id: str, target: SecretReferenceFileTarget) -> TaskFile:
    if not target.Name:
        raise FileTargetError(f"{kind} reference {ref_id} has no target file name")
    return TaskFile(
        kind=kind,
        ref_id=ref_id,
        name=target.Name,
        path=target_path(kind, target.Name),
        uid=_atoi(target.UID or "0"),
        gid=_atoi(target.GID or "0"),
        mode=target.Mode & 0o7777,
    )


def task_files(task: Task) -> list[TaskFile]:
    """Every file the task is given, secrets first, in the spec's order. A reference without
    a file target (a config read by the runtime only) has no file."""
    spec = task.Spec.ContainerSpec
    if spec is None:
        return []
    files = [_file("secret", r.SecretID, r.File) for r in spec.Secrets or () if r.File]
    files += [_file("config", r.ConfigID, r.File) for r in spec.Configs or () if r.File]
    return files
