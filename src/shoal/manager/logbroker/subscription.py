"""One log subscription as the broker keeps track of it: the nodes that must publish for it,
those still to finish, and what kept some logs from being read. Pure: the broker feeds it
the store's tasks and the nodes' progress."""

from shoal.api.objects import Task
from shoal.api.types import TaskState
from shoal.rpc import pb
from shoal.store import ReadTx

INCOMPLETE = (
    "warning: incomplete log stream. some logs could not be retrieved for the following reasons: "
)


class Subscription:
    def __init__(
        self, sub_id: str, selector: pb.LogSelector, options: pb.LogSubscriptionOptions
    ) -> None:
        self.id = sub_id
        self.selector = selector
        self.options = options
        self.follow = options.follow
        self._task_ids = frozenset(selector.task_ids)
        self._service_ids = frozenset(selector.service_ids)
        # Nodes that may hold matching logs, and (without follow) those not finished yet.
        self.nodes: set[str] = set()
        self.waiting: set[str] = set()
        self.pending_tasks: set[str] = set()  # matching tasks with no node yet
        self.errors: list[str] = []
        self.closed = False

    def _add_node(self, node_id: str) -> bool:
        if node_id in self.nodes:
            return False
        self.nodes.add(node_id)
        if not self.follow:
            self.waiting.add(node_id)
        return True

    def _add_task(self, task: Task) -> bool:
        if not task.NodeID:
            self.pending_tasks.add(task.ID)
            return False
        self.pending_tasks.discard(task.ID)
        return self._add_node(task.NodeID)

    def match(self, view: ReadTx) -> None:
        """Find the nodes involved from the tasks in the store now."""
        for node_id in self.selector.node_ids:
            self._add_node(node_id)
        for task_id in self._task_ids:
            task = view.get(Task, task_id)
            if task is not None:
                self._add_task(task)
        for service_id in self._service_ids:
            for task in view.tasks_of_service(service_id):
                # Without follow, only tasks that have run can have logs to read.
                if not self.follow and task.Status.State < TaskState.RUNNING:
                    continue
                self._add_task(task)

    def consider(self, task: Task) -> bool:
        """A task was created or changed (follow only): True if it brings a node the
        subscription must now be sent to."""
        if task.ID in self._task_ids or task.ServiceID in self._service_ids:
            return self._add_task(task)
        return False

    def done(self, node_id: str, error: str | None = None) -> None:
        """A node has published all it will (or could not)."""
        if error:
            self.errors.append(error)
        self.waiting.discard(node_id)

    @property
    def complete(self) -> bool:
        """Every node involved has finished (never, when following)."""
        return not self.follow and not self.waiting

    def error(self) -> str | None:
        reasons = list(self.errors)
        reasons += [f"task {t} has not been scheduled" for t in sorted(self.pending_tasks)]
        return INCOMPLETE + ", ".join(reasons) if reasons else None

    def message(self) -> pb.SubscriptionMessage:
        return pb.SubscriptionMessage(
            id=self.id, selector=self.selector, options=self.options, close=self.closed
        )
