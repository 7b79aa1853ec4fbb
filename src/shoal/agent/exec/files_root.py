"""Where a node keeps its tasks' secret and config files: on tmpfs, never on disk.

As root, in the host's mount namespace (so that the Docker Engine sees what it is asked to
bind), the node mounts a tmpfs of its own at /run/shoal/<node id>/files; elsewhere it keeps a
private directory on /dev/shm. Each task has a directory there that mirrors the paths it sees:
the secret a container reads at /run/secrets/db is at <task dir>/run/secrets/db. The files are
written when the task starts and removed when it ends."""

import logging
import os
import shutil
from pathlib import Path

from shoal.agent.exec import isolation
from shoal.agent.exec.task_files import TaskFile

log = logging.getLogger(__name__)

RUN_DIR = Path("/run/shoal")
SHM_DIR = Path("/dev/shm")


class FilesUnavailable(Exception):
    pass


def filesystem_type(path: str, mounts: str) -> str | None:
    """The type of the filesystem holding ``path``, from /proc/self/mounts' text: that of the
    longest mount point above it."""
    best, kind = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def _apart_from_init() -> bool:
    """This process is known to be in a mount namespace other than init's (under ``ip netns
    exec``, say), where a tmpfs it mounts would be invisible to the Docker Engine. Unknown
    (init's namespace unreadable): assumed not."""
    try:
        return os.readlink("/proc/self/ns/mnt") != os.readlink("/proc/1/ns/mnt")
    except OSError:
        return False


def _on_tmpfs(path: Path) -> bool:
    try:
        mounts = Path("/proc/self/mounts").read_text()
    except OSError:
        return False
    return filesystem_type(str(path), mounts) == "tmpfs"


class TaskFilesRoot:
    def __init__(self, path: Path, mounted: bool) -> None:
        self.path = path
        self.mounted = mounted  # a tmpfs this node mounted (and unmounts when it stops)
        self.as_root = os.geteuid() == 0

    @classmethod
    def open(cls, node_id: str) -> "TaskFilesRoot":
        """The node's root, made if need be (blocking: call in a thread)."""
        if os.geteuid() == 0 and not _apart_from_init():
            path = RUN_DIR / node_id / "files"
            try:
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not os.path.ismount(path):
                    isolation.mount_tmpfs(str(path), "mode=0700")
                return cls(path, mounted=True)
            except OSError as err:
                log.info("cannot mount a tmpfs at %s (%s): using %s", path, err, SHM_DIR)
                _remove_empty(path, RUN_DIR)
        if not _on_tmpfs(SHM_DIR):
            raise FilesUnavailable(f"no tmpfs to keep secrets in: {SHM_DIR} is not one")
        path = SHM_DIR / f"shoal-{node_id}"
        path.mkdir(exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
        return cls(path, mounted=False)

    def close(self) -> None:
        """The node stops: unmount its tmpfs (tasks still running keep their own mounts of
        it), or remove its directory once no task has files in it."""
        if self.mounted:
            try:
                isolation.unmount(str(self.path))
            except OSError as err:
                log.warning("unmounting %s: %s", self.path, err)
                return
            _remove_empty(self.path, RUN_DIR)
        else:
            _remove_empty(self.path, SHM_DIR)

    # --- one task's files --------------------------------------------------------------------

    def task_dir(self, task_id: str) -> Path:
        return self.path / task_id

    def host_path(self, task_id: str, file: TaskFile) -> Path:
        """Where the node keeps ``file`` of the task (``file.path`` is absolute and normal)."""
        return self.task_dir(task_id) / file.path.lstrip("/")

    def make_empty(self, task_id: str, files: list[TaskFile]) -> None:
        """The files, empty, readable by the node only: in place for an engine to bind before
        they are filled in (``write``)."""
        for file in files:
            dest = self._parent_made(task_id, file)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            os.close(fd)

    def write(self, task_id: str, files: list[tuple[TaskFile, bytes]]) -> None:
        """Each file with its bytes, owner and mode (in place: a file already bound into a
        container shows the new bytes)."""
        for file, data in files:
            dest = self._parent_made(task_id, file)
            fd = os.open(
                dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
            try:
                os.write(fd, data)
                if self.as_root:
                    os.fchown(fd, file.uid, file.gid)
                os.fchmod(fd, file.mode)
            finally:
                os.close(fd)

    def remove(self, task_id: str) -> None:
        shutil.rmtree(self.task_dir(task_id), ignore_errors=True)

    def _parent_made(self, task_id: str, file: TaskFile) -> Path:
        task_dir = self.task_dir(task_id)
        task_dir.mkdir(exist_ok=True, mode=0o700)
        dest = self.host_path(task_id, file)
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        return dest


def _remove_empty(path: Path, stop: Path) -> None:
    """Remove ``path`` and its parents up to (not including) ``stop`` while they are empty."""
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent
