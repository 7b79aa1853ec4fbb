"""What the control API does for job services: the defaults Docker's daemon fills into a
replicated job, the new iteration each update starts, and a job's status as listed."""

from datetime import datetime

from shoal.api.base import Version
from shoal.api.objects import JobStatus, Service, ServiceStatus, Task
from shoal.api.specs import ServiceSpec
from shoal.api.types import TaskState


def fill_job_defaults(spec: ServiceSpec) -> None:
    """MaxConcurrent 1 and TotalCompletions = MaxConcurrent when left 0, as Docker does."""
    job = spec.Mode.ReplicatedJob
    if job is None:
        return
    if job.MaxConcurrent == 0:
        job.MaxConcurrent = 1
    if job.TotalCompletions == 0:
        job.TotalCompletions = job.MaxConcurrent


def next_job_iteration(status: JobStatus | None, now: datetime) -> JobStatus:
    """An update runs the job again: the iteration index goes up by one."""
    index = status.JobIteration.Index if status is not None else 0
    return JobStatus(JobIteration=Version(Index=index + 1), LastExecution=now)


def job_service_status(service: Service, tasks: list[Task]) -> ServiceStatus:
    """Counts over the current iteration's tasks: running, completed, and desired: for a
    replicated job MaxConcurrent whatever is left to do (Docker 20.10 lists "0/4 (0/3
    completed)" for 3 completions 4 at a time, and "0/2 (2/2 completed)" once done); for a
    global job the tasks not completed yet ("0/0 (1/1 completed)" once done on its node)."""
    index = service.JobStatus.JobIteration.Index if service.JobStatus is not None else 0
    mine = [t for t in tasks if (t.JobIteration.Index if t.JobIteration else 0) == index]
    running = sum(1 for t in mine if t.Status.State == TaskState.RUNNING)
    completed = sum(1 for t in mine if t.Status.State == TaskState.COMPLETE)
    job = service.Spec.Mode.ReplicatedJob
    if job is not None:
        desired = job.MaxConcurrent
    else:
        desired = sum(
            1
            for t in mine
            if t.DesiredState == TaskState.COMPLETE and t.Status.State < TaskState.COMPLETE
        )
    return ServiceStatus(RunningTasks=running, DesiredTasks=desired, CompletedTasks=completed)
