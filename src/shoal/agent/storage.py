"""What the agent remembers across restarts: the tasks assigned to it and their last
status, so that a restarted agent picks its tasks up instead of starting copies."""

import json
import os
from pathlib import Path

from shoal.api.objects import Task


class AgentStorage:
    """``directory`` None: nothing is kept (a simulated node, whose tasks are imagined)."""

    def __init__(self, directory: Path | None) -> None:
        self.path = directory / "tasks.json" if directory is not None else None

    def load(self) -> dict[str, Task]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return {tid: Task.model_validate(t) for tid, t in data.get("Tasks", {}).items()}

    def save(self, tasks: dict[str, Task]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {"Tasks": {tid: t.to_json() for tid, t in tasks.items()}}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
