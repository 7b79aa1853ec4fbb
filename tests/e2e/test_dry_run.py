"""``--dry-run`` with real daemons and the real CLI: a plan changes nothing, and the change
made next does what the plan said (which node each slot goes to, what is replaced and in how
many batches, what is stopped); refused input gets the real call's error; a daemon without
plans (Docker's) gets a clear message and nothing is sent that would change anything."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from shoal.golang import GoTime
from tests.e2e.harness import LocalCluster, wait_for

pytestmark = pytest.mark.e2e

SLEEPER = ["sh", "-c", "exec sleep 3600"]
CREATE = ["service", "create", "-d", "--runtime", "process", "--name", "web"]
API = """version: "3.8"
x-shoal-runtime: process
services:
  api:
    image: sh
    command: ["-c", "exec sleep 3600"]
    secrets: [token]
    deploy: {{replicas: 3}}
"""
WORKER = """  worker:
    image: sh
    command: ["-c", "exec sleep 3600"]
"""
SECRETS = """secrets:
  token:
    file: {token}
"""
STACK = API + WORKER + SECRETS


def plan_of(c: LocalCluster, *args: str) -> dict:
    # The flags right after the command's name: after the image they would be its arguments.
    result = c.manager.cli(*args[:2], "--dry-run", "--format", "json", *args[2:])
    return json.loads(result.stdout)


def slots(plan: dict, action: str) -> dict[int, str]:
    return {t["Slot"]: t["NodeID"] for t in plan["Services"][0]["Tasks"] if t["Action"] == action}


def running(c: LocalCluster) -> dict[int, str]:
    return {t["Slot"]: t["NodeID"] for t in c.running_tasks("web")}


def version(c: LocalCluster) -> int:
    return c.manager.get("/swarm")["Version"]["Index"]


def test_dry_run_then_the_real_change(cluster: LocalCluster, tmp_path: Path):
    m = cluster.manager
    wait_for(lambda: len(m.get("/nodes")) == 3, what="3 nodes")
    before = version(cluster)

    # create: the table, then the same plan as JSON; nothing is made
    table = m.cli(*CREATE, "--replicas", "4", "--dry-run", *SLEEPER).stdout
    assert table.splitlines()[1].split() == ["ACTION", "TASK", "NODE", "FROM", "BATCH", "ERROR"]
    assert "web: 4 tasks to create." in table
    assert table.rstrip().endswith("Dry run: nothing was changed.")
    plan = plan_of(cluster, *CREATE, "--replicas", "4", *SLEEPER)
    assert m.get("/services") == [] and m.get("/tasks") == []
    assert version(cluster) == before
    m.cli(*CREATE, "--replicas", "4", *SLEEPER)
    wait_for(lambda: len(running(cluster)) == 4, what="4 running")
    assert running(cluster) == slots(plan, "create")

    # update: replaced in place, in two batches of two
    update = ["service", "update", "-d", "--update-parallelism", "2", "--update-delay", "2s"]
    update += ["--env-add", "V=2", "web"]
    plan = plan_of(cluster, *update)
    assert plan["Services"][0]["Update"]["Batches"] == 2
    replaced = slots(plan, "replace")
    assert sorted(replaced) == [1, 2, 3, 4]
    old = {t["ID"] for t in cluster.running_tasks("web")}
    m.cli(*update)
    new = wait_for(
        lambda: (
            len(ts := [t for t in cluster.running_tasks("web") if t["ID"] not in old]) == 4 and ts
        ),
        what="4 updated tasks running",
    )
    # Batches are 2s (the update delay) apart at least; the tasks of one batch are made
    # together. Which of a batch's slots goes to which of its nodes depends on whether the
    # scheduler sees the batch's new tasks in one pass or one by one (a race in any real
    # cluster): the nodes each batch uses are what the plan says.
    new.sort(key=lambda t: GoTime.parse(t["CreatedAt"]).ns)
    batch, real = 1, Counter[tuple[int, str]]()
    for previous, t in zip([None, *new], new, strict=False):
        gap = previous and GoTime.parse(t["CreatedAt"]).ns - GoTime.parse(previous["CreatedAt"]).ns
        batch += bool(gap and gap >= 1.5e9)
        real[(batch, t["NodeID"])] += 1
    tasks = plan["Services"][0]["Tasks"]
    assert real == Counter((t["Batch"], t["NodeID"]) for t in tasks)

    # scale down: the plan names the tasks stopped
    plan = plan_of(cluster, "service", "scale", "-d", "web=2")
    stopped = {t["Slot"] for t in plan["Services"][0]["Tasks"] if t["Action"] == "stop"}
    assert len(stopped) == 2
    m.cli("service", "scale", "-d", "web=2")
    wait_for(lambda: len(running(cluster)) == 2, what="2 running")
    assert not stopped & set(running(cluster))

    # refused input: the real call's error and exit status (one cluster for the file: each
    # costs half a minute to start on a loaded machine)
    args = [*CREATE[:-1], "bad name", "--dry-run", *SLEEPER]
    dry = m.cli(*args, check=False)
    real = m.cli(*[a for a in args if a != "--dry-run"], check=False)
    assert (dry.returncode, dry.stderr) == (real.returncode, real.stderr)
    assert dry.returncode != 0 and "Error response from daemon" in dry.stderr
    assert [s["Spec"]["Name"] for s in m.get("/services")] == ["web"]

    # a stack: its network and secret are made in the plan's sandbox only
    compose = tmp_path / "compose.yml"
    (tmp_path / "token").write_text("secret")
    compose.write_text(STACK.format(token=tmp_path / "token"))
    deploy = ["stack", "deploy", "-c", str(compose), "app"]
    table = m.cli(*deploy[:2], "--dry-run", *deploy[2:]).stdout
    assert "Service app_api: create, replicated" in table and "app_api: 3 tasks to create." in table
    plan = json.loads(m.cli(*deploy[:2], "--dry-run", "--format", "json", *deploy[2:]).stdout)
    assert [s["Spec"]["Name"] for s in m.get("/services")] == ["web"]
    assert m.get("/secrets") == [] and not any(
        n["Name"] == "app_default" for n in m.get("/networks")
    )
    m.cli(*deploy)
    for service in plan["Services"]:
        want = {t["Slot"]: t["NodeID"] for t in service["Tasks"]}
        got = wait_for(
            lambda s=service, want=want: (
                len(ts := cluster.running_tasks(s["Name"])) == len(want)
                and {t["Slot"]: t["NodeID"] for t in ts}
            ),
            what=f"{service['Name']} running",
        )
        assert got == want, service["Name"]

    # --prune: the services the file no longer has are planned as removed (all tasks stop)
    compose.write_text((API + SECRETS).format(token=tmp_path / "token"))
    pruned = ["stack", "deploy", "--prune", "--dry-run", "--format", "json", "-c", str(compose)]
    plan = json.loads(m.cli(*pruned, "app").stdout)
    operations = {s["Name"]: s["Operation"] for s in plan["Services"]}
    assert operations == {"app_worker": "remove", "app_api": "unchanged"}, plan
    assert sorted(s["Spec"]["Name"] for s in m.get("/services")) == ["app_api", "app_worker", "web"]


def test_a_docker_daemon_has_no_plans(tmp_path: Path):
    engine = os.environ.get("SHOAL_TEST_DOCKER_HOST", "unix:///var/run/docker.sock")
    if not Path(engine.removeprefix("unix://")).exists():
        pytest.skip("no Docker Engine to ask")
    result = subprocess.run(
        [sys.executable, "-m", "shoal", "-H", engine, *CREATE, "--dry-run", *SLEEPER],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result
    assert result.stderr.startswith("--dry-run needs a shoal manager: the daemon answered 404"), (
        result.stderr
    )
