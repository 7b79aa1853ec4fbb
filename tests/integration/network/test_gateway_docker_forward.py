"""A node on a host where Docker runs: Docker's FORWARD chain drops what it does not know,
and the node's tasks must still get out through its gateway bridge (the node adds its two
rules to Docker's DOCKER-USER chain, and takes them out again).

Runs in the machine's own namespace, where the test suite's Docker Engine runs; skipped where
there is no DOCKER-USER chain (no Docker) or no root.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from shoal.network.overlay import GatewayBridge, NodeNames, TaskEndpoints, sweep

BACKEND = Path(__file__).parent / "apps" / "backend.py"


def _why_not() -> str | None:
    import os

    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("iptables") is None:
        return "no iptables"
    r = subprocess.run(["iptables", "-w", "-S", "DOCKER-USER"], capture_output=True)
    if r.returncode != 0:
        return "no Docker FORWARD filter here (no DOCKER-USER chain)"
    return None


pytestmark = [pytest.mark.netns, pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))]


def sh(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=True)


def test_tasks_get_out_through_dockers_forward_filter() -> None:
    tag = uuid.uuid4().hex[:4]
    names = NodeNames(f"g{tag}")
    outside = f"shoal-out-{tag}"
    near, far = f"so{tag}a", f"so{tag}b"
    gateway = GatewayBridge(names, pool="172.30.0.0/16", prefixlen=24)
    endpoints = TaskEndpoints(names)
    server = None
    try:
        # An outside host: a namespace behind a veth of the node's own namespace, routed.
        sh("ip", "netns", "add", outside)
        sh("ip", "link", "add", near, "type", "veth", "peer", "name", far, "netns", outside)
        sh("ip", "addr", "add", "198.18.77.1/24", "dev", near)
        sh("ip", "link", "set", near, "up")
        sh("ip", "-n", outside, "addr", "add", "198.18.77.2/24", "dev", far)
        sh("ip", "-n", outside, "link", "set", far, "up")
        sh("ip", "-n", outside, "route", "add", "default", "via", "198.18.77.1")
        server = subprocess.Popen(
            ["ip", "netns", "exec", outside, sys.executable, str(BACKEND),
             "--name", "outside", "--host", "198.18.77.2", "--port", "9090"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"

        asyncio.run(gateway.ensure())
        task = asyncio.run(endpoints.create_task_namespace("t1"))
        asyncio.run(gateway.attach_gateway(task, "eth0"))
        probe = [
            "nsenter", f"--net={task}", sys.executable, "-c",
            "import socket; s=socket.create_connection(('198.18.77.2', 9090), timeout=3);"
            "print(s.recv(100).decode().strip())",
        ]  # fmt: skip
        r = subprocess.run(probe, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "outside"
        rules = sh("iptables", "-w", "-S", "DOCKER-USER").stdout
        assert f"shoal {names.gateway_bridge}" in rules
        asyncio.run(gateway.remove())
        assert (
            f"shoal {names.gateway_bridge}" not in sh("iptables", "-w", "-S", "DOCKER-USER").stdout
        )
    finally:
        if server is not None:
            server.kill()
            server.wait()
        asyncio.run(sweep(names))
        subprocess.run(["ip", "link", "del", near], capture_output=True)
        subprocess.run(["ip", "netns", "del", outside], capture_output=True)
