"""Progress of a job for ``service create|update`` without ``-d``, computed and drawn as
Docker's CLI does (docker/cli's replicatedJobProgressUpdater and globalJobProgressUpdater); the
converge loop in ``shoal.cli.progress`` polls and calls ``update`` until it returns True, then
says "job complete".

A replicated job shows a "job progress" bar of completions (terminals only), "active tasks:
N out of M tasks" each poll (M = the tasks that may run now: MaxConcurrent, or fewer once few
completions are left) and a bar per slot (terminals only). Seen on Docker 20.10 without a
terminal, for 2 completions 2 at a time:

    active tasks: 0 out of 2 tasks
    1/2:
    2/2:
    active tasks: 2 out of 2 tasks   (every poll)
    active tasks: 1 out of 1 tasks
    active tasks: 0 out of 0 tasks
    job complete

A global job counts the nodes its first tasks went to ("job progress: N out of M complete", a
bar per node named by its full ID): all of it is bars, so without a terminal Docker prints only
"job progress: waiting for tasks" until the tasks exist, then "job complete".
"""

from dataclasses import dataclass, field

from shoal.cli.progress_writer import (
    LONGEST_STATE,
    MAX_PROGRESS_BARS,
    STATE_ORDER,
    ProgressWriter,
)
from shoal.cli.progress_writer import trunc_error as _trunc_error

# A job task's bar runs to "complete", one step past "running" (docker/cli's maxJobProgress).
MAX_JOB_PROGRESS = 10


def _iteration(obj: dict) -> int:
    return int((obj.get("JobIteration") or {}).get("Index", 0))


def _state_rank(task: dict) -> int:
    return STATE_ORDER.get((task.get("Status") or {}).get("State", ""), 0)


def _task_line(writer: ProgressWriter, ident: str, task: dict | None) -> None:
    status = (task or {}).get("Status") or {}
    if status.get("Err"):
        writer.write(ident, _trunc_error(status["Err"]))
        return
    state = status.get("State", "")
    writer.write(ident, f"{state:<{LONGEST_STATE}}", STATE_ORDER.get(state, 0), MAX_JOB_PROGRESS)


@dataclass
class ReplicatedJobProgress:
    writer: ProgressWriter
    total: int
    concurrent: int
    iteration: int
    initialized: bool = False

    @classmethod
    def of(cls, writer: ProgressWriter, service: dict) -> "ReplicatedJobProgress":
        job = service["Spec"]["Mode"]["ReplicatedJob"] or {}
        return cls(
            writer,
            total=int(job.get("TotalCompletions") or 0),
            concurrent=int(job.get("MaxConcurrent") or 0),
            iteration=_iteration(service.get("JobStatus") or {}),
        )

    def update(self, service: dict, tasks: list[dict], active: set[str], rollback: bool) -> bool:
        if not self.initialized:
            self._overall(0, 0)
            if self.total <= MAX_PROGRESS_BARS:
                for slot in range(1, self.total + 1):
                    self.writer.write(f"{slot}/{self.total}", " ")
            self.initialized = True
        by_slot: dict[int, dict] = {}
        for task in tasks:
            if _iteration(task) != self.iteration:
                continue
            if not STATE_ORDER.get(task.get("DesiredState", "")) or not _state_rank(task):
                continue
            slot = int(task.get("Slot") or 0)
            existing = by_slot.get(slot)
            if existing is None or _state_rank(existing) > _state_rank(task):
                by_slot[slot] = task  # the task furthest behind speaks for its slot
        running = completed = 0
        # Slots are numbered from 0, shown from 1; like Docker, walk as many slots as have tasks.
        for slot in range(len(by_slot)):
            found = by_slot.get(slot)
            if self.total <= MAX_PROGRESS_BARS:
                _task_line(self.writer, f"{slot + 1}/{self.total}", found)
            rank = _state_rank(found) if found is not None else 0
            if rank < STATE_ORDER["complete"]:
                running += 1
            elif rank == STATE_ORDER["complete"]:
                completed += 1
        self._overall(running, completed)
        return completed == self.total

    def _overall(self, active: int, completed: int) -> None:
        digits = len(str(self.total))
        self.writer.write(
            "job progress",
            f"{completed:>{digits}} out of {self.total} complete",
            completed,
            self.total,
        )
        allowed = min(self.total - completed, self.concurrent)
        width = len(str(self.concurrent))
        self.writer.write("active tasks", f"{active:>{width}} out of {allowed:>{width}} tasks")


@dataclass
class GlobalJobProgress:
    writer: ProgressWriter
    initialized: bool = False
    total: int = 0
    nodes: set[str] = field(default_factory=set)

    def update(self, service: dict, tasks: list[dict], active: set[str], rollback: bool) -> bool:
        iteration = _iteration(service.get("JobStatus") or {})
        if not self.initialized:
            if not tasks and active:
                self.writer.write("job progress", "waiting for tasks")
                return False
            # A global job's tasks are all created at once: follow the nodes they went to, and
            # leave out nodes that join meanwhile (as Docker does).
            self.nodes = {t.get("NodeID", "") for t in tasks if _iteration(t) == iteration}
            self.total = len(self.nodes)
            self._overall(0)
            self.initialized = True
        by_node: dict[str, dict] = {}
        for task in tasks:
            node = task.get("NodeID", "")
            if _iteration(task) != iteration or node not in self.nodes:
                continue
            existing = by_node.get(node)
            if existing is None or _state_rank(existing) > _state_rank(task):
                by_node[node] = task
        complete = 0
        for node, task in by_node.items():
            if self.total <= MAX_PROGRESS_BARS:
                _task_line(self.writer, node, task)
            if (task.get("Status") or {}).get("State") == "complete":
                complete += 1
        self._overall(complete)
        return complete == self.total

    def _overall(self, complete: int) -> None:
        digits = len(str(self.total))
        self.writer.write(
            "job progress",
            f"{complete:>{digits}} out of {self.total} complete",
            complete,
            self.total,
        )
