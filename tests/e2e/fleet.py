"""Fleets of simulated nodes (shoal.daemon.fleet) as processes of their own, for end-to-end
tests and benchmarks: each process runs many simulated workers against real manager
daemons and is driven by JSON lines on its standard input."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


class FleetProcess:
    """One ``python -m shoal.daemon.fleet`` process."""

    def __init__(
        self,
        managers: list[str],
        token: str,
        prefix: str,
        log_file: Path,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        args = [sys.executable, "-m", "shoal.daemon.fleet", "--token", token, "--prefix", prefix]
        for addr in managers:
            args += ["--manager", addr]
        self.log_file = log_file
        log = open(log_file, "ab")
        self.proc = subprocess.Popen(
            [*args, *extra_args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
            env={**os.environ},
        )
        log.close()
        self.ready = self._read()  # the first line: the process is up

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            tail = self.log_file.read_text()[-3000:] if self.log_file.exists() else ""
            raise RuntimeError(f"fleet process ended: {tail}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"fleet command failed: {reply.get('error')}")
        return reply

    def command(self, op: str, **fields: Any) -> dict[str, Any]:
        self.send(op, **fields)
        return self._read()

    def send(self, op: str, **fields: Any) -> None:
        """A command whose reply ``reply`` reads later: several processes can be told at
        once (a share of nodes killed in every process at the same moment)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()

    def reply(self) -> dict[str, Any]:
        return self._read()

    def grow(self, count: int) -> list[dict[str, str]]:
        return list(self.command("grow", count=count)["nodes"])

    def kill(self, count: int) -> list[dict[str, str]]:
        return list(self.command("kill", count=count)["nodes"])

    def partition(self, count: int) -> list[dict[str, str]]:
        return list(self.command("partition", count=count)["nodes"])

    def heal(self) -> list[dict[str, str]]:
        return list(self.command("heal")["nodes"])

    def restart(self) -> list[dict[str, str]]:
        return list(self.command("restart")["nodes"])

    def stats(self) -> dict[str, Any]:
        return self.command("stats")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
