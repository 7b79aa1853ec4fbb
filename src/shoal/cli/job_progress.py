"""Progress of a replicated job for ``service create|update`` without ``-d``, as Docker 20.10's
CLI shows it: a "job progress" bar of completions (terminals only), "active tasks: N out of M
tasks" each poll (M = the tasks that may run now: MaxConcurrent, or fewer once few completions
are left), a bar per completion slot (terminals only), then "job complete". Seen on Docker
20.10 without a terminal, for 2 completions 2 at a time:

    active tasks: 0 out of 2 tasks
    1/2:
    2/2:
    active tasks: 2 out of 2 tasks   (every poll)
    active tasks: 1 out of 1 tasks
    active tasks: 0 out of 0 tasks
    job complete
"""

import asyncio

from shoal.cli.progress import (
    LONGEST_STATE,
    MAX_PROGRESS,
    MAX_PROGRESS_BARS,
    POLL,
    STATE_ORDER,
    ProgressWriter,
    terminal,
)
from shoal.client import Client


def _iteration(obj: dict) -> int:
    return int((obj.get("JobIteration") or {}).get("Index", 0))


async def wait_for_replicated_job(client: Client, service_id: str, writer: ProgressWriter) -> None:
    initialized = False
    while True:
        service = await client.request("GET", f"/services/{service_id}")
        job = service["Spec"]["Mode"]["ReplicatedJob"]
        total = int(job.get("TotalCompletions") or 0)
        concurrent = int(job.get("MaxConcurrent") or 0)
        iteration = _iteration(service.get("JobStatus") or {})
        tasks = [
            t
            for t in await client.tasks({"service": [service["ID"]]})
            if _iteration(t) == iteration
        ]
        completed = sum(1 for t in tasks if t["Status"]["State"] == "complete")
        active = [t for t in tasks if not terminal(t["Status"]["State"])]
        if not initialized:
            writer.write("job progress", f"0 out of {total} complete", 0, total)
            writer.write("active tasks", f"0 out of {min(concurrent, total)} tasks")
            if total <= MAX_PROGRESS_BARS:
                for slot in range(1, total + 1):
                    writer.write(f"{slot}/{total}", " ")
            initialized = True
        writer.write("job progress", f"{completed} out of {total} complete", completed, total)
        for t in active:
            slot = int(t.get("Slot") or 0)
            if total <= MAX_PROGRESS_BARS and 1 <= slot <= total:
                state = t["Status"]["State"]
                writer.write(
                    f"{slot}/{total}",
                    f"{state:<{LONGEST_STATE}}",
                    STATE_ORDER.get(state, 0),
                    MAX_PROGRESS,
                )
        allowed = max(0, min(concurrent, total - completed))
        writer.write("active tasks", f"{len(active)} out of {allowed} tasks")
        if completed >= total:
            writer.message("job complete")
            return
        await asyncio.sleep(POLL)
