"""Seed 003's rolling update of a redis service, on the process runtime: two "images" are two
programs named redis:3.0.6 and redis:3.0.7 on the daemons' PATH."""

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.e2e.harness import LocalCluster, local_cluster, wait_for


@pytest.fixture(scope="module")
def swarm():
    root = Path(tempfile.mkdtemp(prefix="shoal-redis-", dir="/tmp"))
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for version in ("3.0.6", "3.0.7"):
        program = bin_dir / f"redis:{version}"
        program.write_text("#!/bin/sh\nexec sleep 3600\n")
        program.chmod(0o755)
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{bin_dir}:{path}"  # the daemons inherit it
    try:
        with local_cluster(root, workers=2) as c:
            yield c
    finally:
        os.environ["PATH"] = path
        shutil.rmtree(root, ignore_errors=True)


def ps_rows(c: LocalCluster) -> list[list[str]]:
    lines = c.manager.cli("service", "ps", "redis").stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "NAME",
        "IMAGE",
        "NODE",
        "DESIRED",
        "STATE",
        "CURRENT",
        "STATE",
        "ERROR",
        "PORTS",
    ]
    return [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]


def test_rolling_update_of_redis(swarm: LocalCluster):
    m = swarm.manager
    m.process_service(
        "--replicas",
        "3",
        "--name",
        "redis",
        "--update-delay",
        "2s",
        "redis:3.0.6",
    )
    wait_for(lambda: len(swarm.running_tasks("redis")) == 3, what="3 replicas")
    pretty = m.cli("service", "inspect", "--pretty", "redis").stdout
    assert "\nUpdateConfig:\n Parallelism:\t1\n Delay:\t\t2s\n On failure:\tpause\n" in pretty
    assert "\n Image:\t\tredis:3.0.6\n" in pretty

    assert m.cli("service", "update", "-d", "--image", "redis:3.0.7", "redis").stdout == "redis\n"
    during = m.cli("service", "inspect", "--pretty", "redis").stdout
    assert re.search(
        r"\nUpdateStatus:\n State:\t\tupdating\n Started:\t.* ago\n Message:\tupdate in progress\n",
        during,
    ), during
    assert "\n Image:\t\tredis:3.0.7\n" in during

    def done():
        status = swarm.manager.get("/services/redis").get("UpdateStatus") or {}
        return status.get("State") == "completed"

    wait_for(done, what="update completed")
    rows = ps_rows(swarm)
    current = [r for r in rows if not r[1].startswith("\\_")]
    history = [r for r in rows if r[1].startswith("\\_")]
    assert [r[1] for r in current] == ["redis.1", "redis.2", "redis.3"]
    assert {r[2] for r in current} == {"redis:3.0.7"}
    assert all(r[4] == "Running" and r[5].startswith("Running ") for r in current)
    assert sorted(r[1] for r in history) == ["\\_ redis.1", "\\_ redis.2", "\\_ redis.3"]
    assert {r[2] for r in history} == {"redis:3.0.6"}
    assert all(r[4] == "Shutdown" and r[5].startswith("Shutdown ") for r in history)
    after = m.cli("service", "inspect", "--pretty", "redis").stdout
    assert re.search(
        r"\n State:\t\tcompleted\n Started:\t.* ago\n Completed:\t.* ago\n Message:\tupdate completed\n",
        after,
    ), after
