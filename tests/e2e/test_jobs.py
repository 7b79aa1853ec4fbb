"""Swarm jobs with real daemons: a replicated job completes exactly its completions, at most
max-concurrent at a time; a global job runs once on every node, and again after an update;
without -d the CLI follows either to its end."""

import time

from tests.e2e.harness import LocalCluster, wait_for

JOB = ["sh", "-c", "sleep 1; echo done"]


def create(c: LocalCluster, name: str, *flags: str) -> None:
    c.manager.cli("service", "create", "-d", "--runtime", "process", "--name", name, *flags, *JOB)


def completed(c: LocalCluster, name: str) -> list[dict]:
    return [t for t in c.tasks(name) if t["Status"]["State"] == "complete"]


def ls_row(c: LocalCluster, name: str) -> list[str]:
    out = c.manager.cli("service", "ls", "--filter", f"name={name}").stdout
    row = out.splitlines()[1]
    return [cell.strip() for cell in row.split("   ") if cell.strip()]


def test_a_replicated_job_completes_its_completions_two_at_a_time(cluster: LocalCluster):
    create(cluster, "batch", "--mode", "replicated-job", "--replicas", "5", "--max-concurrent", "2")
    mode = cluster.manager.get("/services/batch")["Spec"]["Mode"]
    assert mode == {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 5}}
    most_at_once = 0
    deadline = time.monotonic() + 90
    while len(completed(cluster, "batch")) < 5 and time.monotonic() < deadline:
        tasks = cluster.tasks("batch")
        active = [t for t in tasks if t["Status"]["State"] not in ("complete", "failed")]
        most_at_once = max(most_at_once, len(active))
        assert all(t["DesiredState"] == "complete" for t in tasks)
        time.sleep(0.2)
    done = completed(cluster, "batch")
    # As in Docker, a replicated job's slots start at 0 (and the API leaves a slot of 0 out).
    assert sorted(t.get("Slot", 0) for t in done) == [0, 1, 2, 3, 4]
    assert 1 <= most_at_once <= 2
    time.sleep(2)  # nothing more starts once the job is complete
    assert len(cluster.tasks("batch")) == 5
    assert ls_row(cluster, "batch")[2:4] == ["replicated job", "0/2 (5/5 completed)"]


def test_a_global_job_runs_once_per_node_and_again_after_an_update(cluster: LocalCluster):
    create(cluster, "once", "--mode", "global-job")
    wait_for(lambda: len(completed(cluster, "once")) == 3, what="3 completed tasks")
    assert len({t["NodeID"] for t in completed(cluster, "once")}) == 3
    time.sleep(2)
    assert len(cluster.tasks("once")) == 3
    assert ls_row(cluster, "once")[2:4] == ["global job", "0/0 (3/3 completed)"]

    # Without -d, the CLI follows the new iteration to its end, as Docker's does (without a
    # terminal, all it draws are bars but the wait for tasks).
    out = cluster.manager.cli("service", "update", "--force", "once").stdout.splitlines()
    assert out[0] == "once" and out[-1] == "job complete"
    assert set(out[1:-1]) <= {"job progress: waiting for tasks"}
    status = cluster.manager.get("/services/once")["JobStatus"]
    assert status["JobIteration"]["Index"] == 1
    assert len(completed(cluster, "once")) == 6
    assert [t["JobIteration"]["Index"] for t in cluster.tasks("once")].count(1) == 3


def test_job_flags_refused_as_docker(cluster: LocalCluster):
    for flags, message in (
        (["--mode", "global-job", "--replicas", "2"], "replicas can only be used with"),
        (["--mode", "replicated", "--max-concurrent", "2"], "max-concurrent can only be used"),
        (
            ["--mode", "replicated-job", "--update-parallelism", "2"],
            "update and rollback configuration is not supported for jobs",
        ),
    ):
        args = ["service", "create", "-d", "--runtime", "process", "--name", "bad", *flags, *JOB]
        result = cluster.manager.cli(*args, check=False)
        assert result.returncode != 0 and message in result.stderr
    assert cluster.manager.get("/services") == []


def test_create_without_detach_follows_the_job_to_its_end(cluster: LocalCluster):
    args = ["service", "create", "--runtime", "process", "--name", "follow"]
    out = cluster.manager.cli(*args, "--mode", "replicated-job", "--replicas", "2", *JOB).stdout
    lines = out.splitlines()
    assert lines[1:4] == ["active tasks: 0 out of 2 tasks", "1/2:  ", "2/2:  "]
    assert "active tasks: 1 out of 1 tasks" in lines or "active tasks: 2 out of 2 tasks" in lines
    assert lines[-2:] == ["active tasks: 0 out of 0 tasks", "job complete"]
    assert len(completed(cluster, "follow")) == 2
