"""Each service's task counts for `docker service ls`, kept up to date as the store changes
(issue 15): `GET /services?status=true` reads them in O(services) instead of going over every
task of every service at each call (about 160 ms at 100,000 tasks, the loop held all along).

What is kept does not depend on the service: per service ID, how many of its tasks fall in each
``TaskKey`` (job iteration, state, desired state). A service's status (``status_of``) is then
``StatusCount``'s over these few keys: the same numbers as ``service_status`` over its tasks,
whatever its mode, its replica count or its job iteration is now, and whether it still exists
or not. So a service change, a node change or a service removal moves nothing here; only tasks
do (created, changed, removed, even moved to another service). (Desired for a global service
is its tasks desired running, as swarmkit counts it, not its eligible nodes: nodes do not
come in.)

How it stays right:
- a listener on the store (``MemoryStore.view_and_listen``) applies each task change as the
  store applies it (on a follower too: it applies the leader's proposals through the same
  call), so between two awaits the counts are those of the tables a read sees;
- the store restored from a snapshot tells no listener (``MemoryStore.restores`` moves), a
  closed store stops calling it, and a listener that failed may have missed a change: in
  each case the counts are taken again from the tables at the next read (a step at a time,
  the event loop running in between, by ``ready``)."""

import logging
from collections import Counter
from collections.abc import Iterable, Mapping

from shoal.api.objects import Service, ServiceStatus, Task
from shoal.api.types import TaskState
from shoal.clock import LoopTurns
from shoal.store import Action, Event, Listening, MemoryStore

log = logging.getLogger(__name__)

# (job iteration, state, desired state): all a service status looks at of a task, as it is
# (a few distinct keys per service; nothing worked out at each change).
TaskKey = tuple[int, TaskState, TaskState]
Tally = Counter[TaskKey]

RUNNING, COMPLETE = TaskState.RUNNING, TaskState.COMPLETE


def task_key(task: Task) -> TaskKey:
    """What of ``task`` any service status looks at (see ``service_status.StatusCount``)."""
    iteration = task.JobIteration
    return (iteration.Index if iteration else 0, task.Status.State, task.DesiredState)


def status_of(service: Service, tally: Mapping[TaskKey, int]) -> ServiceStatus:
    """``service_status(service, tasks)`` from the tally of its tasks:
    - a replicated or global service: its running tasks; desired is the replica count, or for
      a global service its tasks desired running;
    - a job: over the current iteration's tasks only, running and completed; desired is a
      replicated job's MaxConcurrent, for a global job its tasks desired complete that are not
      done yet."""
    mode = service.Spec.Mode
    running = desired = completed = 0
    if mode.is_job:
        status = service.JobStatus
        index = status.JobIteration.Index if status is not None else 0
        for (iteration, state, desired_state), n in tally.items():
            if iteration != index:
                continue
            if state == RUNNING:
                running += n
            elif state == COMPLETE:
                completed += n
            if desired_state == COMPLETE and state < COMPLETE:
                desired += n
        if mode.ReplicatedJob is not None:
            desired = mode.ReplicatedJob.MaxConcurrent
    else:
        for (_, state, desired_state), n in tally.items():
            if state == RUNNING:
                running += n
            if desired_state == RUNNING:
                desired += n
        if not mode.is_global:
            desired = 0
        if mode.Replicated is not None:
            desired = mode.Replicated.Replicas
    return ServiceStatus(RunningTasks=running, DesiredTasks=desired, CompletedTasks=completed)


class TaskTallies:
    """Per service ID, the tally of its tasks' keys (pure: fed tasks and task changes).

    ``strict``: a task removed that was not counted is an error (the tallies lost track).
    While the tallies are being taken from the tables a slice at a time, the changes applied
    meanwhile may remove a task not counted yet: a tally goes below zero until it is."""

    def __init__(self, strict: bool = True) -> None:
        self._by_service: dict[str, Tally] = {}
        self.strict = strict

    def of(self, service_id: str) -> Mapping[TaskKey, int]:
        return self._by_service.get(service_id, _EMPTY)

    def add(self, task: Task) -> None:
        self._move(task.ServiceID, task_key(task), 1)

    def add_all(self, tasks: Iterable[Task]) -> None:
        # Counted by Counter's loop in C first (``task_key`` written out): a task costs half
        # of what ``add`` does, which matters when the tables are counted.
        counted: Counter[tuple[str, TaskKey]] = Counter(
            (
                t.ServiceID,
                (t.JobIteration.Index if t.JobIteration else 0, t.Status.State, t.DesiredState),
            )
            for t in tasks
        )
        for (service_id, key), n in counted.items():
            self._move(service_id, key, n)

    def remove(self, task: Task) -> None:
        self._move(task.ServiceID, task_key(task), -1)

    def _move(self, service_id: str, key: TaskKey, by: int) -> None:
        tally = self._by_service.get(service_id)
        if tally is None:
            tally = self._by_service[service_id] = Counter()
        left = tally[key] + by
        if left < 0 and self.strict:
            raise KeyError(f"no task of service {service_id} counted as {key}")
        if left:
            tally[key] = left
        else:
            del tally[key]
            if not tally:
                del self._by_service[service_id]

    def change(self, old: Task | None, new: Task | None) -> None:
        """One task created (``old`` None), changed, or removed (``new`` None)."""
        if old is not None and new is not None:
            if old.ServiceID == new.ServiceID and task_key(old) == task_key(new):
                return  # most changes: a task's node, timestamps or message
        if old is not None:
            self.remove(old)
        if new is not None:
            self.add(new)

    def services(self) -> int:
        return len(self._by_service)


_EMPTY: Mapping[TaskKey, int] = {}

# Tasks counted from the tables between two looks at the clock (``LoopTurns``).
STEP = 500


class _Count:
    """The tasks of the tables at one moment, being counted into tallies a step at a time."""

    def __init__(self, tasks: list[Task], tallies: TaskTallies) -> None:
        self._tasks = tasks
        self._next = 0
        self.tallies = tallies

    @property
    def done(self) -> bool:
        return self._next >= len(self._tasks)

    def step(self, n: int) -> None:
        first, self._next = self._next, min(self._next + n, len(self._tasks))
        self.tallies.add_all(self._tasks[first : self._next])

    def finish(self) -> None:
        self.step(len(self._tasks))


class ServiceCounts:
    """The task tallies of one store's services, kept up to date by a store listener.

    They are taken from the tables (at the first read, and again after a restore, the store
    closed or a change the listener failed on) with the listener attached at the same moment:
    the changes applied after it add to what the tables held then, so the tables may be counted
    a step at a time (``ready``, which lets the event loop run in between) while the store
    changes, the tallies going right once the last task is counted."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._tallies = TaskTallies()
        self._listening: Listening | None = None
        self._restores = -1  # the store's restores the tallies were taken after
        self._count: _Count | None = None  # the tables being counted, if they are
        self.rebuilds = 0  # how many times the tallies were taken from the tables

    def status(self, service: Service) -> ServiceStatus:
        """``service``'s status from the store's tasks as they are now."""
        return status_of(service, self.tallies().of(service.ID))

    def status_if_counted(self, service: Service) -> ServiceStatus | None:
        """``status(service)`` if the tallies need not be taken from the tables first (None if
        they must). It changes nothing, and reads a copy of the service's tally (taken in one
        step): safe from another thread than the store's (the API's read lane)."""
        tallies = self._tallies  # before the checks: see ``_start_count``
        if self._count is not None or self._out_of_date():
            return None
        return status_of(service, dict(tallies.of(service.ID)))

    def tallies(self) -> TaskTallies:
        """The tallies for the store as it is now: any counting of the tables is finished
        first, at once. (``await ready()`` before, to count them a step at a time.)"""
        if self._out_of_date():
            self._start_count()
        count = self._count
        if count is not None:
            count.finish()
            self._counted()
        return self._tallies

    async def ready(self) -> None:
        """Have the tallies ready for the store as it is now, counting the tables (if they
        must be) ``STEP`` tasks at a time and letting the event loop run in between every
        ``LOOP_SLICE``. Ready when it returns: read them before awaiting anything else."""
        turns = LoopTurns()
        while True:
            if self._out_of_date():
                self._start_count()
            count = self._count
            if count is None:
                return
            count.step(STEP)
            if count.done:
                self._counted()
                continue  # out of date again, perhaps, if the loop ran
            await turns.between()

    def _out_of_date(self) -> bool:
        return (
            self._listening is None
            or self._listening.closed
            or self._restores != self._store.restores
        )

    def _start_count(self) -> None:
        if self._listening is not None:
            self._listening.close()
        view, listening = self._store.view_and_listen(self._apply)
        tallies = TaskTallies(strict=False)
        # The count first: a reader from another thread (``status_if_counted``) that sees
        # none being taken sees the tallies of before.
        self._count = _Count(view.list(Task), tallies)
        self._tallies = tallies
        self._listening = listening
        self._restores = self._store.restores
        self.rebuilds += 1

    def _counted(self) -> None:
        self._count = None
        self._tallies.strict = True

    def _apply(self, events: list[Event]) -> None:
        if self._restores != self._store.restores:
            return  # out of date already: taken again at the next read
        try:
            tallies = self._tallies
            for ev in events:
                obj = ev.obj
                if not isinstance(obj, Task):
                    continue  # another kind, or the commit
                old = ev.old if isinstance(ev.old, Task) else None
                tallies.change(old, None if ev.action is Action.REMOVE else obj)
        except Exception:
            # Runs as the store applies a proposal, which must not fail for it. The counts
            # may have missed a change: stop listening, take them again at the next read.
            log.exception("keeping the services' task counts failed: counting them again")
            if self._listening is not None:
                self._listening.close()

    def close(self) -> None:
        if self._listening is not None:
            self._listening.close()
            self._listening = None
        self._count = None
