"""The agents of a plan: every node's agent as it behaves when all goes well. A task assigned
to a ready node starts (a job's task then completes), a task asked to stop stops, a task
asked only to get ready gets ready; tasks on nodes that are not ready stay as they are, as
no agent is there to move them.

The agents act in rounds, between which the plan lets the manager's components settle: each
round is one step of every task that can move, so what the components do in reaction (the
updater's next batch, say) happens in the next round, as in a real cluster.
"""

from shoal.api.objects import Node, Task
from shoal.api.types import NodeState, TaskState
from shoal.clock import Clock
from shoal.store import MemoryStore, Subscription, Tx

RUNNING_MESSAGE = "started"
STOPPED_MESSAGE = "shutdown"
COMPLETED_MESSAGE = "finished"


def next_state(task: Task) -> TaskState | None:
    """The state a healthy agent reports next for ``task`` (None: nothing to report)."""
    state, desired = task.Status.State, task.DesiredState
    if state < TaskState.ASSIGNED or state > TaskState.RUNNING:
        return None  # not on a node yet, or already stopped
    if desired > TaskState.COMPLETE:
        return TaskState.SHUTDOWN
    if desired == TaskState.COMPLETE:
        # A job's task runs, then exits with success.
        return TaskState.RUNNING if state < TaskState.RUNNING else TaskState.COMPLETE
    if desired == TaskState.READY:
        return TaskState.READY if state < TaskState.READY else None
    if desired == TaskState.RUNNING and state < TaskState.RUNNING:
        return TaskState.RUNNING
    return None


def _may_move(task: Task) -> bool:
    """A cheap first sieve (most tasks of a cluster run, as they are meant to)."""
    return not (task.Status.State == TaskState.RUNNING and task.DesiredState == TaskState.RUNNING)


_MESSAGES = {
    TaskState.RUNNING: RUNNING_MESSAGE,
    TaskState.SHUTDOWN: STOPPED_MESSAGE,
    TaskState.COMPLETE: COMPLETED_MESSAGE,
    TaskState.READY: "ready",
}


class SimulatedAgents:
    def __init__(self, store: MemoryStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        # Tasks that changed since the last round (only they can have a step to take).
        self._sub: Subscription = store.watch(kinds={"task"})
        self._candidates: set[str] = {t.ID for t in store.view().list(Task) if _may_move(t)}

    def close(self) -> None:
        self._sub.close()

    def _collect(self) -> None:
        while (ev := self._sub.get_nowait()) is not None:
            if ev.obj is not None and not ev.is_commit:
                self._candidates.add(ev.obj.ID)

    async def round(self) -> int:
        """One step of every task that can move; how many moved."""
        self._collect()
        ids, self._candidates = sorted(self._candidates), set()
        now = self.clock.now()

        def fn(tx: Tx) -> int:
            moved = 0
            for task_id in ids:
                task = tx.get(Task, task_id)
                if task is None or not task.NodeID:
                    continue
                node = tx.get(Node, task.NodeID)
                if node is None or node.Status.State != NodeState.READY:
                    continue
                state = next_state(task)
                if state is None:
                    continue
                status = task.Status.model_copy(
                    update={"State": state, "Timestamp": now, "Message": _MESSAGES[state]}
                )
                tx.update(task.model_copy(update={"Status": status}))
                moved += 1
            return moved

        return await self.store.update(fn)
