"""What the control API does for job services: the defaults Docker's daemon fills into a
replicated job, the new iteration each update starts, and a job's status as listed."""

from datetime import datetime

from shoal.api.base import Version
from shoal.api.objects import JobStatus, Service, ServiceStatus, Task
from shoal.api.specs import ServiceSpec
from shoal.manager.controlapi.service_status import service_status


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
    """Counts over the current iteration's tasks (see ``service_status.StatusCount``)."""
    return service_status(service, tasks)
