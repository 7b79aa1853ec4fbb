"""A Docker Engine on each test host: ``dockerd`` in the host's network namespace (entered
with nsenter, as the shoal daemons are), with its own data and exec roots and socket, and the
test image imported. Several engines make a multi-node cluster whose container tasks each run
on their own host's engine, as on real machines.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.network.netns import Testbed

START_TIMEOUT = 90.0
LOG_TAIL = 3000  # characters of a kept dockerd log printed at teardown


def why_no_dockerd() -> str | None:
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (scripts/test installs docker.io as root)"
    return None


class HostEngines:
    def __init__(self, bed: Testbed, hosts: int) -> None:
        self.bed = bed
        self.hosts = hosts
        self.procs: list[subprocess.Popen] = []
        self.roots: list[Path] = []
        self.logs: list[Path] = []

    def socket(self, i: int) -> str:
        return f"/run/shoal-{self.bed.tag}-d{i}.sock"

    def host(self, i: int) -> str:
        return f"unix://{self.socket(i)}"

    def start(self) -> HostEngines:
        for i in range(1, self.hosts + 1):
            data = Path(f"/var/lib/shoal-{self.bed.tag}-d{i}")
            exec_root = Path(f"/run/shoal-{self.bed.tag}-d{i}")
            self.roots += [data, exec_root]
            log_file = Path(f"/tmp/shoal-{self.bed.tag}-d{i}.log")
            self.logs.append(log_file)
            log = open(log_file, "ab")
            argv = [
                "nsenter", f"--net=/run/netns/{self.bed.ns(i)}",
                "dockerd", "--data-root", str(data), "--exec-root", str(exec_root),
                "--pidfile", f"/run/shoal-{self.bed.tag}-d{i}.pid", "-H", self.host(i),
            ]  # fmt: skip
            self.procs.append(
                subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        for i in range(1, self.hosts + 1):
            while not self._answers(i):
                if time.monotonic() > deadline or self.procs[i - 1].poll() is not None:
                    raise RuntimeError(f"dockerd on host {i} did not start")
                time.sleep(0.2)
            r = subprocess.run(
                [sys.executable, "-m", "tests.docker.testimage", "build"],
                env={**os.environ, "DOCKER_HOST": self.host(i)},
                capture_output=True, text=True, cwd=Path(__file__).parents[2],
            )  # fmt: skip
            if r.returncode != 0:
                raise RuntimeError(f"test image on host {i}: {r.stderr}")
        return self

    def _answers(self, i: int) -> bool:
        r = subprocess.run(
            [sys.executable, "-m", "tests.docker.testimage", "ping"],
            env={**os.environ, "DOCKER_HOST": self.host(i)},
            capture_output=True, cwd=Path(__file__).parents[2],
        )  # fmt: skip
        return r.returncode == 0

    def docker(self, i: int, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(
            ["docker", "-H", self.host(i), *args], capture_output=True, text=True, timeout=60
        )
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} on host {i}: {r.stderr}")
        return r

    def stop(self, keep_logs: bool = False) -> None:
        """Stop every engine and remove its roots; its log too, unless ``keep_logs`` (the
        test failed): then the log stays, and its path and tail are printed."""
        for i, proc in enumerate(self.procs, start=1):
            if proc.poll() is None:
                with contextlib.suppress(Exception):
                    ids = self.docker(i, "ps", "-aq", check=False).stdout.split()
                    if ids:
                        self.docker(i, "rm", "-f", *ids, check=False)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for root in self.roots:
            subprocess.run(["umount", "-R", str(root)], capture_output=True)
            shutil.rmtree(root, ignore_errors=True)
        for log_file in self.logs:
            if keep_logs:
                tail = log_file.read_text(errors="replace")[-LOG_TAIL:] if log_file.exists() else ""
                print(f"--- dockerd log kept: {log_file} (its end follows)\n{tail}")
            else:
                log_file.unlink(missing_ok=True)
