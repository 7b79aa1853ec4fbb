"""A service's running, desired and completed task counts as `docker service ls` shows them,
counted over its tasks. (`GET /services?status=true` reads the same counts kept up to date as
the store changes: ``service_counts``.)"""

from collections.abc import Iterable

from shoal.api.objects import Service, ServiceStatus, Task
from shoal.api.types import TaskState


class StatusCount:
    """Counts for one service over its tasks, fed in any number of runs with ``add``.

    - a replicated or global service: its running tasks; desired is the replica count, or for
      a global service its tasks desired running;
    - a job: over the current iteration's tasks only, running and completed; desired is a
      replicated job's MaxConcurrent (Docker 20.10 lists "0/4 (0/3 completed)" for 3
      completions 4 at a time, and "0/2 (2/2 completed)" once done), for a global job its
      tasks not completed yet ("0/0 (1/1 completed)" once done on its node)."""

    __slots__ = ("_count_desired", "_job_index", "completed", "desired", "running", "service")

    def __init__(self, service: Service) -> None:
        self.service = service
        mode = service.Spec.Mode
        if mode.is_job:
            status = service.JobStatus
            self._job_index: int | None = status.JobIteration.Index if status is not None else 0
        else:
            self._job_index = None
        # Desired is counted from the tasks for a global service and a global job only.
        self._count_desired = (
            mode.is_global if self._job_index is None else (mode.ReplicatedJob is None)
        )
        self.running = self.desired = self.completed = 0

    def add(self, tasks: Iterable[Task]) -> None:
        index = self._job_index
        count_desired = self._count_desired
        running = desired = completed = 0
        if index is None:
            for t in tasks:
                if t.Status.State == TaskState.RUNNING:
                    running += 1
                if count_desired and t.DesiredState == TaskState.RUNNING:
                    desired += 1
        else:
            for t in tasks:
                if (t.JobIteration.Index if t.JobIteration else 0) != index:
                    continue
                state = t.Status.State
                if state == TaskState.RUNNING:
                    running += 1
                elif state == TaskState.COMPLETE:
                    completed += 1
                if (
                    count_desired
                    and t.DesiredState == TaskState.COMPLETE
                    and state < TaskState.COMPLETE
                ):
                    desired += 1
        self.running += running
        self.desired += desired
        self.completed += completed

    def status(self) -> ServiceStatus:
        mode = self.service.Spec.Mode
        desired = self.desired
        if self._job_index is None:
            if mode.Replicated is not None:
                desired = mode.Replicated.Replicas
        elif mode.ReplicatedJob is not None:
            desired = mode.ReplicatedJob.MaxConcurrent
        return ServiceStatus(
            RunningTasks=self.running, DesiredTasks=desired, CompletedTasks=self.completed
        )


def with_status(service: Service, status: ServiceStatus) -> Service:
    """``service`` as listed with ``status=true`` (a copy: stored objects never change)."""
    return service.model_copy(update={"ServiceStatus": status})


def service_status(service: Service, tasks: Iterable[Task]) -> ServiceStatus:
    """The counts over all of ``service``'s tasks at once."""
    count = StatusCount(service)
    count.add(tasks)
    return count.status()
