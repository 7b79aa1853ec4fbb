"""What the control API does for job services: the defaults Docker's daemon fills into a
replicated job, and the new iteration each update starts."""

from datetime import datetime

from shoal.api.base import Version
from shoal.api.objects import JobStatus
from shoal.api.specs import ServiceSpec


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
