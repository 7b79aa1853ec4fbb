"""`service ls` MODE and REPLICAS for jobs, as Docker 20.10 prints them (seen on a real swarm:
"replicated job  0/2 (0/3 completed)", "global job  0/0 (1/1 completed)")."""

from shoal.cli.commands.service import _mode, _replicas


def test_replicated_job_columns():
    svc = {
        "Spec": {"Mode": {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 3}}},
        "ServiceStatus": {"RunningTasks": 0, "DesiredTasks": 2, "CompletedTasks": 0},
    }
    assert _mode(svc["Spec"]) == "replicated job"
    assert _replicas(svc) == "0/2 (0/3 completed)"


def test_global_job_columns():
    svc = {
        "Spec": {"Mode": {"GlobalJob": {}}},
        "ServiceStatus": {"RunningTasks": 0, "DesiredTasks": 0, "CompletedTasks": 1},
    }
    assert _mode(svc["Spec"]) == "global job"
    assert _replicas(svc) == "0/0 (1/1 completed)"
