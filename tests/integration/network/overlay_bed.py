"""Overlay nodes on hosts of our own (netns.Testbed): a driver per node
(``python -m shoal.network.overlay.tool``) entered into its host's namespace with
``nsenter --net`` (``ip netns exec`` would hide the namespaces it names from everyone
else: see shoal.network.overlay.namespaces), task processes in task namespaces, and a
sweep at the end that removes whatever a node left, even after a failure.

Every node's names carry a prefix of its own ("q" + the bed's tag + the node's number):
named namespaces are machine-wide, so two nodes on two hosts of one bed must differ too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.network.netns import Testbed

APPS = Path(__file__).parent / "apps"


class OverlayNode:
    """One node's overlay data plane, driven through the tool's JSON lines."""

    def __init__(
        self,
        bed: OverlayBed,
        host: int,
        prefix: str,
        local: str | None,
        port: int = 4789,
        args: tuple[str, ...] = (),
    ) -> None:
        self.bed = bed
        self.args = args
        self.host = host
        self.prefix = prefix
        self.local = local
        self.port = port
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    @property
    def address(self) -> str:
        """The node's underlay address, as peers name it."""
        return self.local or self.bed.addr(self.host)

    def start(self) -> None:
        argv = [
            "nsenter", f"--net=/run/netns/{self.bed.ns(self.host)}",
            sys.executable, "-m", "shoal.network.overlay.tool",
            "--prefix", self.prefix, "--port", str(self.port),
            *(["--local", self.local] if self.local else []), *self.args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def kill(self) -> None:
        """As a crash would: nothing is cleaned up."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=30)
            self.proc = None

    def do(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"overlay tool exited ({self.proc.wait()})")
        reply = json.loads(line)
        assert "error" not in reply, (cmd, reply)
        return reply

    # Shorthands.
    def ensure(self, net: dict[str, Any]) -> dict[str, Any]:
        return self.do(op="ensure", network=net)

    def peers(self, net: dict[str, Any], *peers: tuple[str, OverlayNode]) -> int:
        plist = [{"address": a, "node": n.address, "port": n.port} for a, n in peers]
        return self.do(op="set_peers", network=net["id"], peers=plist)["commands"]

    def task(self, name: str) -> str:
        """A task namespace's path."""
        return self.do(op="task_ns", name=name)["path"]

    def attach(self, task: str, net: dict[str, Any], address: str, ifname: str = "eth0") -> int:
        return self.do(op="attach", netns=task, network=net["id"], ifname=ifname, address=address)[
            "commands"
        ]


class OverlayBed(Testbed):
    def __init__(self, hosts: int) -> None:
        super().__init__(hosts)
        self.nodes: list[OverlayNode] = []
        self._tasks: list[subprocess.Popen[str]] = []

    def node(
        self, host: int, local: str | None = None, port: int = 4789, args: tuple[str, ...] = ()
    ) -> OverlayNode:
        prefix = f"q{self.tag[:3]}{len(self.nodes) + 1}"
        n = OverlayNode(self, host, prefix, local, port, args)
        self.nodes.append(n)
        return n

    def serve(self, task_path: str, name: str, address: str, port: int = 8000) -> None:
        """A name-then-echo TCP (and UDP) server in a task namespace."""
        p = subprocess.Popen(
            ["nsenter", f"--net={task_path}", sys.executable, str(APPS / "backend.py"),
             "--name", name, "--host", address, "--port", str(port)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._tasks.append(p)
        assert p.stdout.readline().strip() == "ready"  # type: ignore[union-attr]

    def serve_on_host(self, host: int, name: str, port: int = 8000) -> None:
        p = self.popen(
            host,
            [sys.executable, str(APPS / "backend.py"), "--name", name, "--host", self.addr(host),
             "--port", str(port)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert p.stdout.readline().strip() == "ready"  # type: ignore[union-attr]

    def client(
        self, task_path: str, address: str, *args: str, port: int = 8000, timeout: float = 5
    ) -> dict[str, Any]:
        """client.py in a task namespace: {"names": {...}, "failures": [...]}."""
        r = subprocess.run(
            ["nsenter", f"--net={task_path}", sys.executable, str(APPS / "client.py"), address,
             str(port), "--timeout", str(timeout), *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def answers(
        self, task_path: str, address: str, count: int = 1, *args: str, **kw: Any
    ) -> dict[str, int]:
        seen = self.client(task_path, address, "--count", str(count), *args, **kw)
        assert seen["failures"] == [], seen
        return seen["names"]

    def unreachable(self, task_path: str, address: str, *args: str, **kw: Any) -> str:
        """The error a connection gets; fails if it succeeds."""
        seen = self.client(task_path, address, *args, timeout=kw.pop("timeout", 1.5), **kw)
        assert seen["names"] == {}, seen
        return seen["failures"][0]

    def down(self) -> None:
        for p in self._tasks:
            if p.poll() is None:
                p.kill()
            p.wait()
        self._tasks.clear()
        for n in self.nodes:
            with contextlib.suppress(Exception):
                if n.proc is None:
                    n.start()
                n.do(op="sweep")
                n.stop()
            if n.proc is not None:
                n.proc.kill()
                n.proc.wait()
        for n in self.nodes:  # whatever a failed sweep left
            for name in os.listdir("/run/netns"):
                if name.startswith(n.prefix + "-"):
                    _kill_in(name)
                    subprocess.run(["ip", "netns", "del", name], capture_output=True)
        super().down()


def _kill_in(netns: str) -> None:
    r = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    for pid in r.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def netns_names(prefix: str) -> list[str]:
    return sorted(n for n in os.listdir("/run/netns") if n.startswith(prefix))


def host_links(bed: Testbed, host: int) -> list[str]:
    r = bed.run(host, ["ip", "-j", "link", "show"], capture_output=True, text=True, check=True)
    return [link["ifname"] for link in json.loads(r.stdout)]


def host_tables(bed: Testbed, host: int) -> str:
    r = bed.run(host, ["nft", "list", "tables"], capture_output=True, text=True, check=True)
    return r.stdout
