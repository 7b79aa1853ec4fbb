"""`docker events` against a shoal manager: Docker's own CLI shows a service's create,
update and remove as they happen, with Docker's attributes (as Docker 20.10 printed them
for the same commands); on a worker, which has no store, no cluster event at all."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.harness import local_cluster, wait_for

DOCKER = shutil.which("docker")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI on this machine"),
]


def docker(socket: Path, *args: str) -> subprocess.CompletedProcess:
    assert DOCKER is not None
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket}", "DOCKER_CLI_HINTS": "false"}
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


def test_docker_events_shows_a_services_create_update_and_remove(short_tmp: Path) -> None:
    assert DOCKER is not None
    with local_cluster(short_tmp, workers=1) as cluster:
        manager, worker = cluster.nodes
        since = f"{time.time():.3f}"
        out = open(short_tmp / "events.out", "w+")
        watcher = subprocess.Popen(
            # --since: what happens before the CLI has subscribed is replayed, not missed.
            [
                DOCKER,
                "events",
                "--since",
                since,
                "--filter",
                "type=service",
                "--format",
                "{{json .}}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DOCKER_HOST": f"unix://{manager.socket}"},
        )
        try:

            def events() -> list[dict]:
                out.seek(0)
                return [json.loads(line) for line in out.read().splitlines() if line]

            def actions() -> list[str]:
                return [e["Action"] for e in events()]

            docker(
                manager.socket,
                "service",
                "create",
                "-d",
                "--name",
                "evweb",
                "shoal-test/busybox",
                "sleep",
                "600",
            )
            wait_for(lambda: "create" in actions(), what="the create event")
            docker(manager.socket, "service", "scale", "-d", "evweb=2")
            wait_for(
                lambda: any("replicas.new" in e["Actor"]["Attributes"] for e in events()),
                what="the update event",
            )
            docker(manager.socket, "service", "rm", "evweb")
            wait_for(lambda: "remove" in actions(), what="the remove event")
        finally:
            watcher.terminate()
            watcher.wait(timeout=10)
            out.close()

        seen = [json.loads(line) for line in (short_tmp / "events.out").read_text().splitlines()]
        service_id = seen[0]["Actor"]["ID"]
        assert seen[0] == {
            "Type": "service",
            "Action": "create",
            "Actor": {"ID": service_id, "Attributes": {"name": "evweb"}},
            "scope": "swarm",
            "time": seen[0]["time"],
            "timeNano": seen[0]["timeNano"],
        }
        assert seen[0]["time"] == seen[0]["timeNano"] // 10**9
        scaled = next(e for e in seen if "replicas.new" in e["Actor"]["Attributes"])
        assert scaled["Action"] == "update"
        assert scaled["Actor"]["Attributes"] == {
            "name": "evweb",
            "replicas.old": "1",
            "replicas.new": "2",
        }
        assert seen[-1]["Action"] == "remove"
        assert seen[-1]["Actor"] == {"ID": service_id, "Attributes": {"name": "evweb"}}
        assert {e["Type"] for e in seen} == {"service"}

        # What was kept is there for --since; the CLI turns --until into a time that has
        # passed, so it prints what was kept and exits.
        until = f"{time.time():.3f}"
        past = docker(
            manager.socket,
            "events",
            "--since",
            since,
            "--until",
            until,
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ).stdout.splitlines()
        assert "service create evweb" in past and "service remove evweb" in past

        # A worker watches no store: like Docker's, its stream has no cluster event (only
        # its engine's, which is shared with the other tests here).
        on_worker = docker(
            worker.socket, "events", "--since", since, "--until", until, "--filter", "scope=swarm"
        )
        assert on_worker.stdout == ""
