"""Ctrl-C while the CLI follows a converge, with real daemons: the CLI says "Operation
continuing in background." and exits 0, as Docker's does, and the change goes on."""

import signal
import subprocess
import sys
import time

from tests.e2e.harness import LocalCluster, wait_for

SLEEP = ["sh", "-c", "sleep 1000"]


def follow_then_interrupt(
    node_socket: str, *args: str, until: str = "overall progress:"
) -> tuple[int, list[str], str]:
    """Run a converge without -d, wait until it draws a line starting with ``until``, send
    SIGINT; its exit status, every line of its output and its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoal", "-H", f"unix://{node_socket}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"the CLI ended before drawing progress: {proc.communicate()}"
        lines.append(line.rstrip("\n"))
        if line.startswith(until):
            break
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    return proc.returncode, lines + rest.splitlines(), err


def test_ctrl_c_leaves_the_change_running(cluster: LocalCluster):
    m = cluster.manager
    sock = str(m.socket)
    # Held pending by a constraint no node meets yet: the converge cannot finish by itself.
    status, lines, err = follow_then_interrupt(
        sock,
        "service",
        "create",
        "--runtime",
        "process",
        "--name",
        "held",
        "--constraint",
        "node.labels.go==yes",
        *SLEEP,
    )
    service_id = lines[0]
    assert (status, err) == (0, ""), (lines, err)
    assert lines[-2:] == [
        "Operation continuing in background.",
        f"Use `shoal service ps {service_id}` to check progress.",
    ]
    # The service stays, and runs once a node meets its constraint.
    m.cli("node", "update", "--label-add", "go=yes", "worker1")
    wait_for(lambda: len(cluster.running_tasks("held")) == 1, what="held running")

    # Scale, interrupted, goes on too (the new replicas wait for a second labelled node).
    status, lines, err = follow_then_interrupt(sock, "service", "scale", "held=2")
    assert (status, err) == (0, "")
    assert lines[0] == "held scaled to 2"
    assert lines[-1] == f"Use `shoal service ps {service_id}` to check progress."
    m.cli("node", "update", "--label-add", "go=yes", "worker2")
    wait_for(lambda: len(cluster.running_tasks("held")) == 2, what="2 held running")

    # Interrupted once converged, while it only waits to see the tasks stay up: Docker says
    # nothing more.
    create = ["service", "create", "--runtime", "process", "--name", "calm"]
    status, lines, err = follow_then_interrupt(
        sock, *create, "--update-monitor", "60s", *SLEEP, until="verify: Waiting"
    )
    assert (status, err) == (0, "")
    assert lines[-1].startswith("verify: Waiting")
