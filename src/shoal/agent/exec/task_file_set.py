"""One task's secret and config files on its node: made empty when the task is prepared (for
an engine to bind), filled in when it starts, removed when it ends. Both runtimes use it."""

import asyncio

from shoal.agent.exec.base import NodeContext
from shoal.agent.exec.files_root import FilesUnavailable, TaskFilesRoot
from shoal.agent.exec.payloads import PayloadError, file_bytes
from shoal.agent.exec.task_files import FileTargetError, TaskFile, task_files
from shoal.api.objects import Task


class TaskFileError(Exception):
    """The files cannot be made; the message says why, in Docker's words where it has them."""


class TaskFileSet:
    def __init__(self, task: Task, node: NodeContext) -> None:
        self.task = task
        self.node = node

    def files(self) -> list[TaskFile]:
        try:
            return task_files(self.task)
        except FileTargetError as err:
            raise TaskFileError(str(err)) from None

    def _root(self) -> TaskFilesRoot:
        if self.node.files is None:
            raise TaskFileError("secrets and configs are not available on this node")
        return self.node.files

    def binds(self) -> list[tuple[str, str]]:
        """(path on the node, path the task sees) for each file, in the order to mount them."""
        files = self.files()
        if not files:
            return []
        root = self._root()
        return [(str(root.host_path(self.task.ID, f)), f.path) for f in files]

    def task_dir(self) -> str | None:
        """The task's tree of files on the node (None if it has none)."""
        if not self.files() or self.node.files is None:
            return None
        return str(self.node.files.task_dir(self.task.ID))

    async def make_empty(self) -> None:
        files = self.files()
        if files:
            await asyncio.to_thread(self._root().make_empty, self.task.ID, files)

    async def write(self) -> None:
        """Every file with its bytes (templates expanded for this task), owner and mode."""
        files = self.files()
        if not files:
            return
        root = self._root()
        deps = self.node.dependencies.for_task(self.task)
        try:
            contents = [(f, file_bytes(f, self.task, self.node, deps)) for f in files]
        except PayloadError as err:
            raise TaskFileError(str(err)) from None
        try:
            await asyncio.to_thread(root.write, self.task.ID, contents)
        except (OSError, FilesUnavailable) as err:
            raise TaskFileError(f"error injecting {files[0].kind}: {err}") from None

    async def remove(self) -> None:
        if self.node.files is not None:
            await asyncio.to_thread(self.node.files.remove, self.task.ID)
