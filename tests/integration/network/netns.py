"""Hosts of our own: network namespaces on one bridge, each with its own address.

    with Testbed(hosts=3) as bed:       # bed.addr(1) == "198.18.0.1", ...
        bed.popen(1, ["python", ...])   # runs inside host 1

The bridge lives in a namespace of its own, so nothing of the machine's own network (its
firewall, Docker's rules) sees the traffic. Addresses come from 198.18.0.0/15, the range
set aside for benchmarking networks (RFC 2544), and never leave these namespaces. Deleting
the namespaces removes their interfaces and any nftables tables made inside them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

SUBNET = "198.18.0"


def why_no_netns() -> str | None:
    """Why namespace tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "network namespace tests need root (ip netns add)"
    if shutil.which("ip") is None:
        return "the ip tool (iproute2) is not installed"
    name = f"shoal-probe-{uuid.uuid4().hex[:8]}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def why_no_nft() -> str | None:
    if shutil.which("nft") is None:
        return "the nft tool is not installed (apt-get install nftables)"
    return None


def _run(*argv: str) -> None:
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")


class Testbed:
    __test__ = False  # not a pytest test class

    def __init__(self, hosts: int, tag: str | None = None) -> None:
        self.count = hosts
        self.tag = tag or uuid.uuid4().hex[:6]
        self.switch = f"shoal-{self.tag}-sw"
        self.names = [f"shoal-{self.tag}-h{i}" for i in range(1, hosts + 1)]
        self._procs: list[subprocess.Popen] = []

    def addr(self, i: int) -> str:
        return f"{SUBNET}.{i}"

    def ns(self, i: int) -> str:
        return self.names[i - 1]

    def up(self) -> Testbed:
        try:
            _run("ip", "netns", "add", self.switch)
            _run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
            _run("ip", "-n", self.switch, "link", "set", "br0", "up")
            for i, name in enumerate(self.names, start=1):
                _run("ip", "netns", "add", name)
                _run(
                    "ip", "link", "add", "eth0", "netns", name,
                    "type", "veth", "peer", "name", f"p{i}", "netns", self.switch,
                )  # fmt: skip
                _run("ip", "-n", self.switch, "link", "set", f"p{i}", "master", "br0", "up")
                _run("ip", "-n", name, "addr", "add", f"{self.addr(i)}/24", "dev", "eth0")
                _run("ip", "-n", name, "link", "set", "eth0", "up")
                _run("ip", "-n", name, "link", "set", "lo", "up")
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self._procs.clear()
        # Whatever else still runs in our hosts (a daemon's task processes, which outlive
        # it by design) would keep its namespace alive after `ip netns del`.
        for name in self.names:
            r = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
            for pid in r.stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        for name in [*self.names, self.switch]:
            if Path(f"/run/netns/{name}").exists():
                subprocess.run(["ip", "netns", "del", name], capture_output=True)

    def argv(self, i: int, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns(i), *argv]

    def popen(self, i: int, argv: list[str], **kwargs) -> subprocess.Popen:  # type: ignore[no-untyped-def]
        p = subprocess.Popen(self.argv(i, argv), **kwargs)
        self._procs.append(p)
        return p

    def run(self, i: int, argv: list[str], **kwargs) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
        return subprocess.run(self.argv(i, argv), **kwargs)

    def __enter__(self) -> Testbed:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()
